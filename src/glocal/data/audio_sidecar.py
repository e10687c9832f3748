"""A video's audio kept beside it as a WAV file: ``NAME.EXT`` + ``NAME.EXT.audio.wav``.

``glocal prepare`` (``audio=wav``, its default) writes each prepared video without an audio
stream and its audio as 16-bit PCM beside it. Reading a 2-s window from PCM is a file seek and a
read (about 0.02 ms), where the same window from AAC inside the MP4 costs about 1.2 ms of
decoding and resampling, and an MP4 without an audio stream opens about 0.4 ms faster (FFmpeg
probes every stream when it opens a file; ``benchmarks/feed.py``, issue 14).

The rule the readers (:mod:`glocal.data.io`) follow: a media file **without** an audio stream
whose sidecar exists gets its audio from the sidecar; a file with its own audio stream never
looks for one. So the sidecar is also how a user attaches separately recorded sound to silent
videos.

The sidecar is a plain RIFF/WAVE file any tool plays. Sample 0 sits at ``start`` seconds on the
video's timeline, ``start`` being the float64 of an optional ``glst`` chunk (0.0 without it), so
a source whose audio starts before or after its first frame keeps its timing. Fast path: 16-bit
PCM or 32-bit float, read at its own rate (mono, or all channels); anything else -- another
rate, a downmix of several channels, another sample format -- the readers decode through FFmpeg
(:func:`glocal.data.io.read_audio` semantics), which is correct but about as slow as AAC.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glocal.errors import DataError

__all__ = ["SUFFIX", "SidecarInfo", "sidecar_path", "find_sidecar", "read_header", "read_samples", "SidecarWriter",
           "remove_sidecar"]

#: appended to the video's file name (``clip.mp4`` -> ``clip.mp4.audio.wav``)
SUFFIX = ".audio.wav"

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_START_CHUNK = b"glst"  # float64 little-endian: seconds of sample 0 on the video's timeline


@dataclass(frozen=True)
class SidecarInfo:
    """Header of a sidecar WAV: where its samples lie in the file and on the timeline."""

    path: str
    sample_rate: int
    channels: int
    dtype: str  # numpy dtype of a stored sample: "<i2" or "<f4" (fast path), "" (FFmpeg decodes it)
    frames: int  # samples per channel
    data_offset: int  # byte offset of sample 0
    start: float  # seconds of sample 0 on the video's timeline

    @property
    def end(self) -> float:
        """Seconds just past the last sample."""
        return self.start + self.frames / self.sample_rate

    def fast(self, sample_rate: int, mono: bool) -> bool:
        """Whether a window at ``sample_rate`` (``mono``: one channel) is a plain read of the file."""
        return bool(self.dtype) and sample_rate == self.sample_rate and (self.channels == 1 or not mono)


def sidecar_path(video: str | os.PathLike[str]) -> str:
    """The sidecar's path for ``video``."""
    return os.fspath(video) + SUFFIX


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.preparing")


def remove_sidecar(video: str | os.PathLike[str]) -> None:
    """Delete ``video``'s sidecar and any half-written one."""
    path = Path(sidecar_path(video))
    path.unlink(missing_ok=True)
    _tmp_path(path).unlink(missing_ok=True)


def find_sidecar(video: str | os.PathLike[str]) -> SidecarInfo | None:
    """The header of ``video``'s sidecar, or None when there is none."""
    path = sidecar_path(video)
    if not os.path.isfile(path):
        return None
    return read_header(path)


