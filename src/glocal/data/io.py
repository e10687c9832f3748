"""Read video frames and audio from media files with PyAV, aligned by presentation timestamps.

All times are seconds on the file's own timeline: the first video frame sits at
``MediaInfo.video_start`` (normally 0.0) and the first real audio sample at
``MediaInfo.audio_start``. Video frames are chosen by pts (robust to variable frame rate) and
audio samples are placed into the output window by pts, so encoder priming (AAC's ~1024-sample
delay), edit lists, seek granularity and dropped packets never shift audio against video.

Entry points:

- :func:`read_window` / :meth:`MediaReader.read_window`: decode every frame on screen in
  ``[t0, t1]`` once (seek to the keyframe before ``t0``, stop at the first frame past ``t1``;
  with ``keep`` times only the frames shown at those times are converted to RGB and unneeded
  non-reference frames are dropped by the decoder), plus one audio window; cut any number of
  views from the resulting :class:`DecodedWindow` with :func:`select_frames` (the frame on
  screen at each time) and :meth:`DecodedWindow.audio_at`. :class:`MediaReader` keeps the file
  open between probing and reading (the dataset plans its views from the probe).
- :func:`read_clip`: ``num_frames`` frames at ``fps`` from ``start`` + the audio of that span (a
  read_window of the clip).
- :func:`read_audio`: audio only (wav/flac/ogg/mp3/m4a or a video's audio track).
- :func:`probe`: metadata.

A file without an audio stream gets its audio from a WAV beside it, ``NAME.EXT.audio.wav``,
when there is one (what ``glocal prepare`` writes; :mod:`glocal.data.audio_sidecar`).

Frames are resized inside swscale (``size``: an int shorter side with the aspect kept, or
``(H, W)``) with one swscale context per window.

Shapes: frames are uint8 ``(T, H, W, 3)`` RGB, audio is float32 ``(C, N)``, validity masks are
bool ``(N,)``.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
from av.video.reformatter import VideoReformatter
import numpy as np

from glocal.errors import DataError

from .audio_sidecar import SidecarInfo, find_sidecar, read_samples
from .av_compat import SWS_ONE_THREAD, channel_layout, open_input
from .config import SAMPLE_RATE

__all__ = [
    "MediaInfo",
    "AVClip",
    "DecodedWindow",
    "MediaReader",
    "SizeSpec",
    "DecoderThreads",
    "usable_cores",
    "declared_audio_end",
    "auto_decoder_threads",
    "probe",
    "read_window",
    "select_frames",
    "read_clip",
    "read_audio",
]

# Slack when comparing a frame's pts with a target time (seconds), on top of one time-base tick
# (containers such as Matroska round timestamps to 1 ms).
_PTS_EPS = 1e-6
# Audio is decoded from this long before the window so that decoders with overlapping
# transforms (AAC, MP3, Vorbis) have settled when the window starts.
_AUDIO_PREROLL = 0.1
# A packet whose frame (pts ``p``) cannot be on screen at any wanted time -- no wanted time in
# ``[p, p + _SHOW_HORIZON_FRAMES / fps]`` (plus timestamp slack) -- is decoded with ``skip_frame=NONREF``: the decoder
# drops it unless other frames reference it. Roughly halves the cost of decoding from a distant
# keyframe in B-frame streams, and of sparse frame sets. A frame that was dropped but turns out
# to be on screen at a wanted time (a gap in a variable-frame-rate stream) is detected exactly
# and the window is decoded again without dropping.
_SHOW_HORIZON_FRAMES = 1.0
# Under the "auto" decoder-thread policy, video whose frames have at most this many pixels is
# decoded by one thread. FFmpeg's frame threading has to start and fill a pipeline of frames
# after every seek; for the short windows a sample decodes that costs more than it gives on
# small frames. Measured on an idle 2-core machine, 2 s windows of H.264 (seek to the keyframe,
# decode to the window's end): at 320x240 and 640x480, automatic threading used 35-50 % more
# CPU than one thread and was no faster in wall time (1.1-1.6x slower); at 1280x720 it was
# ~12 % faster in wall time (benchmarks/decoder_threads.py).
_SMALL_FRAME_PIXELS = 640 * 480
# swscale on one thread: PyAV >= 17 threads every reformat by default, which on frames of a
# few hundred pixels costs more CPU than it saves (older versions take no ``threads``).
_SWS_ONE_THREAD = SWS_ONE_THREAD
# Undecodable packets tolerated per stream before the file is declared broken.
_MAX_BAD_PACKETS = 64
# Errors FFmpeg raises while demuxing a damaged/truncated file; treated as end of stream.
_DEMUX_END_ERRORS = (av.error.InvalidDataError, av.error.EOFError)
# Errors a decoder raises for one bad packet (corrupt or truncated data; corrupt AAC can surface
# as an error code FFmpeg does not name); the packet is skipped.
_BAD_PACKET_ERRORS = (
    av.error.InvalidDataError,
    av.error.UndefinedError,
    av.error.PatchWelcomeError,
)


@dataclass(frozen=True)
class MediaInfo:
    """Stream metadata of one media file (see the module docstring for the time convention).

    ``duration`` is the longest stream's length in seconds (metadata; decoded when absent), so
    the media spans ``min(video_start, audio_start) + [0, duration]``. ``fps`` is the video
    stream's average frame rate (0.0 without video). ``rotation`` is the counter-clockwise angle
    of the display matrix normalised to ``{0, 90, 180, 270}``; frames returned by
    :func:`read_clip` are already rotated upright and ``width``/``height`` are the display size
    after that rotation. ``audio_start`` is the pts of the first real audio sample, after the
    container's edit list has removed encoder priming. ``audio_file`` is the path of the WAV
    sidecar the audio comes from (``NAME.EXT.audio.wav`` beside a file without an audio
    stream, :mod:`glocal.data.audio_sidecar`), ``""`` when it comes from the file itself.
    """

    path: str
    duration: float
    fps: float
    width: int
    height: int
    rotation: int
    has_video: bool
    has_audio: bool
    audio_sample_rate: int
    audio_channels: int
    video_start: float
    audio_start: float
    audio_file: str = ""


@dataclass
class AVClip:
    """A clip read by :func:`read_clip`.

    frames: uint8 ``(T, H, W, 3)`` RGB, or None when video was not requested.
    frame_times: float64 ``(T,)`` the requested sample times in seconds.
    audio: float32 ``(C, N)`` at ``sample_rate`` (``C == 1`` when mono), or None when the file has
        no audio stream or audio was not requested.
    audio_valid: bool ``(N,)``; False where the window holds no decoded audio (zero padding).
    """

    frames: np.ndarray | None
    frame_times: np.ndarray
    audio: np.ndarray | None
    audio_valid: np.ndarray | None
    sample_rate: int
    info: MediaInfo


# --------------------------------------------------------------------------------------------
# Opening and probing
# --------------------------------------------------------------------------------------------


def _check_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` as a string after checking that it is a non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if not p.is_file():
        raise DataError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    return str(p)


#: Video decoder threads: ``"auto"`` (see :func:`auto_decoder_threads`), an int, or None for
#: FFmpeg's automatic frame + slice threading.
DecoderThreads = int | Literal["auto"] | None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def auto_decoder_threads(width: int, height: int, max_threads: int | None) -> int | None:
    """Threads of the ``"auto"`` policy for ``width`` x ``height`` frames: 1 up to 640x480
    pixels (threading costs more than it gives on small frames, see ``_SMALL_FRAME_PIXELS``);
    larger frames get ``max_threads`` (at least 1), or FFmpeg's automatic threading when no
    budget is given (None: the process has the machine to itself)."""
    if width * height <= _SMALL_FRAME_PIXELS:
        return 1
    return None if max_threads is None else max(1, int(max_threads))


def _set_threads(stream: av.stream.Stream, threads: DecoderThreads, max_threads: int | None) -> None:
    """Configure ``stream``'s decoder threads (before the decoder opens)."""
    ctx = stream.codec_context
    if threads == "auto":
        threads = auto_decoder_threads(int(ctx.width or 0), int(ctx.height or 0), max_threads)
    if threads is None:
        stream.thread_type = "AUTO"
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"decoder threads must be 'auto', None or an int >= 1, got {threads!r}")
    elif threads > 1:
        stream.thread_type = "AUTO"
        ctx.thread_count = threads
    else:
        ctx.thread_count = 1


