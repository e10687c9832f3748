"""Build a log-mel frontend from a preset, adapted to the dataset's sample rate.

Presets are defined at their own rate (e.g. ``glcm``: 16 kHz, 25 ms window, 10 ms hop, 80 mels up
to 8 kHz). For another rate the window and hop keep their duration in milliseconds, ``n_fft`` is
the next power of two ≥ the window, and ``f_max`` is clipped to the new Nyquist frequency.
"""

from __future__ import annotations

from .logmel import LOGMEL_PRESETS, LogMel

__all__ = ["build_logmel"]


def build_logmel(preset: str, sample_rate: int, n_mels: int | None = None) -> LogMel:
    """A :class:`LogMel` for ``sample_rate`` with the preset's time/frequency resolution."""
    base = dict(LOGMEL_PRESETS[preset])
    ratio = sample_rate / base["sample_rate"]
    win = max(16, int(round(base["win_length"] * ratio)))
    hop = max(1, int(round(base["hop_length"] * ratio)))
    n_fft = 1 << (max(win, int(round(base["n_fft"] * ratio))) - 1).bit_length()
    f_max = base.get("f_max")
    nyquist = sample_rate / 2
    f_max = nyquist if f_max is None else min(float(f_max), nyquist)
    overrides = dict(sample_rate=sample_rate, win_length=win, hop_length=hop, n_fft=n_fft, f_max=f_max)
    if n_mels is not None:
        overrides["n_mels"] = n_mels
    return LogMel.from_preset(preset, **overrides)
