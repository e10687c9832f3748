"""The reader on the codecs, pixel formats and containers real datasets hold: HEVC 10-bit,
MPEG-4 part 2 and MJPEG (full-range yuvj) in AVI, VP9 in WebM, 4:4:4 H.264 in Matroska, H.264
in MPEG-TS, FLV and MOV (with B-frames). Frames must come back in order,
with the source's colours, at native size (packed rgb24 path) and resized (planar gbrp path)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glocal.data.av_writer import encode_frames
from glocal.data.io import probe, read_clip

FPS = 10
N, H, W = 12, 48, 64

CASES = {
    "hevc_10bit.mp4": ("libx265", "yuv420p10le", {"crf": "12", "preset": "ultrafast", "x265-params": "log-level=error"}),
    "mpeg4_part2.avi": ("mpeg4", "yuv420p", {"qscale": "1"}),
    "vp9.webm": ("libvpx-vp9", "yuv420p", {"crf": "10", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
    "mjpeg_fullrange.avi": ("mjpeg", "yuvj420p", {"qscale": "1"}),
    "h264_444.mkv": ("libx264", "yuv444p", {"crf": "10", "preset": "ultrafast"}),
    "h264.ts": ("libx264", "yuv420p", {"crf": "10", "preset": "ultrafast"}),
    "h264.flv": ("libx264", "yuv420p", {"crf": "10", "preset": "ultrafast"}),
    "h264_bframes.mov": ("libx264", "yuv420p", {"crf": "10", "preset": "medium", "bf": "3"}),
}


def _frames() -> np.ndarray:
    """Smooth colour gradients; frame k is brightened by ``6 k`` (its index can be read back)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    base = np.stack([40 + 120 * xx / W, 40 + 120 * yy / H, 150 - 80 * (xx + yy) / (H + W)], axis=-1)
    return np.stack([np.clip(base + 6 * k, 0, 255) for k in range(N)]).astype(np.uint8)


def _write(path: Path, codec: str, pix_fmt: str, options: dict[str, str]) -> Path:
    frames = _frames()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        if "qscale" in options:  # constant quantiser for the MPEG-family encoders
            stream.codec_context.qscale = int(options.pop("qscale"))
        stream.options = options
        encode_frames(container, stream, frames)
    return path


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("codecs")
    out = {}
    for name, (codec, pix_fmt, options) in CASES.items():
        try:
            out[name] = _write(root / name, codec, pix_fmt, dict(options))
        except (av.error.FFmpegError, ValueError) as e:  # an FFmpeg build without this encoder
            out[name] = e
    return out


def _path(coded: dict, name: str) -> Path:
    value = coded[name]
    if not isinstance(value, Path):
        pytest.skip(f"{name}: this FFmpeg build cannot encode it ({value})")
    return value


@pytest.mark.parametrize("name", sorted(CASES))
def test_native_frames_in_order_with_source_colours(coded, name):
    path = _path(coded, name)
    info = probe(path)
    assert (info.width, info.height) == (W, H) and info.fps == pytest.approx(FPS, rel=0.01)
    clip = read_clip(path, 0.0, N, FPS, read_audio=False)
    assert clip.frames.shape == (N, H, W, 3) and clip.frames.dtype == np.uint8
    src = _frames().astype(np.float64)
    err = np.abs(clip.frames - src).mean(axis=(1, 2, 3))
    assert err.max() < 4.0, err  # lossy, but the same picture (wrong range / matrix: >> 10)
    brightness = clip.frames.reshape(N, -1).mean(axis=1)
    assert np.all(np.diff(brightness) > 3)  # frames in presentation order


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("size", [(24, 32), (37, 51)])
def test_resized_frames_match_an_antialiased_resize_of_the_source(coded, name, size):
    path = _path(coded, name)
    clip = read_clip(path, 0.0, N, FPS, size=size, read_audio=False)
    assert clip.frames.shape == (N, *size, 3)
    src = torch.from_numpy(_frames()).permute(0, 3, 1, 2).double()
    target = F.interpolate(src, size=size, mode="bilinear", antialias=True, align_corners=False)
    err = np.abs(clip.frames - target.permute(0, 2, 3, 1).numpy()).mean()
    assert err < 4.0, err


def test_avi_whose_time_base_is_the_frame_period_keeps_every_frame(coded):
    """Regression: AVI stores pts in frames (time base 1/fps). A whole tick of pts slack made the
    reader drop the first frame and show frame k + 1 at time k / fps (UCF101 / HMDB51 are AVI)."""
    from glocal.data.io import MediaReader

    path = _path(coded, "mpeg4_part2.avi")
    with MediaReader(path) as reader:
        assert float(reader._container.streams.video[0].time_base) == pytest.approx(1 / FPS)
        window = reader.read_window(0.0, (N - 1) / FPS)
    np.testing.assert_allclose(window.pts, np.arange(N) / FPS, atol=1e-9)
    src = _frames().reshape(N, -1).mean(axis=1)
    got = window.frames.reshape(N, -1).mean(axis=1)
    assert np.abs(got - src).max() < 2.5  # frame k is source frame k (neighbours differ by 6)
