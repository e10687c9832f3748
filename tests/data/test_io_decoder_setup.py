"""Decoder set-up of the reader: the thread policy and the colour conversion paths."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glocal.data.dataset as dmod
from glocal.data.av_writer import write_mp4
from glocal.data.dataset import MultiViewDataset
from glocal.data.io import MediaReader, auto_decoder_threads, read_clip, usable_cores
from glocal.data.manifest import Manifest
from glocal.data.samplers import ContiguousClipSampler
from glocal.data.transforms import ClipTransform


def _colour_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 ``(n, h, w, 3)``: smooth colour gradients plus blocks (chroma detail everywhere)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for k in range(n):
        img = np.stack([(xx * 255 // w + 40 * k) % 256, yy * 255 // h, (xx + yy) * 127 // (h + w) + 60], -1)
        blocks = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3))
        img = (img + np.repeat(np.repeat(blocks, 8, 0), 8, 1)[:h, :w]) // 2
        out[k] = img
    return out


@pytest.fixture
def colour_video(tmp_path: Path) -> Path:
    return write_mp4(tmp_path / "colour.mp4", _colour_frames(6, 96, 128), 10)


def _reference(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """Frames converted with PyAV's own ``to_ndarray(format="rgb24")`` (a new swscale context
    per frame), the obviously-correct reference for the reader's conversion."""
    kw = {} if size is None else {"height": size[0], "width": size[1]}
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24", **kw) for f in c.decode(video=0)])


def test_native_size_frames_equal_pyav_rgb24(colour_video: Path) -> None:
    clip = read_clip(colour_video, 0.0, 6, 10.0, read_audio=False)
    np.testing.assert_array_equal(clip.frames, _reference(colour_video, None))


@pytest.mark.parametrize("size", [(48, 64), (37, 51), (24, 32), (128, 171)])
def test_resized_frames_are_as_accurate_as_pyav_rgb24(colour_video: Path, size: tuple[int, int]) -> None:
    """Resized frames (swscale to planar gbrp) against an antialiased float resize of the native
    frames: at least as close as PyAV's own packed rgb24 resize (the two swscale paths filter
    chroma slightly differently, so they need not agree bit for bit)."""
    clip = read_clip(colour_video, 0.0, 6, 10.0, size=size, read_audio=False)
    assert clip.frames.shape == (6, *size, 3) and clip.frames.flags["C_CONTIGUOUS"]
    native = torch.from_numpy(_reference(colour_video, None)).permute(0, 3, 1, 2).double()
    target = F.interpolate(native, size=size, mode="bilinear", antialias=True, align_corners=False)
    target = target.permute(0, 2, 3, 1).numpy()
    ours = np.abs(clip.frames - target).mean()
    pyav = np.abs(_reference(colour_video, size) - target).mean()
    assert ours <= pyav + 0.25 and ours < 5.0, (ours, pyav)


def test_auto_threads_by_frame_size() -> None:
    assert auto_decoder_threads(320, 240, 8) == 1
    assert auto_decoder_threads(640, 480, 8) == 1
    assert auto_decoder_threads(1280, 720, 8) == 8
    assert auto_decoder_threads(1920, 1080, 0) == 1  # never fewer than one thread
    assert auto_decoder_threads(1920, 1080, None) is None  # no budget: FFmpeg's automatic threading
    assert auto_decoder_threads(320, 240, None) == 1


def _threads_of(reader: MediaReader) -> tuple[int, str]:
    ctx = reader._container.streams.video[0].codec_context
    return int(ctx.thread_count), ctx.thread_type.name


def test_reader_applies_thread_policy(colour_video: Path, tmp_path: Path) -> None:
    big = write_mp4(tmp_path / "big.mp4", np.zeros((2, 528, 704, 3), np.uint8), 10)  # 704x528 > 640x480
    with MediaReader(colour_video) as r:  # default "auto": small frames -> one thread
        assert _threads_of(r)[0] == 1
    with MediaReader(big, max_threads=3) as r:
        assert _threads_of(r)[0] == 3
        assert r.read_window(0.0, 0.1, size=32).frames.shape[1:] == (32, 43, 3)
    with MediaReader(big) as r:  # no budget: FFmpeg's automatic threading
        assert _threads_of(r) == (0, "AUTO")
    with MediaReader(big, threads=2) as r:
        assert _threads_of(r)[0] == 2
    with MediaReader(colour_video, threads=None) as r:  # FFmpeg's automatic threading
        assert _threads_of(r)[1] == "AUTO"
    with pytest.raises(ValueError, match="decoder threads"):
        MediaReader(colour_video, threads=0)


def test_dataset_divides_cores_among_workers(colour_video: Path, monkeypatch) -> None:
    m = Manifest(root=colour_video.parent, paths=np.array([str(colour_video)]), labels=np.zeros(1, np.int64),
                 class_names=[])
    ds = MultiViewDataset(m, ContiguousClipSampler(4, 10.0, with_audio=False), {"clip": ClipTransform(size=16)})
    assert ds.decoder_threads == "auto" and ds._thread_share() is None  # main process: no budget
    seen: list[dict] = []
    real = dmod.MediaReader

    def spy(path, **kw):
        seen.append(kw)
        return real(path, **kw)

    monkeypatch.setattr(dmod, "MediaReader", spy)
    monkeypatch.setattr(dmod.torch.utils.data, "get_worker_info", lambda: SimpleNamespace(num_workers=1))
    assert ds._thread_share() == usable_cores()  # one worker: every usable core
    monkeypatch.setattr(dmod.torch.utils.data, "get_worker_info", lambda: SimpleNamespace(num_workers=10_000))
    assert ds[0]["clip/video"].shape == (3, 4, 16, 16)
    assert seen[-1] == {"threads": "auto", "max_threads": 1}
