"""The Python API (``glocal.load``) and ``glocal embed`` on a tiny world and tiny checkpoints."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import glocal
from glocal.cli import main
from glocal.errors import GlocalError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
DOC_CKPT, DOC_WORLD, DOC_OUT = "runs/demo/pretrain/ckpt_epoch0012.pt", "data/world", "runs/demo/embed"
DOC_EXPORT = "runs/demo/export"


@pytest.fixture(scope="module")
def model(glcm_ckpt):
    return glocal.load(glcm_ckpt, device="cpu")


def _videos(world: Path, n: int) -> list[str]:
    return [str(p) for p in sorted((world / "videos").glob("*.mp4"))[:n]]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_import_glocal_does_not_import_torch():
    code = "import sys, glocal; assert 'torch' not in sys.modules; assert callable(glocal.load)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_info(model, glcm_ckpt):
    i = model.info
    assert (i.method, i.modalities) == ("glcm", ("video", "audio"))
    assert (i.clip_frames, i.fps, i.crop_size, i.sample_rate, i.audio_samples) == (8, 8.0, 32, 8000, 8000)
    assert i.video_shape == (3, 8, 32, 32) and i.checkpoint == str(glcm_ckpt) and i.device == "cpu"
    assert json.loads(json.dumps(i.to_dict()))["method"] == "glcm"


def test_path_list_and_tensor_agree(model, api_world):
    a, b = _videos(api_world, 2)
    one = model.embed_video(a, clips_per_video=1)
    both = model.embed_video([a, b], clips_per_video=1, batch_size=1)
    clips = model.preprocess_video([a, b], clips_per_video=1)
    assert clips.shape == (2, 3, 8, 32, 32)
    from_tensor = model.embed_video(clips)
    assert one.shape == (1, both.shape[1]) and both.dtype == torch.float32
    torch.testing.assert_close(both[:1], one, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(from_tensor, both, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(both[0], both[1])
    # several clips: the average of the per-clip embeddings
    four = model.embed_video(a, clips_per_video=4)
    per_clip = model.embed_video(model.preprocess_video(a, clips_per_video=4))
    torch.testing.assert_close(four[0], per_clip.mean(0), atol=1e-5, rtol=1e-4)

    audio = model.embed_audio([a, b], clips_per_video=1)
    wave = model.preprocess_audio([a, b], clips_per_video=1)
    assert wave.shape == (2, 8000)
    torch.testing.assert_close(model.embed_audio(wave), audio, atol=1e-5, rtol=1e-4)


def test_a_dataset_folder_gives_one_row_per_manifest_row(model, api_world):
    emb = model.embed_video(api_world, clips_per_video=1)
    with open(api_world / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert emb.shape[0] == len(rows)
    first = model.embed_video(api_world / rows[0]["path"], clips_per_video=1)
    torch.testing.assert_close(emb[:1], first, atol=1e-5, rtol=1e-4)


def test_feature_maps(model, api_world):
    clips = model.preprocess_video(_videos(api_world, 2), clips_per_video=1)
    emb, maps = model.embed_video(clips, maps=True)
    assert len(maps["spatial"]) == 2 and all(m.shape[0] == 2 and m.ndim == 5 for m in maps["spatial"])
    assert maps["frames"].shape[0] == 2 and maps["frames"].shape[2] == 8
    # the global embedding is the mean-pooled concatenation of the spatial maps
    torch.testing.assert_close(emb, torch.cat([m.mean(dim=(2, 3, 4)) for m in maps["spatial"]], 1),
                               atol=1e-5, rtol=1e-4)


def test_bad_tensor_shapes_are_one_line_errors(model):
    with pytest.raises(GlocalError, match=r"\(B, 3, T, H, W\)"):
        model.embed_video(torch.zeros(2, 8, 32, 32))
    with pytest.raises(GlocalError, match=r"\(B, N\)"):
        model.embed_audio(torch.zeros(2, 1, 8000))


def test_method_without_audio(simclr_ckpt, api_world, tmp_path):
    m = glocal.load(simclr_ckpt, device="cpu")
    assert m.info.modalities == ("video",)
    assert m.embed_video(_videos(api_world, 1), clips_per_video=1).shape[0] == 1
    with pytest.raises(GlocalError) as exc:
        m.embed_audio(_videos(api_world, 1))
    assert "method 'simclr' has no audio encoder" in _one_line(exc)
    assert main(["embed", str(api_world), "--checkpoint", str(simclr_ckpt), "--out", str(tmp_path / "o"),
                 "modality=audio", "--quiet"]) == 2


def test_not_a_checkpoint_and_another_kind(tmp_path, api_world):
    video = _videos(api_world, 1)[0]
    with pytest.raises(GlocalError, match="not a glocal checkpoint") as exc:
        glocal.load(video, device="cpu")
    _one_line(exc)
    plain = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(3)}, plain)  # a torch file of another kind
    with pytest.raises(GlocalError, match="not a glocal checkpoint") as exc:
        glocal.load(plain, device="cpu")
    _one_line(exc)
    with pytest.raises(GlocalError, match="not found") as exc:
        glocal.load(tmp_path / "missing.pt", device="cpu")
    _one_line(exc)


def test_empty_folder_and_unreadable_file(model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GlocalError) as exc:
        model.embed_video(empty)
    _one_line(exc)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(GlocalError, match="bad.mp4") as exc:
        model.embed_video(bad)
    _one_line(exc)
    assert main(["embed", str(empty), "--checkpoint", "x.pt", "--out", str(tmp_path / "o"), "--quiet"]) == 2


# ---------------------------------------------------------------------------------------- glocal embed


def _embed(data, ckpt, out, *words: str) -> int:
    return main(["embed", str(data), "--checkpoint", str(ckpt), "--out", str(out), "--quiet", *words])


def test_embed_end_to_end_and_resume(glcm_ckpt, api_world, tmp_path, capsys):
    out = tmp_path / "emb"
    assert _embed(api_world, glcm_ckpt, out, "modality=both", "chunk_size=4", "clips_per_video=1") == 0
    assert "6 of 6 files embedded" in capsys.readouterr().out
    video, audio = np.load(out / "video.npy"), np.load(out / "audio.npy")
    assert video.dtype == np.float32 and video.shape[0] == 6 and audio.shape[0] == 6
    with open(api_world / "manifest.csv") as fh:
        manifest = list(csv.DictReader(fh))
    with open(out / "index.csv") as fh:
        index = list(csv.DictReader(fh))
    assert [(r["path"], r["label"], r["split"]) for r in index] == \
        [(r["path"], r["label"], r["split"]) for r in manifest]
    assert [int(r["row"]) for r in index] == list(range(6))
    # the same numbers as the API
    model = glocal.load(glcm_ckpt, device="cpu")
    np.testing.assert_allclose(video, model.embed_video(api_world, clips_per_video=1).numpy(), atol=1e-5)
    report = json.loads((out / "report.json").read_text())
    assert (report["files"], report["embedded"], report["skipped"], report["chunks"]) == (6, 6, 0, 2)
    assert report["dims"] == {"video": video.shape[1], "audio": audio.shape[1]}

    # resume: finished chunks are not redone; a lost chunk is
    chunks = sorted((out / "chunks").glob("chunk_*.npz"))
    assert len(chunks) == 2
    kept = chunks[0].stat().st_mtime_ns
    chunks[1].unlink()
    assert _embed(api_world, glcm_ckpt, out, "modality=both", "chunk_size=4", "clips_per_video=1") == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["resumed_chunks"], report["embedded"]) == (1, 6)
    assert chunks[0].stat().st_mtime_ns == kept and chunks[1].is_file()
    np.testing.assert_array_equal(np.load(out / "video.npy"), video)

    # other settings into the same folder: refused, unless --overwrite
    assert _embed(api_world, glcm_ckpt, out, "modality=video") == 2
    assert "other settings" in capsys.readouterr().err
    assert _embed(api_world, glcm_ckpt, out, "modality=video", "clips_per_video=1", "--overwrite") == 0
    assert not (out / "audio.npy").exists() and np.load(out / "video.npy").shape == video.shape


def test_embed_skips_and_reports_a_corrupt_file(glcm_ckpt, api_world, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in _videos(api_world, 3):
        shutil.copy(p, folder)
    (folder / "000001b_broken.mp4").write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "emb"
    assert _embed(folder, glcm_ckpt, out, "clips_per_video=1", "chunk_size=2") == 0
    captured = capsys.readouterr()
    assert "skipped 000001b_broken.mp4" in captured.err and "1 skipped" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert (report["files"], report["embedded"], report["skipped"]) == (4, 3, 1)
    assert list(report["skipped_files"]) == ["000001b_broken.mp4"] and report["format"] == "unlabeled"
    with open(out / "index.csv") as fh:
        paths = [r["path"] for r in csv.DictReader(fh)]
    assert paths == ["000000.mp4", "000001.mp4", "000002.mp4"]
    assert np.load(out / "video.npy").shape[0] == 3


def test_embed_checks_the_output_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    # the checkpoint does not exist either: the --out problem is found first
    assert main(["embed", str(tmp_path), "--checkpoint", str(tmp_path / "nope.pt"), "--out",
                 str(blocker / "sub"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "nope.pt" not in err and err.count("\n") == 1
    assert _embed(tmp_path, tmp_path / "nope.pt", blocker) == 2
    assert "is a file" in capsys.readouterr().err


def test_embed_rejects_bad_options(tmp_path, capsys):
    assert _embed(tmp_path, "x.pt", tmp_path / "o", "modality=sound") == 2
    assert "modality" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- docs/api.md


def test_the_docs_examples_run(glcm_ckpt, api_world, tmp_path, monkeypatch):
    """Every ```python and `glocal embed` / `glocal export` example of docs/api.md, in order, with the paths replaced."""
    text = DOCS.read_text()
    out = tmp_path / "embed"

    def sub(s: str) -> str:
        s = s.replace(DOC_CKPT, str(glcm_ckpt)).replace(DOC_OUT, str(out)).replace(DOC_WORLD, str(api_world))
        return s.replace(DOC_EXPORT, str(tmp_path / "export")).replace("runs/demo/localize", str(tmp_path / "localize")).replace(
            "runs/demo/search", str(tmp_path / "search")).replace("runs/demo/report", str(tmp_path / "report"))

    blocks = re.findall(r"```(python|bash)\n(.*?)```", text, flags=re.S)
    assert sum(kind == "python" for kind, _ in blocks) >= 4
    monkeypatch.setattr(glocal, "load", lambda ckpt, device="auto", **kw: _load_cpu(ckpt, **kw))
    namespace: dict = {}
    ran = 0
    for kind, code in blocks:
        if kind == "python":
            exec(compile(sub(code), str(DOCS), "exec"), namespace)
            ran += 1
        else:
            for line in sub(code).strip().splitlines():
                words = shlex.split(line)
                assert words[0] == "glocal"
                assert main(words[1:]) == 0
            ran += 1
    assert (out / "video.npy").is_file() and ran == len(blocks)
    assert (tmp_path / "report" / "report.html").is_file()  # the results report example


def _load_cpu(ckpt, **kw):
    from glocal.api import load

    return load(ckpt, "cpu", **kw)


def _write_wav(path: Path, freq: float, seconds: float = 1.5, rate: int = 8000) -> Path:
    import wave

    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def test_plain_audio_files(model, glcm_ckpt, tmp_path, capsys):
    """embed_audio and `glocal embed modality=audio` read sound files too (the audio timeline)."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    files = [_write_wav(sounds / f"tone{k}.wav", 220.0 * (k + 1)) for k in range(3)]
    emb = model.embed_audio(files, clips_per_video=2)
    assert emb.shape[0] == 3 and not torch.allclose(emb[0], emb[1])
    with pytest.raises(GlocalError, match="no video stream"):
        model.embed_video(files[0])
    out = tmp_path / "emb"
    assert _embed(sounds, glcm_ckpt, out, "modality=audio", "clips_per_video=2") == 0
    np.testing.assert_allclose(np.load(out / "audio.npy"), emb.numpy(), atol=1e-5)
    assert not (out / "video.npy").exists()


def test_damage_past_the_probe_is_skipped_file_by_file(glcm_ckpt, api_world, tmp_path, monkeypatch, capsys):
    """A file that passes the probe but fails while decoding (damage further in) costs only itself:
    its chunk is redone file by file, the file is skipped and reported."""
    import glocal.api.embed as embed
    from glocal.errors import DataError

    real = embed._embed_rows
    victim = _videos(api_world, 3)[1]

    def failing(enc, m, modality, opts):
        if victim in m.paths.tolist():
            raise DataError(f"{victim}: cannot decode video at 1.0 s (damaged)")
        return real(enc, m, modality, opts)

    monkeypatch.setattr(embed, "_embed_rows", failing)
    out = tmp_path / "emb"
    assert _embed(api_world, glcm_ckpt, out, "clips_per_video=1", "chunk_size=3") == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["embedded"], report["skipped"]) == (5, 1)
    assert "damaged" in report["skipped_files"]["videos/000001.mp4"]
    assert "skipped videos/000001.mp4" in capsys.readouterr().err
    with open(out / "index.csv") as fh:
        assert "videos/000001.mp4" not in [r["path"] for r in csv.DictReader(fh)]
