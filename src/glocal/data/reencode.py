"""Re-encode one media file to a training geometry (used by ``glocal prepare``, :mod:`glocal.data.prepare`).

The timeline is kept: every output frame is shown at the same time (seconds) as the source frame
that is on screen then, and the audio keeps its timestamps, so annotations in seconds and frame
times stay valid. What changes:

* video: the shorter side is scaled down to ``short_side`` (never up; aspect kept, even sizes),
  upright (a rotation in the display matrix is applied to the pixels), ``yuv420p`` with a
  keyframe every ``keyframe_s`` seconds (no scene-cut keyframes in between): MPEG-4 Part 2 at a
  fixed quantiser (``codec="mpeg4"``, the default: the cheapest to decode at equal quality) or
  H.264 with x264 ``tune=fastdecode`` (``codec="h264"``: fewer bytes);
* frame rate: a source faster than ``max_fps`` is resampled onto the grid ``t0 + k / max_fps``
  (each output frame is the source frame on screen at that time); slower or variable-rate
  sources keep their own frame times;
* audio: mono (the normalised downmix the readers use) at ``sample_rate``: 16-bit PCM in a WAV
  sidecar beside the video, which then has no audio stream (``audio="wav"``, the default:
  :mod:`glocal.data.audio_sidecar`), or AAC inside the file (``audio="aac"``: a quarter of the
  bytes, about 1.6 ms more CPU per training sample). A file without video keeps its audio inside.

The container follows the file name: ``.mp4/.m4v`` -> MP4, ``.mov`` -> MOV, anything else ->
Matroska under the same name (FFmpeg reads a file by its content, not its extension), so every
manifest and split file keeps pointing at the right file.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

import av
import numpy as np

from ..config import Range
from .audio_sidecar import SidecarWriter
from .config import SAMPLE_RATE
from .io import declared_audio_end

__all__ = ["EncodeParams", "reencode", "output_size", "container_format"]

#: output video time base: fine enough to keep any source frame time to 11 us
_TIME_BASE = Fraction(1, 90000)
#: the MPEG-4 encoder's (the standard caps the denominator at 65535): exact for 10, 12, 15, 16, 24, 25,
#: 30, 48, 50 and 60 fps and for 30000/1001; other frame times are rounded to 8 us
_MPEG4_TIME_BASE = Fraction(1, 60000)
_EPS = 1e-4  # seconds: a grid slot at (almost) a new frame's time shows the new frame


@dataclass(frozen=True)
class EncodeParams:
    """What a prepared file looks like (recorded in ``prepared.json``); ``glocal prepare``'s
    ``key=value`` options, each bound on its field (checked by :func:`glocal.config.build`)."""

    short_side: Annotated[int, Range(8, 8192, multiple_of=2)] = 128  # shorter side (px), never upscaled
    max_fps: Annotated[float, Range(0.0, 1000.0, lo_open=True)] = 30.0  # frame-rate cap
    keyframe_s: Annotated[float, Range(0.0, 60.0, lo_open=True)] = 0.5  # seconds between keyframes
    sample_rate: Annotated[int, Range(4000, 192000)] = SAMPLE_RATE  # mono audio at this rate (Hz)
    #: video codec: "mpeg4" (MPEG-4 Part 2, FFmpeg's own encoder; a GLCM sample decodes 23 % faster than
    #: from H.264 at the same PSNR, for 1.6x the bytes: benchmarks/feed.py) or "h264" (libx264)
    codec: Literal["mpeg4", "h264"] = "mpeg4"
    qscale: Annotated[int, Range(1, 31)] = 3  # mpeg4: the constant quantiser (lower: larger, closer to the source)
    crf: Annotated[int, Range(0, 51)] = 20  # h264: x264 constant rate factor (lower: larger, closer to the source)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                    "veryslow"] = "veryfast"
    #: x264 tune: fastdecode (no CABAC, no deblocking): a GLCM sample from the prepared copy cost
    #: 20.3 instead of 28.6 CPU ms in ``benchmarks/decode.py --prepared`` (docs/data_formats.md); "" for none
    tune: Literal["fastdecode", "film", "animation", "grain", "stillimage", ""] = "fastdecode"
    audio_bitrate: Annotated[int, Range(8000, 512000)] = 64_000  # AAC bits/s (audio=aac)
    #: where the audio goes: "wav", 16-bit PCM beside the video (NAME.EXT.audio.wav; a GLCM sample
    #: reads 1.6 ms faster, benchmarks/feed.py) or "aac", inside the file (4x fewer bytes)
    audio: Literal["wav", "aac"] = "wav"


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(W, H)`` with the shorter side scaled down to ``short_side`` (never up), aspect kept, even."""
    scale = min(1.0, short_side / max(1, min(width, height)))
    even = lambda v: max(2, int(round(v * scale / 2.0)) * 2)  # noqa: E731
    return even(width), even(height)