def _open(
    path: str, threads: DecoderThreads = "auto", max_threads: int | None = None
) -> av.container.InputContainer:
    """Open ``path`` for reading, FFmpeg/OS failures -> :class:`DataError`.

    ``threads``: video decoder threads -- ``"auto"`` (default: one thread for frames up to
    640x480, else ``max_threads``, or FFmpeg's automatic threading without a budget; see
    :func:`auto_decoder_threads`), an int, or None for FFmpeg's automatic threading."""
    try:
        container = open_input(path)
    except av.error.InvalidDataError as e:
        raise DataError(f"{path}: not a media file, or damaged beyond reading ({_reason(e)})") from e
    except (av.error.FFmpegError, OSError) as e:
        raise DataError(f"{path}: cannot open ({_reason(e)})") from e
    try:
        for stream in container.streams.video[:1]:
            _set_threads(stream, threads, max_threads)  # must happen before the decoder opens
    except BaseException:
        container.close()
        raise
    return container


# ``AVFMT_NOTIMESTAMPS``: a raw elementary stream (MPEG-1/2 video, H.264 Annex B, ...) whose
# timestamps come from the parser and whose durations FFmpeg guesses from the bit rate.
_AVFMT_NOTIMESTAMPS = 0x80


def _no_timestamps(container: av.container.InputContainer) -> bool:
    """Whether ``container``'s format stores no timestamps (a raw elementary stream)."""
    return bool(int(container.format.flags or 0) & _AVFMT_NOTIMESTAMPS)


def _reason(e: BaseException) -> str:
    """Short human-readable reason of an FFmpeg error."""
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _seconds(ts: int | None, time_base: Fraction | av.AVRational | None) -> float | None:
    """Convert a stream timestamp to seconds (None when either part is unknown; an unset time
    base is None up to PyAV 18 and a falsy ``AVRational(0, 1)`` from PyAV 19)."""
    if ts is None or not time_base:
        return None
    # int arithmetic + one true division: correctly rounded like float(ts * time_base), without
    # building Fractions (a measurable cost at hundreds of packets per window)
    return (ts * time_base.numerator) / time_base.denominator


class _Clock:
    """Seconds of the timestamps of objects that share one time base (the packets, or the
    frames, of one stream). The base is read once, from the first object that has one: every
    ``.time_base`` read builds a new Fraction in PyAV (0.2 ms per 32-frame window)."""

    __slots__ = ("num", "den")

    def __init__(self) -> None:
        self.num = self.den = 0

    def seconds(self, obj: av.Packet | av.frame.Frame) -> float | None:
        """``obj.pts`` in seconds, or None when the pts or the time base is unknown."""
        pts = obj.pts
        if pts is None:
            return None
        if not self.den:
            tb = obj.time_base
            if not tb:
                return None
            self.num, self.den = tb.numerator, tb.denominator
        return (pts * self.num) / self.den


def _tick(stream: av.stream.Stream) -> float:
    """One time-base tick of ``stream`` in seconds (0.0 when unknown)."""
    return float(stream.time_base) if stream.time_base else 0.0


def _pts_tolerance(stream: av.stream.Stream) -> float:
    """Slack (seconds) when matching a video frame's pts to a wanted time: one time-base tick
    (timestamps rounded to it, e.g. Matroska's 1 ms), but at most a quarter of the frame period.

    The cap matters where the time base *is* the frame period (AVI, as in UCF101 / HMDB51,
    stores pts in frames): a whole tick of slack there would show frame ``k + 1`` at time
    ``k / fps`` and lose the first frame."""
    tick = _tick(stream)
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        tick = min(tick, 0.25 / float(rate))
    return max(_PTS_EPS, tick + _PTS_EPS)


def _normalize_rotation(degrees: float) -> int:
    """Round a display-matrix angle to the nearest multiple of 90 in ``[0, 360)``."""
    return int(round(degrees / 90.0)) % 4 * 90


def _stream_end(stream: av.stream.Stream) -> float | None:
    """End time (start + duration) of a stream from its metadata, in seconds."""
    dur = _seconds(stream.duration, stream.time_base)
    if dur is None:
        return None
    return (_seconds(stream.start_time, stream.time_base) or 0.0) + dur


def _first_frame(container: av.container.InputContainer, stream: av.stream.Stream, path: str):
    """Decode and return the first frame of ``stream`` (None if nothing decodes). Rewinds first."""
    _seek(container, stream, None, path)
    for frame in _decode(container, stream, path):
        return frame
    return None


