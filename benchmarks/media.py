"""Test media for the loader benchmarks (``decode.py``, ``feed.py``): web-like H.264 + AAC files.

:func:`make_video` writes ``seconds`` of moving gradients, a drifting texture and bouncing discs
at ``width x height`` and ``fps``, with a three-tone chord + noise as 44.1 kHz stereo AAC, through
:func:`glocal.data.av_writer.write_mp4` with x264's defaults: one keyframe per 250 frames, as most
web video, so a window in the middle of a file decodes from far before it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glocal.data.av_writer import write_mp4

AUDIO_SR_IN = 44100


def make_video(path: Path, seed: int, *, width: int = 320, height: int = 240, fps: int = 25,
               seconds: float = 10.0) -> Path:
    """Write one test video to ``path`` (content drawn from ``seed``); returns ``path``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.random((height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    tex = np.repeat(np.repeat(texture, 8, 0), 8, 1)
    frames = np.empty((n, height, width, 3), np.uint8)
    centres = rng.uniform([0, 0], [width, height], size=(4, 2))
    vel = rng.uniform(-6, 6, size=(4, 2))
    colours = rng.uniform(0, 255, size=(4, 3))
    for t in range(n):
        ox = int(t * 0.7) % 8
        img = 60 * tex[:height, ox : ox + width] + (0.4 * ((xx + 3 * t) % 255))[..., None] * np.array([1.0, 0.5, 0.2])
        for c, v, col in zip(centres, vel, colours):
            p = (c + v * t) % [width, height]
            img[(xx - p[0]) ** 2 + (yy - p[1]) ** 2 < 30**2] = col
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    k = np.arange(int(seconds * AUDIO_SR_IN)) / AUDIO_SR_IN
    chord = sum(np.sin(2 * np.pi * f * k) for f in rng.uniform(200, 2000, 3)) / 6
    audio = np.stack([chord, chord]) + 0.02 * rng.standard_normal((2, k.size))
    return write_mp4(path, frames, fps, audio.astype(np.float32), AUDIO_SR_IN)