def container_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}.get(suffix, "matroska")


def _rotation(frame: av.VideoFrame) -> int:
    try:
        return int(round(float(frame.rotation) / 90.0)) % 4
    except (AttributeError, TypeError, ValueError):
        return 0


class _VideoOut:
    """Scales, rotates and encodes frames at given times (seconds) into one output stream."""

    def __init__(self, container: av.container.OutputContainer, params: EncodeParams, rate: float,
                 threads: int = 0) -> None:
        self.container, self.params, self.rate, self.threads = container, params, rate, threads
        self.stream: av.VideoStream | None = None
        self.time_base = _TIME_BASE  # of the frames given to the encoder (set when the stream opens)
        self.size: tuple[int, int] | None = None
        self.count = 0

    def _open(self, w: int, h: int) -> None:
        p = self.params
        self.size = output_size(w, h, p.short_side)
        g = max(1, int(round(p.keyframe_s * self.rate)))
        rate = Fraction(self.rate).limit_denominator(1001)
        s = self.container.add_stream("libx264" if p.codec == "h264" else "mpeg4", rate=rate)
        s.width, s.height = self.size
        s.pix_fmt = "yuv420p"
        s.codec_context.thread_count = self.threads
        s.time_base = _TIME_BASE
        if p.codec == "h264":
            self.time_base = _TIME_BASE
            s.options = {"crf": str(p.crf), "preset": p.preset, **({"tune": p.tune} if p.tune else {}),
                         "x264-params": f"keyint={g}:min-keyint={g}:scenecut=0"}
        else:  # a fixed quantiser (qmin = qmax), I and P frames, a keyframe every g frames and no others
            self.time_base = _MPEG4_TIME_BASE
            s.options = {"qmin": str(p.qscale), "qmax": str(p.qscale), "g": str(g), "sc_threshold": "1000000000",
                         "bf": "0"}  # AVOptions: the same names in every PyAV version
        s.codec_context.time_base = self.time_base
        self.stream = s

    def write(self, frame: av.VideoFrame, t: float) -> None:
        k = _rotation(frame)
        w, h = (frame.height, frame.width) if k % 2 else (frame.width, frame.height)
        if self.stream is None:
            self._open(w, h)
        ow, oh = self.size
        if k:
            rgb = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k))
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=ow, height=oh, format="yuv420p")
        else:
            out = frame.reformat(width=ow, height=oh, format="yuv420p")
        out.pts = int(round(t / self.time_base))
        out.time_base = self.time_base
        for packet in self.stream.encode(out):
            self.container.mux(packet)
        self.count += 1

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)


class _FrameRateCap:
    """Feeds ``_VideoOut`` either every source frame at its own time, or (``cap``) the frame on
    screen at each grid time ``t0 + k / cap``."""

    def __init__(self, out: _VideoOut, cap: float | None) -> None:
        self.out, self.cap = out, cap
        self.prev: tuple[av.VideoFrame, float] | None = None
        self.t0: float | None = None
        self.k = 0

    def push(self, frame: av.VideoFrame, t: float) -> None:
        if self.cap is None:
            self.out.write(frame, t)
            return
        if self.prev is None:
            self.t0 = t
        else:
            self._emit_until(t)
        self.prev = (frame, t)

    def _emit_until(self, t_next: float) -> None:
        frame, _ = self.prev
        while True:
            slot = self.t0 + self.k / self.cap
            if slot >= t_next - _EPS:
                return
            self.out.write(frame, slot)
            self.k += 1

    def finish(self, frame_step: float) -> None:
        if self.cap is not None and self.prev is not None:
            self._emit_until(self.prev[1] + frame_step)
            if self.k == 0:  # a single-frame file
                self.out.write(self.prev[0], self.t0)


def _seconds(frame: av.frame.Frame) -> float | None:
    if frame.pts is None or frame.time_base is None or not frame.time_base:
        return None
    return float(frame.pts * frame.time_base)


def _first_video_frame(src: str) -> tuple[int, int] | None:
    """Display ``(width, height)`` of the first decodable video frame (None: no video stream)."""
    with av.open(src) as inp:
        if not inp.streams.video:
            return None
        for frame in inp.decode(video=0):
            return (frame.height, frame.width) if _rotation(frame) % 2 else (frame.width, frame.height)
    raise ValueError("no video frame decodes")