def read_header(path: str | os.PathLike[str]) -> SidecarInfo:
    """Parse a WAV header (chunks ``fmt ``, ``data`` and the optional ``glst``).

    Raises :class:`DataError` naming the file when it is not a readable WAV."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise DataError(f"{path}: not a WAV file (no RIFF/WAVE header); delete it or re-run `glocal prepare`")
            fmt: tuple[int, int, int, int] | None = None
            start = 0.0
            size_on_disk = os.fstat(f.fileno()).st_size
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    raise DataError(f"{path}: WAV without a data chunk (cut off?); delete it or re-run `glocal prepare`")
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    body = f.read(size)
                    tag, channels, rate = struct.unpack("<HHI", body[:8])
                    bits = struct.unpack("<H", body[14:16])[0]
                    if tag == _EXTENSIBLE and len(body) >= 26:
                        tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the tag
                    fmt = (tag, channels, rate, bits)
                elif cid == _START_CHUNK and size == 8:
                    start = struct.unpack("<d", f.read(8))[0]
                elif cid == b"data":
                    if fmt is None:
                        raise DataError(f"{path}: WAV data before its format chunk; delete it or re-run `glocal prepare`")
                    tag, channels, rate, bits = fmt
                    offset = f.tell()
                    width = max(1, bits // 8) * max(1, channels)
                    size = min(size, size_on_disk - offset)  # a header written before the data was complete
                    dtype = {(_PCM, 16): "<i2", (_FLOAT, 32): "<f4"}.get((tag, bits), "")
                    if rate <= 0 or channels <= 0:
                        raise DataError(f"{path}: WAV with {channels} channels at {rate} Hz")
                    return SidecarInfo(path, int(rate), int(channels), dtype, size // width, offset, float(start))
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
                    continue
                if size & 1:
                    f.seek(1, os.SEEK_CUR)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    except struct.error as e:
        raise DataError(f"{path}: damaged WAV header; delete it or re-run `glocal prepare`") from e


def read_samples(info: SidecarInfo, start: float, n: int, *, mono: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples from ``start`` seconds at the sidecar's own rate (fast path only, see
    :meth:`SidecarInfo.fast`) -> (float32 ``(C, n)``, bool ``(n,)`` valid; zeros and False outside
    the file's samples). ``C`` is 1 when ``mono`` (the file must then be mono), else the file's
    channel count. Sample ``k`` of the window is sample ``round((start - info.start) * rate) + k``
    of the file."""
    if not info.dtype or (mono and info.channels != 1):
        raise ValueError(f"{info.path}: not a plain read (dtype {info.dtype or 'other'}, {info.channels} channels)")
    c = info.channels
    out = np.zeros((c, n), dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    k0 = int(round((start - info.start) * info.sample_rate))
    lo, hi = max(k0, 0), min(k0 + n, info.frames)
    if hi <= lo:
        return out, valid
    item = np.dtype(info.dtype).itemsize * c
    try:
        with open(info.path, "rb") as f:
            f.seek(info.data_offset + lo * item)
            raw = f.read((hi - lo) * item)
    except OSError as e:
        raise DataError(f"{info.path}: cannot read ({e.strerror or e})") from e
    got = len(raw) // item  # a file cut off after its header was written
    data = np.frombuffer(raw, dtype=info.dtype, count=got * c).reshape(got, c).T
    if info.dtype == "<i2":  # FFmpeg's s16 -> float scale
        out[:, lo - k0 : lo - k0 + got] = data * np.float32(1.0 / 32768.0)
    else:
        out[:, lo - k0 : lo - k0 + got] = data
    valid[lo - k0 : lo - k0 + got] = True
    return out, valid


class SidecarWriter:
    """Write a 16-bit PCM sidecar as samples arrive, under a temporary name; :meth:`close`
    fixes the sizes in the header and renames it into place (so a half-written sidecar never
    has the final name).

    ``start``: seconds of the first sample on the video's timeline (stored in the ``glst`` chunk)."""

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, channels: int = 1, start: float = 0.0) -> None:
        self.path = Path(path)
        self.tmp = _tmp_path(self.path)
        self.rate, self.channels, self.start = int(sample_rate), int(channels), float(start)
        self.frames = 0
        self._f = open(self.tmp, "wb")
        self._f.write(self._header())

    def _header(self) -> bytes:
        data = self.frames * 2 * self.channels
        fmt = struct.pack("<HHIIHH", _PCM, self.channels, self.rate, self.rate * 2 * self.channels,
                          2 * self.channels, 16)
        glst = struct.pack("<d", self.start)
        riff = 4 + (8 + len(fmt)) + (8 + len(glst)) + 8 + data + (data & 1)
        return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                + _START_CHUNK + struct.pack("<I", len(glst)) + glst + b"data" + struct.pack("<I", data))

    def write(self, samples: np.ndarray) -> None:
        """Append float ``(C, S)`` samples, stored as 16-bit PCM (``round(32768 x)``, clipped to
        the int16 range: FFmpeg's scale, so a reader gets ``x`` back to 1.5e-5)."""
        x = np.asarray(samples, dtype=np.float32).reshape(self.channels, -1)
        pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
        self._f.write(np.ascontiguousarray(pcm.T).tobytes())
        self.frames += x.shape[1]
        if self.frames * 2 * self.channels > 0xFFFFFFF0 - 64:
            raise DataError(f"{self.path}: audio too long for one WAV (4 GiB); prepare it with audio=aac")

    def close(self, max_frames: int | None = None) -> None:
        """Finish the header and move the file to its name; ``max_frames``: keep at most that
        many samples per channel (the rest is cut off)."""
        if max_frames is not None and max_frames < self.frames:
            self.frames = max_frames
            self._f.truncate(len(self._header()) + self.frames * 2 * self.channels)  # the header's size is fixed
        self._f.seek(0, os.SEEK_END)
        if self.frames * 2 * self.channels & 1:
            self._f.write(b"\0")
        self._f.seek(0)
        self._f.write(self._header())
        self._f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)
