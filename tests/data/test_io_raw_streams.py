"""Files without timestamps or a duration (raw elementary streams such as a ``.mpg`` holding
bare MPEG-1 video) and formats that refuse to seek: they read by decoding forward."""

from __future__ import annotations

from pathlib import Path

import av
import av.error
import numpy as np
import pytest

from glocal.data.io import _seek, probe, read_clip
from glocal.data.scan import check_file
from glocal.errors import DataError


def _raw_mpeg1(path: Path, frames: int = 24, fps: int = 24) -> Path:
    """A bare MPEG-1 video stream (no container: no timestamps, no duration), 32x32, frame k's
    blue level ``10 + 9 k``, B-frames on; about 1 KB."""
    with av.open(str(path), "w", format="mpeg1video") as c:
        s = c.add_stream("mpeg1video", rate=fps)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.codec_context.max_b_frames = 2
        for k in range(frames):
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., 2] = 10 + 9 * k
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_plain_pyav_decodes_the_raw_stream(tmp_path: Path) -> None:
    path = _raw_mpeg1(tmp_path / "blue.mpg")
    with av.open(str(path)) as c:
        assert c.format.name == "mpegvideo"
        assert len(list(c.decode(video=0))) == 24


def test_raw_mpeg1_duration_and_rate_are_measured_not_guessed(tmp_path: Path) -> None:
    """FFmpeg guesses the duration of a raw stream from its bit rate (7e-5 s here) and derives
    a 25 fps average rate from that guess; the file holds 24 frames at 24 fps."""
    info = probe(_raw_mpeg1(tmp_path / "blue.mpg"))
    assert info.fps == 24.0
    assert info.duration == pytest.approx(1.0, abs=0.05)


def test_raw_mpeg1_reads_and_scans(tmp_path: Path) -> None:
    path = _raw_mpeg1(tmp_path / "blue.mpg")
    clip = read_clip(path, 0.5, 4, 8, read_audio=False)
    with av.open(str(path)) as c:
        every = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    np.testing.assert_array_equal(clip.frames, every[[12, 15, 18, 21]])  # frames at k / 24 s
    check = check_file(path)
    assert check.kinds() == ["no-audio"]
    assert check.duration == pytest.approx(1.0, abs=0.05)


class _RefusingSeek:
    """A container whose time seeks fail like FFmpeg's on a format without index (EPERM);
    ``byte_ok``: whether a byte seek to 0 still works."""

    def __init__(self, container: av.container.InputContainer, byte_ok: bool) -> None:
        self.c, self.byte_ok = container, byte_ok

    def seek(self, offset: int, **kw: object) -> None:
        if not kw.get("unsupported_byte_offset") or not self.byte_ok:
            raise av.error.PermissionError(1, "Operation not permitted")
        self.c.seek(offset, **kw)

    def __getattr__(self, name: str) -> object:
        return getattr(self.c, name)


def test_a_refused_seek_falls_back_to_the_start(tmp_path: Path) -> None:
    path = _raw_mpeg1(tmp_path / "blue.mpg")
    with av.open(str(path)) as c:
        list(c.demux())  # at the end of the file
        _seek(_RefusingSeek(c, byte_ok=True), c.streams.video[0], None, str(path))
        assert len(list(c.decode(video=0))) == 24  # back at the start


@pytest.mark.parametrize("t,where", [(None, "the start"), (0.5, "0.500 s")])
def test_a_file_that_cannot_seek_at_all_never_says_none(tmp_path: Path, t: float | None, where: str) -> None:
    path = _raw_mpeg1(tmp_path / "blue.mpg")
    with av.open(str(path)) as c:
        with pytest.raises(DataError) as e:
            _seek(_RefusingSeek(c, byte_ok=False), c.streams.video[0], t, str(path))
    msg = str(e.value)
    assert msg == (f"{path}: cannot seek to {where} nor back to the start (Operation not permitted); "
                   "remux it (ffmpeg -i IN -c copy OUT.mkv) or re-encode it")
    assert "None" not in msg and "\n" not in msg
