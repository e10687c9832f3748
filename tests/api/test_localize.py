"""`model.localize` and `glocal localize` on the tiny world and checkpoints of conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import glocal
from glocal.api.localize import BOX_COLOUR, LocalizeOptions, localize_files
from glocal.cli import main
from glocal.errors import GlocalError


def test_localize_api_maps(api_world: Path, glcm_ckpt: Path) -> None:
    model = glocal.load(glcm_ckpt, device="cpu")
    video = api_world / "videos" / "000000.mp4"
    loc = model.localize(video, clips_per_video=2)
    assert loc.maps.ndim == 3 and len(loc.maps) == len(loc.times) == len(loc.crop) > 0
    assert loc.maps.min() >= 0 and loc.maps.max() <= 1
    np.testing.assert_allclose(loc.maps.reshape(len(loc.maps), -1).sum(1), 1, atol=1e-4)  # softmax over positions
    assert np.all(np.diff(loc.times) >= 0)
    clips = model.preprocess_video(video, clips_per_video=1)
    wave = model.preprocess_audio(video, clips_per_video=1)
    maps, frames = model.localize(clips, wave)
    assert maps.shape[:2] == (1, len(frames)) and float(maps.min()) >= 0
    assert isinstance(model.localize([video, video]), list)


def test_localize_command(api_world: Path, glcm_ckpt: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").symlink_to(api_world / "videos" / "000000.mp4")
    (src / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    rc = main(["localize", str(src), "--checkpoint", str(glcm_ckpt), "--out", str(out), "device=cpu", "frames=3",
               "tile=64"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.mp4" in err
    report = json.loads((out / "report.json").read_text())
    assert len(report["videos"]) == 1 and list(report["skipped"]) == [str(src / "broken.mp4")]
    entry = report["videos"][0]
    assert entry["ground_truth"] is True and len(entry["tiles"]) == 3
    # the mp4: video + audio, every original frame, original size
    with av.open(str(api_world / "videos" / "000000.mp4")) as c:
        n_src = sum(1 for _ in c.decode(video=0))
        w, h = c.streams.video[0].width, c.streams.video[0].height
    with av.open(str(out / "a.mp4")) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        assert c.streams.audio[0].codec_context.name == "aac"
        assert (c.streams.video[0].width, c.streams.video[0].height) == (w - w % 2, h - h % 2)
        assert sum(1 for _ in c.decode(video=0)) == n_src
    # the sheet: 3 tiles of the frame scaled to >= 64 px, a 14 px label row; the GT box outline drawn
    sheet = np.asarray(Image.open(out / "a.png").convert("RGB"))
    scale = int(np.ceil(64 / max(h, w)))
    assert sheet.shape == (h * scale + 14, 3 * w * scale, 3)
    ann = json.loads((api_world / "annotations.json").read_text())["videos"]["videos/000000.mp4"]
    t0 = entry["tiles"][0]
    box = ann["source_boxes"][min(len(ann["source_boxes"]) - 1, int(t0["time"] * float(ann.get("fps", 16)) + 1e-6))]
    tile = sheet[14:, : w * scale]
    x0, y0 = int(box[0] * w * scale), int(box[1] * h * scale)
    x1 = int(box[2] * w * scale) - 1
    ymid = (y0 + int(box[3] * h * scale)) // 2
    assert any(tuple(tile[ymid, x]) == BOX_COLOUR for x in (x0, x0 + 1, x1, x1 - 1))


def test_localize_without_gt_and_no_video(api_world: Path, glcm_ckpt: Path, tmp_path: Path) -> None:
    rep = localize_files(api_world / "videos" / "000001.mp4", glcm_ckpt, tmp_path / "o",
                         LocalizeOptions(device="cpu", video=False, gt=False, frames=2))
    assert not (tmp_path / "o" / "000001.mp4").exists() and (tmp_path / "o" / "000001.png").is_file()
    assert all("peak_in_box" not in t for t in rep["videos"][0]["tiles"])


def test_localize_errors(api_world: Path, glcm_ckpt: Path, simclr_ckpt: Path, tmp_path: Path, capsys) -> None:
    video = str(api_world / "videos" / "000000.mp4")
    with pytest.raises(GlocalError, match="method 'simclr' has no audio encoder .*modalities: video"):
        glocal.load(simclr_ckpt, device="cpu").localize(video)
    assert main(["localize", video, "--checkpoint", str(simclr_ckpt), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "simclr" in err and "audio" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["localize", str(empty), "--checkpoint", str(glcm_ckpt), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no video files" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["localize", video, "--checkpoint", str(glcm_ckpt), "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["localize", str(tmp_path / "nope.mp4"), "--checkpoint", str(glcm_ckpt), "--out",
                 str(tmp_path / "n")]) == 2
    assert "not found" in capsys.readouterr().err


def _surround_video(path: Path, channels: int = 6, seconds: float = 1.0, rate: int = 16000, fps: int = 8) -> Path:
    """An mp4 with a 5.1 (6-channel) AAC track, as real footage has (bigbuckbunny.mp4)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        aus = c.add_stream("aac", rate=rate, layout="5.1")
        for i in range(int(seconds * fps)):
            img = np.full((32, 32, 3), 20 * i % 255, np.uint8)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        wave = (0.1 * rng.standard_normal((channels, int(seconds * rate)))).astype(np.float32)
        for start in range(0, wave.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start:start + 1024]), format="fltp",
                                               layout="5.1")
            frame.sample_rate = rate
            for pkt in aus.encode(frame):
                c.mux(pkt)
        for pkt in aus.encode():
            c.mux(pkt)
    return path


def test_localize_surround_audio(glcm_ckpt: Path, tmp_path: Path) -> None:
    """A 5.1 soundtrack (the real clip bigbuckbunny.mp4) used to stop the command with a traceback
    from the AAC writer; the overlay now carries it mixed down to mono."""
    video = _surround_video(tmp_path / "surround.mp4")
    with av.open(str(video)) as c:
        assert c.streams.audio[0].codec_context.channels == 6
    out = tmp_path / "out"
    assert main(["localize", str(video), "--checkpoint", str(glcm_ckpt), "--out", str(out), "device=cpu",
                 "frames=2", "gt=false"]) == 0
    with av.open(str(out / "surround.mp4")) as c:
        assert c.streams.audio[0].codec_context.channels == 1


def test_localize_sheet_of_large_frames_is_scaled_down(glcm_ckpt: Path, tmp_path: Path) -> None:
    """Frames larger than `tile` (real footage) used to keep their size on the sheet: six 1280x720
    frames made a 7680 px wide, 6 MB PNG. Now every tile's longer side is `tile`."""
    from glocal.data.av_writer import write_mp4

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (8, 240, 320, 3), dtype=np.uint8)
    video = write_mp4(tmp_path / "big.mp4", frames, 8.0, (0.1 * rng.standard_normal(16000)).astype(np.float32),
                      16000)
    out = tmp_path / "out"
    rep = localize_files(video, glcm_ckpt, out, LocalizeOptions(device="cpu", video=False, frames=3, tile=64))
    n = len(rep["videos"][0]["tiles"])
    assert Image.open(out / "big.png").size == (64 * n, 48 + 14)
    assert all(0 <= v <= 1 for t in rep["videos"][0]["tiles"] for v in t["peak_xy"])
