"""Read video frames and audio from media files with PyAV, aligned by presentation timestamps.

All times are seconds on the file's own timeline: the first video frame sits at
``MediaInfo.video_start`` (normally 0.0) and the first real audio sample at
``MediaInfo.audio_start``. Video frames are chosen by pts (robust to variable frame rate) and
audio samples are placed into the output window by pts, so encoder priming (AAC's ~1024-sample
delay), edit lists, seek granularity and dropped packets never shift audio against video.

Shapes: frames are uint8 ``(T, H, W, 3)`` RGB, audio is float32 ``(C, N)``, validity masks are
bool ``(N,)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from glocal.errors import DataError

__all__ = ["MediaInfo", "AVClip", "probe", "read_clip", "read_audio"]

# Slack when comparing a frame's pts with a target time (seconds), on top of one time-base tick
# (containers such as Matroska round timestamps to 1 ms).
_PTS_EPS = 1e-6
# Audio is decoded from this long before the window so that decoders with overlapping
# transforms (AAC, MP3, Vorbis) have settled when the window starts.
_AUDIO_PREROLL = 0.1
# Before ``times[0] - _FULL_DECODE_MARGIN`` the video decoder skips non-reference frames (they
# can never be shown); from there on every frame is decoded. Roughly halves the cost of
# decoding from a distant keyframe in B-frame streams.
_FULL_DECODE_MARGIN = 0.5
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
    container's edit list has removed encoder priming.
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


def _open(path: str) -> av.container.InputContainer:
    """Open ``path`` for reading (video decoder threads on), FFmpeg/OS failures -> :class:`DataError`."""
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as e:
        raise DataError(f"{path}: not a media file, or damaged beyond reading ({_reason(e)})") from e
    except (av.error.FFmpegError, OSError) as e:
        raise DataError(f"{path}: cannot open ({_reason(e)})") from e
    for stream in container.streams.video[:1]:
        stream.thread_type = "AUTO"  # must be set before the decoder opens
    return container


def _reason(e: BaseException) -> str:
    """Short human-readable reason of an FFmpeg error."""
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _seconds(ts: int | None, time_base: Fraction | None) -> float | None:
    """Convert a stream timestamp to seconds (None when either part is unknown)."""
    if ts is None or time_base is None:
        return None
    return float(ts * time_base)


def _tick(stream: av.stream.Stream) -> float:
    """One time-base tick of ``stream`` in seconds (0.0 when unknown)."""
    return float(stream.time_base) if stream.time_base else 0.0


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


def _probe_container(
    container: av.container.InputContainer, path: str, *, decode_first: bool = True
) -> MediaInfo:
    """Build :class:`MediaInfo` from an open container.

    With ``decode_first`` the first video frame is decoded to read the rotation (only stored in
    frame side data by PyAV) and the exact first pts; without it ``rotation`` is 0 and the caller
    fills it from the frames it decodes. May move the read position (callers seek afterwards).
    """
    vstream = container.streams.video[0] if container.streams.video else None
    astream = container.streams.audio[0] if container.streams.audio else None
    if vstream is None and astream is None:
        raise DataError(f"{path}: no video or audio stream")

    fps = width = height = rotation = 0
    video_start = audio_start = 0.0
    if vstream is not None:
        rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
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
    if container.duration is not None:
        lengths.append(container.duration / av.time_base)
    duration = max(lengths) if lengths else _scan_end(container, path) - min(video_start, audio_start)

    return MediaInfo(
        path=path,
        duration=float(duration),
        fps=fps,
        width=int(width),
        height=int(height),
        rotation=int(rotation),
        has_video=vstream is not None,
        has_audio=astream is not None,
        audio_sample_rate=sample_rate,
        audio_channels=channels,
        video_start=float(video_start),
        audio_start=float(audio_start),
    )


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read the metadata of a media file (decodes one video frame for the rotation).

    Raises :class:`DataError` for a missing, empty or unreadable file or one without streams.
    """
    p = _check_path(path)
    with _open(p) as container:
        return _probe_container(container, p)


