"""Write real ``.mp4`` files (H.264 video + AAC audio) with PyAV.

Used by the generated world and by tests that need fixture videos. Frames are uint8 RGB
``(T, H, W, 3)``; audio is float32 in ``[-1, 1]``, shaped ``(N,)`` (mono) or ``(C, N)``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["write_mp4", "encode_frames"]


def _as_channels_first(audio: np.ndarray) -> np.ndarray:
    """Return audio as float32 ``(C, N)`` clipped to ``[-1, 1]``."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (N,), (1, N) or (2, N); got shape {a.shape}")
    return np.clip(a, -1.0, 1.0)


def encode_frames(container: av.container.OutputContainer, stream: av.VideoStream, frames: np.ndarray) -> None:
    """Encode uint8 RGB ``frames`` ``(T, H, W, 3)`` into ``stream`` and mux them, then flush
    the encoder."""
    for img in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    *,
    crf: int = 23,
    preset: str = "veryfast",
    audio_bitrate: int = 64_000,
    video_codec: str = "libx264",
) -> Path:
    """Encode ``frames`` (uint8 ``(T, H, W, 3)``, H and W even) and optional audio into ``path``.

    The file is written to a temporary name and renamed, so a crash never leaves a half-written
    video under the final name. Returns the final path.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3); got {frames.dtype} {frames.shape}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes; got {h}x{w}")
    if audio is not None and not sample_rate:
        raise ValueError("sample_rate is required when audio is given")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(tmp), mode="w", format="mp4") as container:
        vstream = container.add_stream(video_codec, rate=rate)
        vstream.width, vstream.height = w, h
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"crf": str(crf), "preset": preset}
        astream = None
        if audio is not None:
            chans = _as_channels_first(audio)
            astream = container.add_stream("aac", rate=int(sample_rate))
            astream.layout = "mono" if chans.shape[0] == 1 else "stereo"
            astream.bit_rate = audio_bitrate
        encode_frames(container, vstream, frames)
        if astream is not None:
            # Planar float frames of 1024 samples (the AAC frame size); pts in samples.
            chunk = 1024
            n = chans.shape[1]
            for start in range(0, n, chunk):
                block = np.ascontiguousarray(chans[:, start : start + chunk])
                af = av.AudioFrame.from_ndarray(block, format="fltp", layout=astream.layout.name)
                af.sample_rate = int(sample_rate)
                af.pts = start
                af.time_base = Fraction(1, int(sample_rate))
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    tmp.replace(path)
    return path
