"""Annotation lookup with a symlinked videos folder (issue 11): the key keeps the link's name."""

from __future__ import annotations

from types import SimpleNamespace

from glocal.eval.context import EvalContext


def test_symlinked_videos_folder_keeps_its_annotation_key(tmp_path):
    elsewhere = tmp_path / "disk2" / "clips"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.mp4").write_bytes(b"x")
    root = tmp_path / "world"
    root.mkdir()
    (root / "videos").symlink_to(elsewhere)
    ctx = SimpleNamespace(manifest=SimpleNamespace(root=str(root.resolve())))
    assert EvalContext.annotation_key(ctx, str(root.resolve() / "videos" / "a.mp4")) == "videos/a.mp4"
    # a path outside the folder still resolves (or stays as given)
    assert EvalContext.annotation_key(ctx, str(elsewhere / "a.mp4")) == str(elsewhere / "a.mp4")