# --------------------------------------------------------------------------------------------
# Demux + decode
# --------------------------------------------------------------------------------------------


def _seek(
    container: av.container.InputContainer,
    stream: av.stream.Stream | None,
    t: float | None,
    path: str,
) -> None:
    """Seek to the keyframe at or before ``t`` seconds on ``stream`` (``t=None``: the start)."""
    try:
        if stream is None or t is None or stream.time_base is None:
            container.seek(0, backward=True, any_frame=False)
        else:
            ts = math.floor(t / stream.time_base)
            container.seek(ts, stream=stream, backward=True, any_frame=False)
    except (av.error.FFmpegError, OSError) as e:
        raise DataError(f"{path}: cannot seek to {t} s ({_reason(e)})") from e


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


def _frame_time(frame: av.VideoFrame, previous: float | None, step: float) -> float:
    """Presentation time of ``frame`` in seconds; extrapolated from ``previous`` when pts is missing."""
    t = _seconds(frame.pts, frame.time_base)
    if t is not None:
        return t
    return 0.0 if previous is None else previous + step


class _FrameSelector:
    """Pick, for each target time, the frame on screen at that time (last pts <= t).

    Frames are pushed in presentation order; only frames that end up selected are converted to
    RGB (resized inside swscale and rotated upright), each at most once.
    """

    def __init__(self, times: np.ndarray, size: tuple[int, int] | None, tolerance: float) -> None:
        self.times = times
        self.size = size
        self.tolerance = tolerance
        self.out: list[np.ndarray | None] = [None] * len(times)
        self.next = 0  # index of the first target not filled yet
        self.prev: av.VideoFrame | None = None
        self.prev_t = 0.0
        self.prev_rgb: np.ndarray | None = None
        self.rotation = 0
        self.first_pick: float | None = None  # time of the frame chosen for times[0]

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Frame as uint8 ``(H, W, 3)`` RGB at the requested display size, upright."""
        self.rotation = _normalize_rotation(frame.rotation)
        k = self.rotation // 90
        if self.size is None:
            arr = frame.to_ndarray(format="rgb24")
        else:
            h, w = self.size
            if k % 2:  # resize the stored (unrotated) frame to the transposed size
                h, w = w, h
            arr = frame.to_ndarray(format="rgb24", width=w, height=h)
        return np.ascontiguousarray(np.rot90(arr, k)) if k else arr

    def _prev_rgb(self) -> np.ndarray:
        if self.prev_rgb is None:
            self.prev_rgb = self._rgb(self.prev)
        return self.prev_rgb

    def push(self, frame: av.VideoFrame, t: float) -> bool:
        """Consume a frame shown from ``t`` on; return True once every target is filled."""
        times, n = self.times, len(self.times)
        while self.next < n and times[self.next] + self.tolerance < t:
            # Target precedes this frame: the previous frame is on screen (or, before the very
            # first frame, show the first frame).
            if self.prev is None:
                self.prev, self.prev_t, self.prev_rgb = frame, t, None
            self._fill_next()
        if frame is not self.prev:
            self.prev, self.prev_t, self.prev_rgb = frame, t, None
        return self.next >= n

    def _fill_next(self) -> None:
        """Assign the current (previous) frame to the next unfilled target."""
        if self.next == 0:
            self.first_pick = self.prev_t
        self.out[self.next] = self._prev_rgb()
        self.next += 1

    def finish(self) -> np.ndarray | None:
        """Fill targets past the last frame with the last frame; ``(T, H, W, 3)`` or None."""
        if self.prev is None:
            return None
        while self.next < len(self.times):
            self._fill_next()
        return np.stack(self.out)


def _nonref_skipper(stream: av.stream.Stream, until: float | None) -> Callable[[av.Packet], None]:
    """Make the decoder skip non-reference frames until a packet's pts reaches ``until`` s."""
    ctx = stream.codec_context
    ctx.skip_frame = "DEFAULT" if until is None else "NONREF"
    state = {"skipping": until is not None}

    def on_packet(packet: av.Packet) -> None:
        if state["skipping"]:
            t = _seconds(packet.pts, packet.time_base)
            if t is None or t >= until:
                ctx.skip_frame = "DEFAULT"
                state["skipping"] = False

    return on_packet