def _scan_end(container: av.container.InputContainer, path: str) -> float:
    """Last ``pts + duration`` over all packets, in seconds (demuxes the whole file)."""
    _seek(container, None, None, path)
    end = 0.0
    it = container.demux()
    while True:
        try:
            packet = next(it)
        except StopIteration:
            break
        except _DEMUX_END_ERRORS:
            break
        ts = packet.pts if packet.pts is not None else packet.dts
        t = _seconds(ts, packet.time_base)
        if t is not None:
            end = max(end, t + (_seconds(packet.duration, packet.time_base) or 0.0))
    return end


def _count_packets(container: av.container.InputContainer, stream: av.stream.Stream, path: str) -> int:
    """Number of non-empty packets of ``stream`` (demuxes the whole file; a raw video stream
    has one packet per frame)."""
    _seek(container, None, None, path)
    n = 0
    it = container.demux(stream)
    while True:
        try:
            packet = next(it)
        except (StopIteration, *_DEMUX_END_ERRORS):
            break
        n += int(packet.size > 0)
    return n


def _sidecar_of(container: av.container.InputContainer, path: str) -> SidecarInfo | None:
    """The WAV sidecar that holds ``path``'s audio: only for a file without an audio stream."""
    return None if container.streams.audio else find_sidecar(path)


def _probe_container(
    container: av.container.InputContainer, path: str, *, decode_first: bool = True,
    sidecar: SidecarInfo | None = None,
) -> MediaInfo:
    """Build :class:`MediaInfo` from an open container (and its audio ``sidecar``, if any).

    With ``decode_first`` the first video frame is decoded to read the rotation (only stored in
    frame side data by PyAV) and the exact first pts; without it ``rotation`` is 0 and the caller
    fills it from the frames it decodes. May move the read position (callers seek afterwards).
    """
    vstream = container.streams.video[0] if container.streams.video else None
    astream = container.streams.audio[0] if container.streams.audio else None
    if vstream is None and astream is None:
        raise DataError(f"{path}: no video or audio stream")
    if astream is not None:
        sidecar = None

    fps = width = height = rotation = 0
    video_start = audio_start = 0.0
    raw = _no_timestamps(container)
    if vstream is not None:
        rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
        if raw:  # the average rate comes from the guessed duration; the stream header's rate is exact
            rate = vstream.guessed_rate or rate
        fps = float(rate) if rate else 0.0
        width, height = vstream.codec_context.width, vstream.codec_context.height
        video_start = _seconds(vstream.start_time, vstream.time_base)
        if decode_first or video_start is None:
            frame = _first_frame(container, vstream, path)
            if frame is None:
                raise DataError(f"{path}: the video stream has no decodable frame")
            rotation = _normalize_rotation(frame.rotation)
            width, height = frame.width, frame.height
            if frame.pts is not None:
                video_start = _seconds(frame.pts, frame.time_base)
        video_start = video_start or 0.0
        if rotation in (90, 270):
            width, height = height, width

    sample_rate = channels = 0
    if astream is not None:
        sample_rate = int(astream.codec_context.sample_rate or 0)
        channels = int(astream.codec_context.channels or 0)
        audio_start = _seconds(astream.start_time, astream.time_base)
        if audio_start is None:
            frame = _first_frame(container, astream, path)
            audio_start = _seconds(frame.pts, frame.time_base) if frame is not None else None
        audio_start = audio_start or 0.0

    lengths = [_seconds(s.duration, s.time_base) for s in (vstream, astream) if s is not None]
    lengths = [d for d in lengths if d is not None]
    if sidecar is not None:
        sample_rate, channels, audio_start = sidecar.sample_rate, sidecar.channels, sidecar.start
        lengths.append(sidecar.frames / sidecar.sample_rate)
    if container.duration is not None:
        lengths.append(container.duration / av.time_base)
    if raw:  # durations of raw streams are guesses from the bit rate (7e-5 s for a 1 s MPEG-1 file)
        lengths = [_count_packets(container, vstream, path) / fps] if vstream is not None and fps else []
        video_start = 0.0
    duration = max(lengths) if lengths else _scan_end(container, path) - min(video_start, audio_start)

    return MediaInfo(
        path=path,
        duration=float(duration),
        fps=fps,
        width=int(width),
        height=int(height),
        rotation=int(rotation),
        has_video=vstream is not None,
        has_audio=astream is not None or sidecar is not None,
        audio_sample_rate=sample_rate,
        audio_channels=channels,
        video_start=float(video_start),
        audio_start=float(audio_start),
        audio_file=sidecar.path if sidecar is not None else "",
    )


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read the metadata of a media file (decodes one video frame for the rotation).

    Raises :class:`DataError` for a missing, empty or unreadable file or one without streams.
    """
    p = _check_path(path)
    with _open(p) as container:
        return _probe_container(container, p, sidecar=_sidecar_of(container, p))


# --------------------------------------------------------------------------------------------
# Demux + decode
# --------------------------------------------------------------------------------------------


def _seek(
    container: av.container.InputContainer,
    stream: av.stream.Stream | None,
    t: float | None,
    path: str,
) -> None:
    """Seek to the keyframe at or before ``t`` seconds on ``stream`` (``t=None``: the start).

    A time seek FFmpeg refuses (formats without timestamps or index, e.g. a raw MPEG-1 stream)
    falls back to the start of the file by byte offset; callers decode forward from there."""
    try:
        if stream is None or t is None or not stream.time_base:
            container.seek(0, backward=True, any_frame=False)
        else:
            ts = math.floor(t / stream.time_base)
            container.seek(ts, stream=stream, backward=True, any_frame=False)
        return
    except (av.error.FFmpegError, OSError) as e:
        first = e
    try:
        container.seek(0, any_frame=True, unsupported_byte_offset=True)
    except (av.error.FFmpegError, OSError) as e:
        where = "the start" if t is None else f"{t:.3f} s"
        raise DataError(f"{path}: cannot seek to {where} nor back to the start ({_reason(first)}); "
                        "remux it (ffmpeg -i IN -c copy OUT.mkv) or re-encode it") from e


def _decode(
    container: av.container.InputContainer,
    stream: av.stream.Stream,
    path: str,
    on_packet: Callable[[av.Packet], None] | None = None,
) -> Iterator:
    """Yield decoded frames of ``stream`` packet by packet from the current position.

    ``on_packet`` is called with each packet before it is decoded (to adjust decoder settings).

    A packet that fails to decode (``_BAD_PACKET_ERRORS``: truncated or corrupt data) is skipped;
    a demuxer error ends the stream (truncated file). More than ``_MAX_BAD_PACKETS`` bad packets
    raise :class:`DataError`.
    """
    bad = 0
    packets = container.demux(stream)
    flushed = False
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except _DEMUX_END_ERRORS:
            break
        flushed = packet.size == 0  # PyAV ends each stream with an empty (flush) packet
        if on_packet is not None:
            on_packet(packet)
        try:
            frames = stream.decode(packet)
        except _BAD_PACKET_ERRORS as e:
            bad += 1
            if bad > _MAX_BAD_PACKETS:
                raise DataError(f"{path}: too many undecodable {stream.type} packets ({_reason(e)})") from e
            continue
        yield from frames
    if not flushed:
        try:
            yield from stream.decode(None)
        except _BAD_PACKET_ERRORS:
            return


# --------------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------------

#: Decode size: None (native), an int (shorter side, aspect kept) or ``(H, W)``.
SizeSpec = int | tuple[int, int] | None


def _frame_time(frame: av.VideoFrame, previous: float | None, step: float, clock: _Clock) -> float:
    """Presentation time of ``frame`` in seconds; extrapolated from ``previous`` when pts is missing."""
    t = clock.seconds(frame)
    if t is not None:
        return t
    return 0.0 if previous is None else previous + step


def _resolve_size(size: SizeSpec, width: int, height: int) -> tuple[int, int] | None:
    """Output ``(H, W)`` for a display frame of ``width`` x ``height`` (None: native size)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        scale = int(size) / max(1, min(width, height))
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    return int(size[0]), int(size[1])