def reencode(src: str | Path, dst: str | Path, params: EncodeParams, *, threads: int = 0,
             audio_path: str | Path | None = None) -> dict:
    """Re-encode ``src`` into ``dst`` (written in place: the caller renames it); returns a summary.

    ``threads``: decoder and encoder threads (0: FFmpeg's automatic choice; 1 in parallel workers).
    ``audio_path``: where the WAV sidecar goes with ``params.audio == "wav"`` (the final name: it
    is written under a temporary one and renamed when complete); required then for a file with
    video and audio.

    Raises whatever PyAV raises on a broken file (the caller reports it and leaves the file out).
    """
    src, dst = str(src), str(dst)
    first = _first_video_frame(src)
    with av.open(src) as inp:
        vin = inp.streams.video[0] if inp.streams.video else None
        ain = inp.streams.audio[0] if inp.streams.audio else None
        if vin is None and ain is None:
            raise ValueError("no video or audio stream")
        src_fps = float(vin.average_rate or vin.guessed_rate or 0) if vin is not None else 0.0
        cap = params.max_fps if params.max_fps and src_fps > params.max_fps * 1.001 else None
        out_rate = cap if cap else (src_fps if src_fps > 0 else params.max_fps or 25.0)
        streams = [s for s in (vin, ain) if s is not None]
        if vin is not None:
            vin.thread_type = "AUTO"
            vin.thread_count = threads
        with av.open(dst, mode="w", format=container_format(dst)) as out:
            video = _VideoOut(out, params, out_rate, threads) if vin is not None else None
            feeder = _FrameRateCap(video, cap) if video is not None else None
            audio = None
            if ain is not None:  # a sidecar only beside a video: an audio-only file keeps its audio inside
                beside = vin is not None and params.audio == "wav"
                if beside and audio_path is None:
                    raise ValueError("audio=wav needs the sidecar's path (audio_path)")
                audio = _AudioOut(out, params, audio_path if beside else None, declared_audio_end(inp))
            if video is not None:
                # every stream must exist before the first packet is muxed (an audio packet may come first)
                video._open(*first)
            last_t, step = None, 1.0 / out_rate
            for packet in inp.demux(*streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        t = _seconds(frame)
                        t = (last_t + step if last_t is not None else 0.0) if t is None else t
                        if last_t is not None and t <= last_t + 1e-6:
                            continue  # a repeated timestamp (or a seek's leftover): keep one frame per time
                        feeder.push(frame, t)
                        last_t = t
                    else:
                        audio.push(frame)
            if feeder is not None:
                feeder.finish(1.0 / src_fps if src_fps > 0 else step)
                video.close()
            if audio is not None:
                audio.finish()
            frames = video.count if video is not None else 0
            if vin is not None and frames == 0:
                raise ValueError("no video frame decodes")
    return {"frames": frames, "fps": out_rate if vin is not None else 0.0,
            "size": list(video.size) if video is not None and video.size else None,
            "audio": audio is not None and audio.written}


class _AudioOut:
    """Resamples the source's audio frames to mono at ``sample_rate`` and lays them end to end
    from the first frame's time, into an AAC stream of ``container`` or, with ``sidecar`` (a
    path), into a 16-bit WAV there, opened at the first sample (its start on the timeline) and
    cut at the source's declared audio ``end`` (the padding of its last AAC frame, which the
    readers also cut)."""

    def __init__(self, container: av.container.OutputContainer, params: EncodeParams,
                 sidecar: str | Path | None, end: float | None) -> None:
        self.container, self.rate, self.sidecar, self.end = container, params.sample_rate, sidecar, end
        self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=self.rate,
                                           options={"rematrix_maxval": "1.0"})
        self.stream: av.AudioStream | None = None
        if sidecar is None:
            self.stream = container.add_stream("aac", rate=self.rate)
            self.stream.layout = "mono"
            self.stream.bit_rate = params.audio_bitrate
        self.writer: SidecarWriter | None = None
        self.next_sample: int | None = None  # timeline index of the next resampled sample

    @property
    def written(self) -> bool:
        """Whether the output holds audio (an AAC stream, or a sidecar with samples)."""
        return self.stream is not None or self.writer is not None

    def push(self, frame: av.AudioFrame | None) -> None:
        """One source frame (None: drain the resampler)."""
        t = _seconds(frame) if frame is not None else None
        for rf in self.resampler.resample(frame):
            if self.next_sample is None:
                self.next_sample = int(round((t or 0.0) * self.rate))
            if self.sidecar is not None:
                if self.writer is None:
                    self.writer = SidecarWriter(self.sidecar, self.rate, 1, start=self.next_sample / self.rate)
                self.writer.write(rf.to_ndarray())
            else:
                rf.pts, rf.time_base = self.next_sample, Fraction(1, self.rate)
                for p in self.stream.encode(rf):
                    self.container.mux(p)
            self.next_sample += rf.samples

    def finish(self) -> None:
        """Drain the resampler, then flush the encoder or finish the sidecar."""
        self.push(None)
        if self.stream is not None:
            for p in self.stream.encode():
                self.container.mux(p)
        elif self.writer is not None:
            keep = None if self.end is None else max(0, int(round((self.end - self.writer.start) * self.rate)))
            self.writer.close(max_frames=keep)