def _select_frames(
    container: av.container.InputContainer,
    times: np.ndarray,
    size: tuple[int, int] | None,
    seek_to: float | None,
    skip_until: float | None,
    path: str,
) -> tuple[_FrameSelector, float | None]:
    """Seek to the keyframe before ``seek_to`` (None: the start), decode forward until every
    target in ``times`` is filled, skipping non-reference frames before ``skip_until`` (None:
    decode all) -> (selector, time of the first decoded frame or None)."""
    vstream = container.streams.video[0]
    rate = vstream.average_rate or vstream.guessed_rate
    step = 1.0 / float(rate) if rate else 0.0
    selector = _FrameSelector(times, size, tolerance=max(_PTS_EPS, _tick(vstream) + _PTS_EPS))
    _seek(container, vstream, seek_to, path)
    on_packet = _nonref_skipper(vstream, skip_until)
    t: float | None = None
    first: float | None = None
    for frame in _decode(container, vstream, path, on_packet):
        t = _frame_time(frame, t, step)
        first = t if first is None else first
        if selector.push(frame, t):
            break
    return selector, first


def _read_frames(
    container: av.container.InputContainer,
    times: np.ndarray,
    size: tuple[int, int] | None,
    video_start: float,
    path: str,
) -> tuple[np.ndarray, int]:
    """Decode the frames displayed at ``times`` (sorted seconds) -> (uint8 ``(T, H, W, 3)``, rotation).

    Seeks once to the keyframe before ``times[0]`` and decodes forward (non-reference frames
    more than ``_FULL_DECODE_MARGIN`` before ``times[0]`` are skipped). Decodes again, in the
    rare cases where that could be wrong: from the start of the stream when the seek overshoots
    (formats without an index such as MPEG-TS can land after the target or on a non-keyframe
    that decodes to nothing), and without skipping when the frame on screen at ``times[0]``
    lies in the skipped region (a gap in a variable-frame-rate stream).
    """
    target = max(float(times[0]), video_start)
    skip_until = target - _FULL_DECODE_MARGIN
    seek_to: float | None = target
    selector, first = _select_frames(container, times, size, seek_to, skip_until, path)
    if first is None or first > target + selector.tolerance:
        seek_to = None
        selector, first = _select_frames(container, times, size, seek_to, skip_until, path)
    frames = selector.finish()
    if selector.first_pick is not None and selector.first_pick < skip_until:
        selector, _ = _select_frames(container, times, size, seek_to, None, path)
        frames = selector.finish()
    if frames is None:
        raise DataError(f"{path}: no decodable video frame at or before {times[-1]:.3f} s")
    return frames, selector.rotation


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


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

    def place(self, frame: av.AudioFrame) -> bool:
        """Write one frame ``(C, S)``; return True once the window is complete (frame reaches past it)."""
        data = frame.to_ndarray()
        t = _seconds(frame.pts, frame.time_base)
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


def _declared_audio_end(container: av.container.InputContainer) -> float | None:
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


