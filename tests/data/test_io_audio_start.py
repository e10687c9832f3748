"""Audio windows at the very start of a file: AAC's hidden priming packet must be decoded."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from glocal.data.av_writer import write_mp4
from glocal.data.io import read_audio, read_clip


@pytest.fixture
def aac_tone(tmp_path: Path) -> Path:
    """2 s mp4 with a 16 kHz mono AAC 440 Hz tone (no resampling needed at 16 kHz)."""
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return write_mp4(tmp_path / "tone.mp4", np.zeros((32, 32, 32, 3), np.uint8), 16, tone, 16000)


def _full_decode(path: Path) -> np.ndarray:
    """The whole audio stream decoded by plain PyAV from the opened file (no seek)."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
        assert frames[0].pts == 0 and frames[0].sample_rate == 16000
        return np.concatenate([f.to_ndarray()[0] for f in frames])


@pytest.mark.parametrize("start", [0.0, 0.01, 0.05])
def test_window_near_the_start_equals_the_full_decode(aac_tone: Path, start: float) -> None:
    full = _full_decode(aac_tone)
    k = int(round(start * 16000))
    audio, valid = read_audio(aac_tone, start, 0.2)
    assert valid.all()
    np.testing.assert_allclose(audio[0], full[k : k + 3200], atol=1e-6)
    clip = read_clip(aac_tone, start, 2, 16, audio_duration=0.2)
    np.testing.assert_allclose(clip.audio[0], full[k : k + 3200], atol=1e-6)