def _planar_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A ``gbrp`` frame's planes as uint8 ``(H, W, 3)`` RGB.

    Resizing to planar ``gbrp`` and interleaving here is faster than swscale's packed ``rgb24``
    output when scaling (measured 0.09 vs 0.19 ms per frame for 320x240 -> 171x128, 0.46 vs
    0.63 ms for 1280x720 -> 228x128); without scaling ``rgb24`` has the faster path."""
    h, w = frame.height, frame.width
    g, b, r = (np.frombuffer(p, np.uint8).reshape(h, p.line_size)[:, :w] for p in frame.planes[:3])
    return np.stack([r, g, b], axis=-1)


class _WindowCollector:
    """Collect, in presentation order, the distinct frames on screen at the times of interest.

    Times of interest: every time in ``[t0, t1]`` (``keep=None``) or only the sorted ``keep``
    times. A frame with pts ``p`` is on screen at ``t`` when ``p <= t + tolerance`` and the next
    frame's pts is ``> t + tolerance``; the first decoded frame also covers earlier times. Frames
    are pushed in presentation order; only collected frames are converted to RGB (resized inside
    swscale and rotated upright), each once.
    """

    def __init__(
        self,
        t0: float,
        t1: float,
        keep: np.ndarray | None,
        size: SizeSpec,
        tolerance: float,
    ) -> None:
        self.t0, self.t1 = t0, t1
        self.keep = keep
        self.k = 0  # index of the first keep time not yet covered
        self.size = size
        self.tolerance = tolerance
        self.frames: list[np.ndarray] = []
        self.pts: list[float] = []
        self.pending: av.VideoFrame | None = None
        self.pending_t = 0.0
        self.settled_any = False
        self.seen: list[float] = []  # pts of every decoded frame
        self.done = False
        self.rotation = 0
        # One swscale context for every frame of the window (a frame's own ``to_ndarray(width=,
        # height=)`` builds a new one per call: ~4x slower at 320x240).
        self.reformatter = VideoReformatter()

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Frame as uint8 ``(H, W, 3)`` RGB at the requested display size, upright."""
        self.rotation = _normalize_rotation(frame.rotation)
        k = self.rotation // 90
        disp_w, disp_h = (frame.height, frame.width) if k % 2 else (frame.width, frame.height)
        out = _resolve_size(self.size, disp_w, disp_h)
        h, w = (frame.height, frame.width) if out is None else (out[::-1] if k % 2 else out)
        if (h, w) == (frame.height, frame.width):
            arr = self.reformatter.reformat(frame, format="rgb24", **_SWS_ONE_THREAD).to_ndarray()
        else:  # (the stored, unrotated frame is resized to the transposed size when k is odd)
            arr = _planar_rgb(self.reformatter.reformat(frame, width=w, height=h, format="gbrp", **_SWS_ONE_THREAD))
        return np.ascontiguousarray(np.rot90(arr, k)) if k else arr

    def push(self, frame: av.VideoFrame, t: float) -> bool:
        """Consume a frame shown from ``t`` on; return True once no later frame can be needed."""
        if self.pending is not None:
            self._settle(t)
        self.pending, self.pending_t = frame, t
        self.seen.append(t)
        return self.done

    def _settle(self, next_t: float) -> None:
        """Keep or drop the pending frame, which stays on screen until ``next_t``."""
        tol = self.tolerance
        if self.keep is not None:
            needed = False
            while self.k < len(self.keep) and self.keep[self.k] + tol < next_t:
                needed = True
                self.k += 1
            self.done = self.k >= len(self.keep)
        else:
            starts_in_time = self.pending_t <= self.t1 + tol or not self.settled_any
            needed = next_t > self.t0 + tol and starts_in_time
            self.done = next_t > self.t1 + tol
        if needed:
            self.frames.append(self._rgb(self.pending))
            self.pts.append(self.pending_t)
        self.settled_any = True
        self.pending = None

    def finish(self) -> None:
        """End of stream: the pending frame stays on screen for ever."""
        if self.pending is not None:
            self._settle(math.inf)