def _output_layout(astream: av.stream.Stream, mono: bool) -> av.AudioLayout:
    """``mono``, or the stream's own channel layout (default layout for its channel count)."""
    if mono:
        return av.AudioLayout("mono")
    ctx = astream.codec_context
    if ctx.layout is not None and ctx.layout.nb_channels:
        return ctx.layout
    return av.AudioLayout(max(1, int(ctx.channels or 1)))


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
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``n`` samples from ``start`` seconds -> (float32 ``(C, n)``, bool ``(n,)`` valid).

    Seeks ``_AUDIO_PREROLL`` before ``start``; if the seek overshoots the window start (no
    index), decodes again from the start of the stream.
    """
    astream = container.streams.audio[0]
    layout = _output_layout(astream, mono)
    window = _AudioWindow(start, n, sample_rate, layout.nb_channels)
    if n == 0:
        return window.audio, window.valid
    target = max(start - _AUDIO_PREROLL, audio_start)
    first = _fill_window(container, window, target, layout, path)
    if first is not None and first > max(start, audio_start) + _tick(astream) + _PTS_EPS:
        window = _AudioWindow(start, n, sample_rate, layout.nb_channels)
        _fill_window(container, window, None, layout, path)
    end = _declared_audio_end(container)
    if end is not None:
        window.cut_padding(end, _max_padding(astream))
    return window.audio, window.valid


def _audio_end(container: av.container.InputContainer, info: MediaInfo) -> float:
    """End of the audio stream in seconds (metadata; the file's duration as a fallback)."""
    end = _stream_end(container.streams.audio[0])
    return end if end is not None else info.duration


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def _check_args(num_frames: int, fps: float, sample_rate: int, size: tuple[int, int] | None) -> None:
    """Validate caller arguments (programming errors -> ValueError)."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise ValueError(f"size must be (H, W) with positive sides, got {size}")


def read_clip(
    path: str | os.PathLike[str],
    start: float,
    num_frames: int,
    fps: float,
    *,
    size: tuple[int, int] | None = None,
    audio_duration: float | None = None,
    sample_rate: int = 16000,
    mono: bool = True,
    read_video: bool = True,
    read_audio: bool = True,
) -> AVClip:
    """Read frames at ``start + k / fps`` (k < num_frames) and audio of ``[start, start + audio_duration)``.

    frames: uint8 ``(T, H, W, 3)`` RGB, upright, resized to ``size=(H, W)`` when given; a target
    before the first frame gets the first frame, one past the end repeats the last frame.
    audio: float32 ``(C, N)``, ``N = round(audio_duration * sample_rate)``
    (``audio_duration`` defaults to ``num_frames / fps``), with ``audio_valid`` ``(N,)``.
    The file is opened once; audio is read after the video from the same container.

    Raises :class:`DataError` for a missing/empty/unreadable file or, with ``read_video``, a
    file without a (decodable) video stream. A missing audio stream gives ``audio=None``.
    """
    _check_args(num_frames, fps, sample_rate, size)
    p = _check_path(path)
    times = float(start) + np.arange(num_frames, dtype=np.float64) / float(fps)
    with _open(p) as container:
        info = _probe_container(container, p, decode_first=not read_video)
        frames = None
        if read_video:
            if not info.has_video:
                raise DataError(f"{p}: no video stream")
            if num_frames == 0:
                frames, rotation = _empty_frames(info, size)
            else:
                frames, rotation = _read_frames(container, times, size, info.video_start, p)
            info = _with_rotation(info, rotation)
        audio = valid = None
        if read_audio and info.has_audio:
            dur = num_frames / float(fps) if audio_duration is None else float(audio_duration)
            n = max(0, int(round(dur * sample_rate)))
            audio, valid = _read_audio_window(
                container, float(start), n, sample_rate, mono, info.audio_start, p
            )
    return AVClip(frames, times, audio, valid, int(sample_rate), info)


def _empty_frames(info: MediaInfo, size: tuple[int, int] | None) -> tuple[np.ndarray, int]:
    """A ``(0, H, W, 3)`` uint8 array for ``num_frames == 0`` (rotation unknown: 0)."""
    h, w = size if size is not None else (info.height, info.width)
    return np.zeros((0, h, w, 3), dtype=np.uint8), info.rotation


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
    sample_rate: int = 16000,
    mono: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Read audio of ``[start, start + duration)`` (default: to the end of the audio stream).

    Works for audio files (wav/flac/ogg/mp3/m4a) and the audio track of video files. Returns
    (float32 ``(C, N)``, bool ``(N,)`` valid) with ``N = round(duration * sample_rate)``.
    Raises :class:`DataError` when the file is unreadable or has no audio stream.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    p = _check_path(path)
    with _open(p) as container:
        if not container.streams.audio:
            raise DataError(f"{p}: no audio stream")
        info = _probe_container(container, p, decode_first=False)
        end = start + duration if duration is not None else _audio_end(container, info)
        n = max(0, int(round((end - start) * sample_rate)))
        return _read_audio_window(container, float(start), n, sample_rate, mono, info.audio_start, p)
