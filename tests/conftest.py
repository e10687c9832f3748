"""Shared, generic test fixtures: tiny media files generated on the fly (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glocal.data.av_writer import write_mp4


def _ramp_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` flat frames whose grey level encodes the index: ``10 + 7 * k``."""
    levels = (10 + 7 * np.arange(num_frames)).clip(0, 255).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def _tone(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.3) -> np.ndarray:
    """float32 ``(N,)`` sine wave."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def tiny_av_video(tmp_path: Path) -> Path:
    """2 s H.264+AAC mp4: 32 flat 32x32 frames at 16 fps, frame k has grey level ``10 + 7 k``;
    mono 16 kHz 440 Hz tone (amplitude 0.3) over the whole 2 s."""
    return write_mp4(tmp_path / "tiny_av.mp4", _ramp_frames(32, 32, 32), 16, _tone(440.0, 2.0, 16000), 16000)


@pytest.fixture
def tiny_video_no_audio(tmp_path: Path) -> Path:
    """Same frames as ``tiny_av_video`` without an audio stream."""
    return write_mp4(tmp_path / "tiny_noaudio.mp4", _ramp_frames(32, 32, 32), 16)