class _SkipPolicy:
    """Per packet, let the decoder drop the frame if it is non-reference and cannot be shown.

    Wanted times: the sorted ``keep`` times, or every time from ``t0`` on (``keep=None``).
    Packets whose pts has no wanted time within ``[pts - tolerance, pts + horizon)`` are marked
    (``skip_frame=NONREF``); the decoder still decodes marked frames that others reference.
    """

    def __init__(
        self, stream: av.stream.Stream, t0: float, keep: np.ndarray | None, tolerance: float, enabled: bool
    ) -> None:
        self.ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        self.horizon = (_SHOW_HORIZON_FRAMES / float(rate) if rate else 0.5) + 2 * tolerance
        self.t0 = t0
        self.keep = keep.tolist() if keep is not None else None
        self.tolerance = tolerance
        self.enabled = enabled
        self.marked: list[float] = []
        self.clock = _Clock()
        self.mode = ""
        self._set("DEFAULT")

    def _set(self, mode: str) -> None:
        if mode != self.mode:
            self.ctx.skip_frame = mode
            self.mode = mode

    def _wanted(self, t: float) -> bool:
        if self.keep is None:
            return t + self.horizon > self.t0
        i = bisect.bisect_left(self.keep, t - self.tolerance)
        return i < len(self.keep) and self.keep[i] < t + self.horizon

    def __call__(self, packet: av.Packet) -> None:
        t = self.clock.seconds(packet) if self.enabled else None
        if t is not None and not self._wanted(t):
            self.marked.append(t)
            self._set("NONREF")
        else:
            self._set("DEFAULT")

    def missed(self, col: "_WindowCollector", times: np.ndarray) -> bool:
        """Whether a dropped frame would have been on screen at one of ``times``."""
        if not self.marked:
            return False
        dropped = np.setdiff1d(np.asarray(self.marked), np.asarray(col.seen))
        if dropped.size == 0 or not col.frames:
            return bool(dropped.size)
        pts = np.asarray(col.pts)
        limit = times + col.tolerance
        chosen = pts[select_frames(pts, times, col.tolerance)]
        lower = np.where(chosen <= limit, chosen, -np.inf)  # before the first frame: any drop counts
        upto = np.searchsorted(dropped, limit, side="right")
        return bool(np.any(upto > np.searchsorted(dropped, lower, side="right")))


def _collect(
    container: av.container.InputContainer,
    t0: float,
    t1: float,
    keep: np.ndarray | None,
    size: SizeSpec,
    seek_to: float | None,
    drop: bool,
    path: str,
    counted: bool = False,
) -> tuple[_WindowCollector, _SkipPolicy, float | None]:
    """Seek to the keyframe before ``seek_to`` (None: the start), decode forward until no later
    frame can be needed, letting the decoder drop unneeded non-reference frames when ``drop``
    -> (finished collector, its skip policy, time of the first decoded frame or None).

    ``counted``: the k-th decoded frame is shown at ``k / fps`` whatever its pts (raw streams,
    whose pts the parser invents; requires ``seek_to=None``)."""
    vstream = container.streams.video[0]
    rate = vstream.average_rate or vstream.guessed_rate
    step = 1.0 / float(rate) if rate else 0.0
    tolerance = _pts_tolerance(vstream)
    col = _WindowCollector(t0, t1, keep, size, tolerance)
    _seek(container, vstream, seek_to, path)
    policy = _SkipPolicy(vstream, t0, keep, tolerance, drop)
    clock = _Clock()
    t: float | None = None
    first: float | None = None
    try:
        for frame in _decode(container, vstream, path, policy):
            t = (0.0 if t is None else t + step) if counted else _frame_time(frame, t, step, clock)
            first = t if first is None else first
            if col.push(frame, t):
                break
    finally:
        policy._set("DEFAULT")
    col.finish()
    return col, policy, first


def _read_video_window(
    container: av.container.InputContainer,
    t0: float,
    t1: float,
    keep: np.ndarray | None,
    size: SizeSpec,
    video_start: float,
    path: str,
) -> _WindowCollector:
    """Decode the frames on screen in ``[t0, t1]`` (or at the sorted ``keep`` times) once.

    Seeks once to the keyframe before ``t0`` and decodes forward, stopping at the first frame
    past the window; non-reference frames that cannot be on screen at a wanted time are dropped
    by the decoder (see ``_SHOW_HORIZON_FRAMES``). Decodes again, in the rare cases where that
    could be wrong: from the start of the stream when the seek overshoots (formats without an
    index such as MPEG-TS can land after the target or on a non-keyframe that decodes to
    nothing), and without dropping when a dropped frame would have been on screen at a wanted
    time (a gap in a variable-frame-rate stream).
    """
    if _no_timestamps(container):  # a raw stream: decode forward from the start, count frames
        col, _, _ = _collect(container, t0, t1, keep, size, None, False, path, counted=True)
        if not col.frames:
            raise DataError(f"{path}: no decodable video frame at or before {t1:.3f} s")
        return col
    target = max(float(t0), video_start)
    seek_to: float | None = target
    col, policy, first = _collect(container, t0, t1, keep, size, seek_to, True, path)
    if first is None or first > target + col.tolerance:
        seek_to = None
        col, policy, first = _collect(container, t0, t1, keep, size, seek_to, True, path)
    if policy.missed(col, keep if keep is not None else np.array([float(t0)])):
        col, _, _ = _collect(container, t0, t1, keep, size, seek_to, False, path)
    if not col.frames:
        raise DataError(f"{path}: no decodable video frame at or before {t1:.3f} s")
    return col


