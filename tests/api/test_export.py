"""``glocal export`` on the tiny checkpoints of conftest.py (GLCM: video + audio; SimCLR: video only)."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

import glocal
from glocal import __version__
from glocal.api.export import export_encoders
from glocal.cli import main
from glocal.errors import GlocalError


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("which", ["glcm", "simclr"])
def test_torchscript_round_trip(which, glcm_ckpt, simclr_ckpt, tmp_path, capsys):
    ckpt = glcm_ckpt if which == "glcm" else simclr_ckpt
    out = tmp_path / "out" / "enc"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "video torchscript vs eager" in printed and "max abs difference" in printed and "tolerance" in printed
    model = glocal.load(ckpt, device="cpu")
    mods = ("video", "audio") if which == "glcm" else ("video",)
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["enc.json", *(f"enc.{m}.pt" for m in mods)])
    g = torch.Generator().manual_seed(5)
    x = {"video": torch.randn((3, *model.info.video_shape), generator=g),
         "audio": 0.1 * torch.randn((3, model.info.audio_samples), generator=g)}
    for mod in mods:
        traced = torch.jit.load(str(out.parent / f"enc.{mod}.pt"))
        with torch.no_grad():
            got = traced(x[mod])
        ref = model.embed_video(x[mod]) if mod == "video" else model.embed_audio(x[mod])
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)

    info = json.loads((out.parent / "enc.json").read_text())
    assert info["method"] == which and info["modalities"] == list(mods) and info["format"] == "torchscript"
    assert info["glocal_version"] == __version__
    pre = info["preprocessing"]
    assert (pre["clip_frames"], pre["fps"], pre["crop_size"], pre["sample_rate"], pre["audio_samples"]) == \
        (8, 8.0, 32, 8000, 8000)
    assert pre["normalization"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert info["inputs"]["video"]["shape"] == ["batch", 3, 8, 32, 32]
    assert info["embedding_dims"]["video"] == model.embed_video(x["video"][:1]).shape[1]
    if which == "glcm":
        assert info["embedding_dims"]["audio"] == model.embed_audio(x["audio"][:1]).shape[1]
    assert set(info["check"]) == set(mods) and all(c["max_abs_diff"] <= c["tolerance"] for c in info["check"].values())
    assert info["config"]["method"]["name"] == which and info["config"]["data"]["clip_frames"] == 8
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("fmt,package", [("safetensors", "safetensors"), ("onnx", "onnx")])
def test_missing_optional_dependency_is_one_line(fmt, package, glcm_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(GlocalError) as exc:
        export_encoders(glcm_ckpt, fmt, tmp_path / "enc")
    assert "pip install 'glocal[export]'" in _one_line(exc) and package in str(exc.value)
    assert main(["export", "--checkpoint", str(glcm_ckpt), "--format", fmt, "--out", str(tmp_path / "e")]) == 2
    assert "pip install 'glocal[export]'" in capsys.readouterr().err
    assert not list(tmp_path.glob("e*"))


def test_not_a_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    with pytest.raises(GlocalError, match="not a glocal checkpoint") as exc:
        export_encoders(bad, "torchscript", tmp_path / "out" / "enc")
    _one_line(exc)
    assert main(["export", "--checkpoint", str(bad), "--format", "torchscript", "--out", str(tmp_path / "e")]) == 2


def test_non_writable_out_fails_before_work(glcm_ckpt, tmp_path, monkeypatch):
    import glocal.api.export as ex

    monkeypatch.setattr(ex, "load", lambda *a, **k: pytest.fail("the checkpoint was loaded before the out check"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions: a folder no one can create instead
        if not os.path.isdir("/proc/self"):
            pytest.skip("no way to make a folder unwritable here")
        target = "/proc/self/glocal-export-test/enc"
    else:
        target = str(locked / "enc")
    try:
        with pytest.raises(GlocalError, match="not writable") as exc:
            export_encoders(glcm_ckpt, "torchscript", target)
        _one_line(exc)
        assert main(["export", "--checkpoint", str(glcm_ckpt), "--format", "torchscript", "--out", target]) == 2
    finally:
        locked.chmod(0o700)


def test_out_that_is_a_file_in_a_file_fails_before_work(glcm_ckpt, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    import glocal.api.export as ex

    monkeypatch.setattr(ex, "load", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(GlocalError) as exc:
        export_encoders(glcm_ckpt, "torchscript", tmp_path / "afile" / "enc")
    _one_line(exc)


def test_safetensors_holds_the_encoders(glcm_ckpt, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    info = export_encoders(glcm_ckpt, "safetensors", tmp_path / "enc.safetensors", log=lambda s: None)
    assert info["files"] == {"weights": "enc.safetensors", "json": "enc.json"}
    tensors = st.load_file(str(tmp_path / "enc.safetensors"))
    state = glocal.load(glcm_ckpt, device="cpu").method.state_dict()
    assert {k.split(".", 1)[0] for k in tensors} == {"video", "audio"}
    for key, value in tensors.items():
        torch.testing.assert_close(value, state[key.split(".", 1)[1]])
    assert len({k.split(".", 1)[1] for k in tensors}) < len(state)  # heads / losses left out


def test_exported_files_have_the_usual_permissions(glcm_ckpt, tmp_path):
    """The safetensors writer makes its file owner-only (0600); every exported file now gets the
    mode of a new file under the umask, as the TorchScript and JSON files always had."""
    pytest.importorskip("safetensors.torch")
    old = os.umask(0o022)
    try:
        export_encoders(glcm_ckpt, "safetensors", tmp_path / "enc", log=lambda s: None)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"enc.safetensors": 0o644, "enc.json": 0o644}


def test_onnx_checked_with_onnxruntime(simclr_ckpt, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", "--checkpoint", str(simclr_ckpt), "--format", "onnx", "--out", str(tmp_path / "e")]) == 0
    assert "video onnx vs eager" in capsys.readouterr().out
    info = json.loads((tmp_path / "e.json").read_text())
    assert info["check"]["video"]["max_abs_diff"] <= info["check"]["video"]["tolerance"]
    import onnxruntime as ort

    model = glocal.load(simclr_ckpt, device="cpu")
    x = torch.randn((3, *model.info.video_shape))
    sess = ort.InferenceSession(str(tmp_path / "e.video.onnx"), providers=["CPUExecutionProvider"])
    torch.testing.assert_close(torch.from_numpy(sess.run(None, {"clips": x.numpy()})[0]), model.embed_video(x),
                               atol=1e-4, rtol=1e-4)


def test_a_failed_check_is_one_line_and_keeps_nothing(simclr_ckpt, tmp_path, monkeypatch):
    import glocal.api.export as ex

    monkeypatch.setattr(ex, "ATOL", -1.0)  # no difference can pass
    with pytest.raises(GlocalError, match="differs from eager") as exc:
        export_encoders(simclr_ckpt, "torchscript", tmp_path / "enc", log=lambda s: None)
    _one_line(exc)
    assert list(tmp_path.iterdir()) == []
