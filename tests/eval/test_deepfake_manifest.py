"""The deepfake task reads its real/fake set with the dataset's deny list and in any detectable layout.

Regression tests: ``read_fake_manifest`` used to read ``fake/manifest.csv`` with the bare CSV reader,
ignoring ``EvalContext.deny_list`` (``data.deny_list``) and accepting no other layout. The videos are
empty placeholder files: reading the manifests decodes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glocal.errors import DataError
from glocal.eval.context import EvalContext, EvalOptions
from glocal.eval.deepfake import read_fake_manifest, split_by_source
from glocal.eval.features import EvalData

DATA = EvalData(clip_frames=8, fps=8.0, crop_size=32, sample_rate=8000, batch_size=4, num_workers=0)
CLASSES = ("Archery", "Bowling")


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _ucf101_with_fakes(root: Path) -> list[str]:
    """A UCF101-layout dataset (split files + ``UCF-101/<class>/``) with ``fake/manifest.csv``.

    Returns the videos relative to ``UCF-101/`` (what ``glocal scan`` writes in a deny list)."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CLASSES, start=1)))
    videos = [f"{c}/v_{c}_g{g:02d}_c01.avi" for c in CLASSES for g in (1, 2)]
    (lists / "trainlist01.txt").write_text("".join(f"{v} {1 + CLASSES.index(v.split('/')[0])}\n"
                                                  for v in videos if "_g01_" in v))
    (lists / "testlist01.txt").write_text("".join(f"{v}\n" for v in videos if "_g02_" in v))
    rows = ["path,label,split,source,manipulation"]
    for v in videos:
        _touch(root / "UCF-101" / v)
        _touch(root / "fake" / "videos" / Path(v).name)
        rows.append(f"../UCF-101/{v},real,test,../UCF-101/{v},none")
        rows.append(f"videos/{Path(v).name},fake,test,../UCF-101/{v},audio_shift")
    (root / "fake" / "manifest.csv").write_text("\n".join(rows) + "\n")
    return videos


def _names(m) -> list[str]:
    return sorted(Path(p).parent.name + "/" + Path(p).name for p in m.paths.tolist())


def test_deny_list_of_a_ucf101_dataset_applies_to_the_fake_set(tmp_path):
    root = tmp_path / "ucf"
    videos = _ucf101_with_fakes(root)
    deny = tmp_path / "deny.txt"  # as `glocal scan ucf --format ucf101 --out deny.txt` writes it
    deny.write_text(f"# paths are relative to {root / 'UCF-101'}\n{videos[0]}  # undecodable\n")
    ctx = EvalContext(root, DATA, progress=False, data_format="ucf101", deny_list=str(deny))
    m, y = read_fake_manifest(ctx)
    assert len(m) == 7 and y.sum() == 4  # the denied original's real row is gone, its fake stays
    assert f"Archery/{Path(videos[0]).name}" not in _names(m)
    assert f"videos/{Path(videos[0]).name}" in _names(m)
    assert m.report.count("denied file") == 1
    # a fake can be denied too, by its path relative to the dataset root; absolute paths work as well
    fake1 = root / "fake" / "videos" / Path(videos[1]).name
    ctx.deny_list = [videos[0], str(fake1)]
    m, y = read_fake_manifest(ctx)
    assert len(m) == 6 and y.sum() == 3 and str(fake1.resolve()) not in m.paths.tolist()
    # without a deny list: every row
    m, y = read_fake_manifest(EvalContext(root, DATA, progress=False, data_format="ucf101"))
    assert len(m) == 8 and y.sum() == 4


def test_fake_set_in_folder_layout(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "manifest.csv").write_text("path,label,split\nclips/a.mp4,x,train\n")
    for name in ("real/r0.mp4", "real/r1.mp4", "fake/f0.mp4", "fake/f1.mp4"):
        _touch(root / "avfakes" / name)
    ctx = EvalContext(root, DATA, progress=False, options=EvalOptions(fake_manifest="avfakes"))
    m, y = read_fake_manifest(ctx)
    assert _names(m) == ["fake/f0.mp4", "fake/f1.mp4", "real/r0.mp4", "real/r1.mp4"]
    assert y.tolist() == [1, 1, 0, 0]
    tr, te, _ = split_by_source(m, y, seed=0)
    assert np.unique(y[tr]).size == 2 and np.unique(y[te]).size == 2 and not (tr & te).any()


def test_missing_fake_set_is_a_clear_error(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match="task 'deepfake' needs"):
        read_fake_manifest(EvalContext(root, DATA, progress=False))