def select_frames(pts: np.ndarray, times: np.ndarray, tolerance: float = _PTS_EPS) -> np.ndarray:
    """Index of the frame on screen at each time: the last ``pts <= t + tolerance``.

    pts: ``(N,)`` ascending frame times in seconds (``N >= 1``); times: ``(T,)`` seconds in any
    order. Times before the first frame get frame 0, times after the last frame the last one.
    Returns int64 ``(T,)``.
    """
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 1 or pts.size == 0:
        raise ValueError(f"pts must be a non-empty (N,) array, got shape {pts.shape}")
    idx = np.searchsorted(pts, np.asarray(times, dtype=np.float64) + tolerance, side="right") - 1
    return np.clip(idx, 0, pts.size - 1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


def _planar_samples(frame: av.AudioFrame) -> np.ndarray:
    """float32 ``(C, S)`` view of a planar float (``fltp``) frame's samples, without the copy
    (and ``vstack``) of ``to_ndarray``; other formats go through ``to_ndarray``."""
    if frame.format.name != "fltp":
        return frame.to_ndarray()
    n = frame.samples
    planes = [np.frombuffer(p, dtype=np.float32, count=n) for p in frame.planes]
    return planes[0][None] if len(planes) == 1 else np.stack(planes)


class _AudioWindow:
    """Output buffer for ``[start, start + n / rate)``; resampled frames are placed by pts.

    A frame whose pts lands within ``snap`` samples of where the previous frame ended is written
    contiguously (absorbs timestamp rounding, e.g. 1 ms Matroska ticks); larger differences are
    real gaps or overlaps and the pts wins. Samples before the window (priming, pre-roll) are
    dropped; samples never written stay 0 with ``valid`` False.
    """

    def __init__(self, start: float, n: int, rate: int, channels: int) -> None:
        self.origin = start * rate  # window start in (fractional) samples on the file timeline
        self.n = n
        self.rate = rate
        self.audio = np.zeros((channels, n), dtype=np.float32)
        self.valid = np.zeros(n, dtype=bool)
        self.expected: int | None = None  # window offset where the next frame should start
        self.written_end = 0  # largest window offset reached by decoded audio (may exceed n)
        self.snap = max(2, int(round(0.002 * rate)))
        self.clock = _Clock()

    def place(self, frame: av.AudioFrame) -> bool:
        """Write one frame ``(C, S)``; return True once the window is complete (frame reaches past it)."""
        data = _planar_samples(frame)
        t = self.clock.seconds(frame)
        if t is None:
            offset = self.expected if self.expected is not None else 0
        else:
            offset = int(round(t * self.rate - self.origin))
            if self.expected is not None and abs(offset - self.expected) <= self.snap:
                offset = self.expected
        length = data.shape[1]
        self.expected = offset + length
        self.written_end = max(self.written_end, offset + length)
        lo, hi = max(offset, 0), min(offset + length, self.n)
        if hi > lo:
            self.audio[:, lo:hi] = data[:, lo - offset : hi - offset]
            self.valid[lo:hi] = True
        return offset + length >= self.n

    def cut_padding(self, end: float, max_padding: float) -> None:
        """Zero and invalidate samples from ``end`` seconds on, if decoded audio ran past ``end``
        by at most ``max_padding`` seconds (codec padding; more means ``end`` is not trustworthy)."""
        k = int(round(end * self.rate - self.origin))
        if k < self.written_end <= k + max_padding * self.rate:
            k = max(k, 0)
            self.audio[:, k:] = 0.0
            self.valid[k:] = False


def declared_audio_end(container: av.container.InputContainer) -> float | None:
    """Exact end of the audio stream (seconds) where the container declares one.

    MP4/MOV edit lists give the true audio length; FFmpeg removes the encoder priming they
    describe but not the padding of the last AAC frame, which would otherwise count as real
    audio. Other containers only carry estimates, so None.
    """
    if "mov" not in container.format.name.split(","):
        return None
    astream = container.streams.audio[0]
    end = _stream_end(astream)
    start = _seconds(astream.start_time, astream.time_base) or 0.0
    return end if end is not None and end > start else None


def _max_padding(astream: av.stream.Stream) -> float:
    """Longest plausible end padding of ``astream`` in seconds: two codec frames, at least 0.1 s."""
    ctx = astream.codec_context
    frame = 2 * ctx.frame_size / ctx.sample_rate if ctx.frame_size and ctx.sample_rate else 0.0
    return max(0.1, frame)


def _output_layout(astream: av.stream.Stream, mono: bool, path: str) -> av.AudioLayout:
    """``mono``, or the stream's own channel layout (default layout for its channel count;
    :class:`DataError` when FFmpeg has none for that count)."""
    if mono:
        return av.AudioLayout("mono")
    ctx = astream.codec_context
    if ctx.layout is not None and ctx.layout.nb_channels:
        return ctx.layout
    try:
        return channel_layout(int(ctx.channels or 1))
    except ValueError as e:
        raise DataError(f"{path}: the audio stream has {e.args[0].split(' for ')[-1]} and no channel layout; "
                        "read it as mono (mono=True)") from e


def _resampler(sample_rate: int, layout: av.AudioLayout) -> av.AudioResampler:
    """float32 planar resampler to ``layout``; a downmix is normalised (``rematrix_maxval=1``) so
    mono is the weighted mean of the channels rather than their sum."""
    return av.AudioResampler(
        format="fltp", layout=layout, rate=sample_rate, options={"rematrix_maxval": "1.0"}
    )


def _fill_window(
    container: av.container.InputContainer,
    window: _AudioWindow,
    seek_to: float | None,
    layout: av.AudioLayout,
    path: str,
) -> float | None:
    """Seek before ``seek_to`` (None: the start), decode + resample + place frames until the
    window is full -> time of the first decoded frame (None if nothing decoded)."""
    astream = container.streams.audio[0]
    _seek(container, astream, seek_to, path)
    resampler = _resampler(window.rate, layout)
    first: float | None = None
    for frame in _decode(container, astream, path):
        if first is None:
            first = _seconds(frame.pts, frame.time_base)
            first = float("-inf") if first is None else first
        if any([window.place(out) for out in resampler.resample(frame)]):
            return first
    for out in resampler.resample(None):  # end of stream: drain the resampler
        window.place(out)
    return first


def _read_audio_window(
    container: av.container.InputContainer,
    start: float,
    n: int,
    sample_rate: int,
    mono: bool,
    audio_start: float,
    path: str,
    sidecar: SidecarInfo | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``n`` samples from ``start`` seconds -> (float32 ``(C, n)``, bool ``(n,)`` valid).

    With a WAV ``sidecar`` (the audio of a file without an audio stream) the samples come from
    it: a plain read at its own rate, else FFmpeg decodes and resamples it (sample 0 of the WAV
    sits at ``sidecar.start`` on the file's timeline).

    Seeks ``_AUDIO_PREROLL`` before ``start`` -- not clamped to the stream start: a window in
    the first ``_AUDIO_PREROLL`` seconds must still get the packet before the first sample,
    which holds AAC's encoder priming (seeking to exactly 0 skipped it and the first 576
    samples came out wrong); if the seek overshoots the window start (no index), decodes
    again from the start of the stream.
    """
    if sidecar is not None:
        if sidecar.fast(sample_rate, mono):
            return read_samples(sidecar, start, n, mono=mono)
        with _open(sidecar.path) as wav:
            if not wav.streams.audio:
                raise DataError(f"{sidecar.path}: no audio stream in the sidecar of {path}; delete it or re-run "
                                "`glocal prepare`")
            return _read_audio_window(wav, start - sidecar.start, n, sample_rate, mono, 0.0, sidecar.path)
    astream = container.streams.audio[0]
    layout = _output_layout(astream, mono, path)
    window = _AudioWindow(start, n, sample_rate, layout.nb_channels)
    if n == 0:
        return window.audio, window.valid
    target = start - _AUDIO_PREROLL
    first = _fill_window(container, window, target, layout, path)
    if first is not None and first > max(start, audio_start) + _tick(astream) + _PTS_EPS:
        window = _AudioWindow(start, n, sample_rate, layout.nb_channels)
        _fill_window(container, window, None, layout, path)
    end = declared_audio_end(container)
    if end is not None:
        window.cut_padding(end, _max_padding(astream))
    return window.audio, window.valid


def _audio_end(container: av.container.InputContainer, info: MediaInfo, sidecar: SidecarInfo | None = None) -> float:
    """End of the audio stream (or of the ``sidecar``'s samples) in seconds (metadata; the
    file's duration as a fallback)."""
    if sidecar is not None:
        return sidecar.end
    end = _stream_end(container.streams.audio[0])
    return end if end is not None else info.duration


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


@dataclass
class DecodedWindow:
    """Everything decoded for one time window of one file (see :func:`read_window`).

    frames: uint8 ``(N, H, W, 3)`` RGB, the distinct frames on screen in the window (or at the
        requested ``keep`` times), upright, in presentation order; None when video was not read.
    pts: float64 ``(N,)`` ascending presentation time of each frame in seconds.
    audio: float32 ``(C, M)`` covering ``[audio_start, audio_start + M / sample_rate)``, or None
        when audio was not requested or the file has none.
    audio_valid: bool ``(M,)``; False where the window holds no decoded audio (zero padding).
    tolerance: slack (seconds) used when matching a time to a frame's pts (one time-base tick).
    """

    frames: np.ndarray | None
    pts: np.ndarray
    audio: np.ndarray | None
    audio_start: float
    audio_valid: np.ndarray | None
    sample_rate: int
    info: MediaInfo
    tolerance: float = _PTS_EPS

    def select(self, times: np.ndarray) -> np.ndarray:
        """Indices into ``frames`` of the frame on screen at each of ``times`` ``(T,)`` -> ``(T,)``."""
        return select_frames(self.pts, times, self.tolerance)

    def frames_at(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, 3)``: the frame on screen at each time (a copy)."""
        if self.frames is None:
            raise ValueError("this window was read without video")
        return self.frames[self.select(times)]

    def audio_at(self, start: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
        """Cut ``[start, start + duration)`` -> (float32 ``(C, n)``, bool ``(n,)`` valid),
        ``n = round(duration * sample_rate)``; parts outside the decoded audio are zeros, invalid.

        The cut starts at sample ``round((start - audio_start) * sample_rate)`` of the window.
        When the file's audio is at ``sample_rate`` already (no resampling) and ``start`` is on
        the sample grid, the cut equals a separate read of the same span exactly; with
        resampling the two differ by up to about 0.4 sample in timing (the resampler's phase
        depends on where its input started), so only approximately.
        """
        if self.audio is None or self.audio_valid is None:
            raise ValueError("this window holds no audio")
        n = max(0, int(round(duration * self.sample_rate)))
        k0 = int(round((start - self.audio_start) * self.sample_rate))
        out = np.zeros((self.audio.shape[0], n), dtype=np.float32)
        valid = np.zeros(n, dtype=bool)
        lo, hi = max(k0, 0), min(k0 + n, self.audio.shape[1])
        if hi > lo:
            out[:, lo - k0 : hi - k0] = self.audio[:, lo:hi]
            valid[lo - k0 : hi - k0] = self.audio_valid[lo:hi]
        return out, valid


def _check_size(size: SizeSpec) -> None:
    """Validate a decode size (programming errors -> ValueError)."""
    if size is None:
        return
    if isinstance(size, (int, np.integer)):
        if size <= 0:
            raise ValueError(f"size must be > 0, got {size}")
        return
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"size must be an int (shorter side) or (H, W) with positive sides, got {size}")


class MediaReader:
    """One open media file: its metadata plus any number of :meth:`read_window` calls.

    ``MediaReader(path)`` opens and probes without decoding (``rotation`` stays 0 in ``info``
    until frames are read; windows report the rotation seen on their frames). ``threads``: video
    decoder threads -- ``"auto"`` (default): one for frames up to 640x480 pixels, else
    ``max_threads`` (default: FFmpeg's automatic threading); an int; or None for FFmpeg's
    automatic threading. Use as a context manager or call :meth:`close`. Raises :class:`DataError` for a
    missing/empty/unreadable file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        probe_first_frame: bool = False,
        threads: DecoderThreads = "auto",
        max_threads: int | None = None,
    ) -> None:
        self.path = _check_path(path)
        with ExitStack() as stack:
            self._container = stack.enter_context(_open(self.path, threads, max_threads))
            self._sidecar = _sidecar_of(self._container, self.path)
            self.info = _probe_container(self._container, self.path, decode_first=probe_first_frame,
                                         sidecar=self._sidecar)
            self._stack = stack.pop_all()

    def __enter__(self) -> "MediaReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._stack.close()

    def video_span(self) -> tuple[float, float]:
        """``(first frame time, duration)`` of the video stream in seconds (the whole media's
        duration when the stream declares none). Requires a video stream."""
        if not self.info.has_video:
            raise DataError(f"{self.path}: no video stream")
        start = self.info.video_start
        end = _stream_end(self._container.streams.video[0])
        if end is None or end <= start:
            end = min(self.info.video_start, self.info.audio_start) + self.info.duration
        return start, max(0.0, end - start)

    def audio_end(self) -> float:
        """End of the audio stream in seconds (container metadata; the media duration as a
        fallback), as :func:`read_audio` reads it. Requires an audio stream."""
        if not self.info.has_audio:
            raise DataError(f"{self.path}: no audio stream")
        return _audio_end(self._container, self.info, self._sidecar)

    def read_window(
        self,
        t0: float,
        t1: float,
        *,
        keep: np.ndarray | None = None,
        size: SizeSpec = None,
        read_video: bool = True,
        audio: tuple[float, float] | None = None,
        read_audio: bool = True,
        sample_rate: int = SAMPLE_RATE,
        mono: bool = True,
    ) -> DecodedWindow:
        """See :func:`read_window`."""
        if t1 < t0:
            raise ValueError(f"need t0 <= t1, got {t0} > {t1}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
        _check_size(size)
        info, path, container = self.info, self.path, self._container
        frames: np.ndarray | None = None
        pts = np.zeros(0, dtype=np.float64)
        tolerance = _PTS_EPS
        if read_video:
            if not info.has_video:
                raise DataError(f"{path}: no video stream")
            if keep is not None:
                keep = np.sort(np.asarray(keep, dtype=np.float64).ravel())
                if keep.size == 0:
                    raise ValueError("keep must hold at least one time")
                if keep[0] < t0 - 1e-9 or keep[-1] > t1 + 1e-9:
                    raise ValueError(f"keep times must lie in [t0, t1] = [{t0}, {t1}]")
            col = _read_video_window(container, float(t0), float(t1), keep, size, info.video_start, path)
            frames, pts = np.stack(col.frames), np.asarray(col.pts, dtype=np.float64)
            tolerance = col.tolerance
            info = self.info = _with_rotation(info, col.rotation)
        wave = valid = None
        a_start, a_dur = (float(t0), float(t1) - float(t0)) if audio is None else audio
        if read_audio and info.has_audio:
            n = max(0, int(round(a_dur * sample_rate)))
            wave, valid = _read_audio_window(
                container, float(a_start), n, sample_rate, mono, info.audio_start, path, self._sidecar
            )
        return DecodedWindow(frames, pts, wave, float(a_start), valid, int(sample_rate), info, tolerance)


def read_window(
    path: str | os.PathLike[str],
    t0: float,
    t1: float,
    *,
    size: SizeSpec = None,
    sample_rate: int = SAMPLE_RATE,
    read_audio: bool = True,
    audio: tuple[float, float] | None = None,
    keep: np.ndarray | None = None,
    read_video: bool = True,
    mono: bool = True,
) -> DecodedWindow:
    """Decode every frame on screen in ``[t0, t1]`` once, plus the audio of a window.

    Video: seeks to the keyframe before ``t0``, decodes forward and stops at the first frame past
    ``t1``; frames are converted to RGB inside swscale at ``size`` (an int: shorter side with the
    aspect kept; ``(H, W)``; None: native) and rotated upright. With ``keep`` (times in
    ``[t0, t1]``) only the frames on screen at those times are converted and returned (all frames
    up to ``max(keep)`` are still decoded, as the codec needs them). Cut views from the result
    with :meth:`DecodedWindow.select` / :func:`select_frames` (frame on screen at each time).

    Audio (when ``read_audio`` and the file has an audio stream): ``audio=(start, duration)``
    seconds (default ``(t0, t1 - t0)``), float32 ``(C, round(duration * sample_rate))``
    (``C = 1`` when ``mono``) placed by pts, with a validity mask; cut views with
    :meth:`DecodedWindow.audio_at`.

    Raises :class:`DataError` for a missing/empty/unreadable file or, with ``read_video``, a
    file without a (decodable) video stream.
    """
    with MediaReader(path) as reader:
        return reader.read_window(
            t0, t1, keep=keep, size=size, read_video=read_video, audio=audio,
            read_audio=read_audio, sample_rate=sample_rate, mono=mono,
        )


def _check_args(num_frames: int, fps: float, sample_rate: int, size: SizeSpec) -> None:
    """Validate caller arguments (programming errors -> ValueError)."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    _check_size(size)


def read_clip(
    path: str | os.PathLike[str],
    start: float,
    num_frames: int,
    fps: float,
    *,
    size: SizeSpec = None,
    audio_duration: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    mono: bool = True,
    read_video: bool = True,
    read_audio: bool = True,
) -> AVClip:
    """Read frames at ``start + k / fps`` (k < num_frames) and audio of ``[start, start + audio_duration)``.

    frames: uint8 ``(T, H, W, 3)`` RGB, upright, resized to ``size`` (``(H, W)``, or an int for
    the shorter side) when given; a target before the first frame gets the first frame, one past
    the end repeats the last frame.
    audio: float32 ``(C, N)``, ``N = round(audio_duration * sample_rate)``
    (``audio_duration`` defaults to ``num_frames / fps``), with ``audio_valid`` ``(N,)``.
    The file is opened once (a :func:`read_window` of the clip's span).

    Raises :class:`DataError` for a missing/empty/unreadable file or, with ``read_video``, a
    file without a (decodable) video stream. A missing audio stream gives ``audio=None``.
    """
    _check_args(num_frames, fps, sample_rate, size)
    times = float(start) + np.arange(num_frames, dtype=np.float64) / float(fps)
    dur = num_frames / float(fps) if audio_duration is None else float(audio_duration)
    with MediaReader(path, probe_first_frame=not read_video) as reader:
        info = reader.info
        if read_video and not info.has_video:
            raise DataError(f"{reader.path}: no video stream")
        video = read_video and num_frames > 0
        t0, t1 = (float(times[0]), float(times[-1])) if video else (float(start), float(start))
        win = reader.read_window(
            t0, t1, keep=times if video else None, size=size, read_video=video,
            audio=(float(start), dur), read_audio=read_audio, sample_rate=sample_rate, mono=mono,
        )
        frames = win.frames_at(times) if video else None
        if read_video and not video:
            frames = _empty_frames(win.info, size)
    return AVClip(frames, times, win.audio, win.audio_valid, int(sample_rate), win.info)


def _empty_frames(info: MediaInfo, size: SizeSpec) -> np.ndarray:
    """A ``(0, H, W, 3)`` uint8 array for ``num_frames == 0`` (rotation unknown: 0)."""
    out = _resolve_size(size, info.width, info.height)
    h, w = out if out is not None else (info.height, info.width)
    return np.zeros((0, h, w, 3), dtype=np.uint8)


def _with_rotation(info: MediaInfo, rotation: int) -> MediaInfo:
    """``info`` with the rotation seen on decoded frames (and display size swapped if needed)."""
    if rotation == info.rotation:
        return info
    w, h = info.width, info.height
    if (rotation - info.rotation) % 180:
        w, h = h, w
    return replace(info, rotation=rotation, width=w, height=h)


def read_audio(
    path: str | os.PathLike[str],
    start: float = 0.0,
    duration: float | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    mono: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Read audio of ``[start, start + duration)`` (default: to the end of the audio stream).

    Works for audio files (wav/flac/ogg/mp3/m4a), the audio track of video files and the WAV
    sidecar of a video without one (:mod:`glocal.data.audio_sidecar`). Returns
    (float32 ``(C, N)``, bool ``(N,)`` valid) with ``N = round(duration * sample_rate)``.
    Raises :class:`DataError` when the file is unreadable or has no audio stream.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    p = _check_path(path)
    with _open(p) as container:
        sidecar = _sidecar_of(container, p)
        if not container.streams.audio and sidecar is None:
            raise DataError(f"{p}: no audio stream")
        info = _probe_container(container, p, decode_first=False, sidecar=sidecar)
        end = start + duration if duration is not None else _audio_end(container, info, sidecar)
        n = max(0, int(round((end - start) * sample_rate)))
        return _read_audio_window(container, float(start), n, sample_rate, mono, info.audio_start, p, sidecar)
