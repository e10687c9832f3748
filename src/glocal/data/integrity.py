"""One demux + decode pass over a whole file: what its video and audio streams really hold.

:func:`decode_pass` is ``glocal scan``'s single full decode of each file. It decodes every
packet of the first video and the first audio stream once, in file order, on one thread, without
converting frames to RGB, and measures per stream: the packets there, the frames decoded, where
the packet data ends, and every packet the decoder rejected or had to conceal -- an exception,
or an error FFmpeg logged while decoding that packet (e.g. ``Invalid NAL unit size`` for
overwritten H.264 data, ``incomplete frame`` for a cut-off AC3 packet, which decodes to
concealed sound). For audio it also sums the squares of the decoded samples (for the silence
check).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import av
import av.error
import av.logging
import numpy as np

from .av_compat import open_input

__all__ = ["BadPacket", "StreamTally", "decode_pass"]

# Integer sample formats -> full scale, to measure RMS on the [-1, 1] scale of float audio.
_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}


@dataclass(frozen=True)
class BadPacket:
    """A packet the decoder rejected (no frame) or decoded with errors (concealed)."""

    time: float  # presentation time in seconds (the previous packet's end when it has none)
    duration: float  # seconds (0.0 when unknown)
    reason: str  # FFmpeg's first message for it, or the exception's text


@dataclass
class StreamTally:
    """What the pass found in one stream (times in seconds on the file's timeline)."""

    kind: str  # "video" or "audio"
    declared_end: float | None  # start + duration from the container, None when not declared
    packets: int = 0  # non-empty packets, less those the container marks to discard (cut by an edit list)
    frames: int = 0  # frames decoded (video: pictures; audio: codec frames)
    samples: int = 0  # audio samples decoded (per channel)
    start: float | None = None  # pts of the first packet
    end: float | None = None  # largest pts + duration over the packets (where the data ends)
    longest_packet: float = 0.0  # longest packet duration
    bad: list[BadPacket] = field(default_factory=list)
    sum_squares: float = 0.0  # audio: sum of squared samples on the [-1, 1] scale
    values: int = 0  # audio: number of squared values summed (samples x channels)

    @property
    def bad_seconds(self) -> float:
        """Total duration of the bad packets."""
        return sum(b.duration for b in self.bad)


def _seconds(ts: int | None, time_base: object) -> float | None:
    if ts is None or not time_base:
        return None
    return ts * time_base.numerator / time_base.denominator  # type: ignore[attr-defined]


def _declared_end(stream: av.stream.Stream) -> float | None:
    dur = _seconds(stream.duration, stream.time_base)
    return None if dur is None else (_seconds(stream.start_time, stream.time_base) or 0.0) + dur


def _audio_squares(frame: av.AudioFrame) -> tuple[float, int]:
    """Sum of squared samples of ``frame`` on the [-1, 1] scale, and how many values."""
    data = frame.to_ndarray()
    name = frame.format.name.rstrip("p")
    x = data.astype(np.float64)
    if name in _FULL_SCALE:
        x = (x - 128.0 if name == "u8" else x) / _FULL_SCALE[name]
    return float(np.square(x).sum()), int(x.size)


def _count(tally: StreamTally, frames: list) -> None:
    tally.frames += len(frames)
    if tally.kind == "audio":
        for frame in frames:
            tally.samples += frame.samples
            sq, n = _audio_squares(frame)
            tally.sum_squares += sq
            tally.values += n


def decode_pass(path: str | os.PathLike[str]) -> dict[str, StreamTally]:
    """Decode every packet of the first video and audio stream of ``path`` once.

    Returns ``{"video": StreamTally, "audio": StreamTally}`` (a stream the file lacks is left
    out). A demuxer error ends the pass where the data stops (a cut-off file). FFmpeg's log level
    is raised to errors for the pass and restored afterwards. Raises :class:`av.error.FFmpegError`
    or :class:`OSError` when the file does not open.
    """
    previous, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # every bad packet must log its own error
    try:
        with av.logging.Capture() as logs, open_input(path) as container:
            streams = container.streams.video[:1] + container.streams.audio[:1]
            tallies = {s.index: StreamTally(s.type, _declared_end(s)) for s in streams}
            for s in streams:
                s.codec_context.thread_count = 1  # errors then belong to the packet being decoded
            packets = container.demux(*streams)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except (av.error.FFmpegError, OSError):  # damaged or cut-off data: it ends here
                    break
                if packet.size == 0:
                    continue
                tally = tallies[packet.stream.index]
                tally.packets += int(not packet.is_discard)  # the decoder drops those frames
                t = _seconds(packet.pts if packet.pts is not None else packet.dts, packet.time_base)
                length = _seconds(packet.duration, packet.time_base) or 0.0
                if t is None:
                    t = tally.end if tally.end is not None else 0.0
                tally.start = t if tally.start is None else min(tally.start, t)
                tally.end = max(tally.end if tally.end is not None else t, t + length)
                tally.longest_packet = max(tally.longest_packet, length)
                logged = len(logs)
                reason = None
                try:
                    _count(tally, packet.stream.decode(packet))
                except av.error.FFmpegError as e:
                    reason = getattr(e, "strerror", None) or type(e).__name__
                messages = [m.strip() for _, _, m in logs[logged:] if m.strip()]
                if messages:
                    reason = messages[0]
                if reason is not None:
                    tally.bad.append(BadPacket(t, length, reason))
            for s in streams:
                try:
                    _count(tallies[s.index], s.decode(None))
                except av.error.FFmpegError:
                    pass
            return {t.kind: t for t in tallies.values()}
    finally:
        av.logging.set_level(previous)
        av.logging.set_skip_repeated(skip_repeated)
