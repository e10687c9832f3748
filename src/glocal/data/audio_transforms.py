"""Audio augmentations (methods.md 7.3): gain, time/frequency masking, reversal, speed change.

Every function returns ``(output, params)`` where ``params`` records what was drawn or done, so
a test (or a pretext label) can check it. Waveforms are float tensors ``(..., N)``; spectrograms
are log-mel tensors ``(..., F, S)`` (frequency bins, time steps) as produced by
:class:`~glocal.data.logmel.LogMel`. Randomness comes from the ``numpy.random.Generator`` the
dataset passes in (seeded by ``(seed, epoch, index)``).

Speed change resamples the waveform (tempo and pitch change together, as in playing a tape
faster): output sample ``k`` is the input at time ``k * speed``; ``"sinc"`` is a Hann-windowed
sinc interpolator whose cutoff drops to ``1 / speed`` of Nyquist when speeding up (no aliasing),
``"linear"`` is plain linear interpolation (cheaper, aliases).

The dataset-facing callables :class:`WaveformAugment` and :class:`LogMelAugment` take
``(wave (N,), rng)`` and return ``(tensor, params)``; use them as the values of
``MultiViewDataset(audio_transforms={key: ...})``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .logmel import LogMel

__all__ = [
    "random_gain",
    "time_mask",
    "freq_mask",
    "reverse",
    "change_speed",
    "time_stretch",
    "WaveformAugment",
    "LogMelAugment",
]


def random_gain(
    wave: torch.Tensor, rng: np.random.Generator, max_delta: float = 0.1
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Multiply by ``g ~ U(1 - max_delta, 1 + max_delta)`` (AVID: +-10 %) -> (wave, ``{"gain": g}``)."""
    g = float(rng.uniform(1.0 - max_delta, 1.0 + max_delta))
    return wave * g, {"gain": g}


def _mask(
    spec: torch.Tensor,
    rng: np.random.Generator,
    axis: int,
    max_width: int,
    n_masks: int,
    value: float | None,
    key: str,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Fill ``n_masks`` bands of width ``U{0..max_width}`` along ``axis`` with ``value``
    (default: the spectrogram's mean)."""
    size = spec.shape[axis]
    fill = float(spec.mean()) if value is None else float(value)
    out = spec.clone()
    bands: list[tuple[int, int]] = []
    for _ in range(n_masks):
        width = int(rng.integers(0, min(max_width, size) + 1))
        start = int(rng.integers(0, size - width + 1))
        if width:
            out.narrow(axis, start, width).fill_(fill)
        bands.append((start, width))
    return out, {key: bands, "fill": fill}


def time_mask(
    spec: torch.Tensor, rng: np.random.Generator, max_width: int, n_masks: int = 1, value: float | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """SpecAugment time masking of ``(..., F, S)``: ``n_masks`` runs of ``U{0..max_width}`` steps
    set to ``value`` (default the mean) -> (spec, ``{"time_masks": [(start, width)], "fill": v}``)."""
    return _mask(spec, rng, spec.dim() - 1, max_width, n_masks, value, "time_masks")


def freq_mask(
    spec: torch.Tensor, rng: np.random.Generator, max_width: int, n_masks: int = 1, value: float | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """SpecAugment frequency masking of ``(..., F, S)``: ``n_masks`` bands of ``U{0..max_width}``
    bins -> (spec, ``{"freq_masks": [(start, width)], "fill": v}``)."""
    return _mask(spec, rng, spec.dim() - 2, max_width, n_masks, value, "freq_masks")


def reverse(wave: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Time reversal of ``(..., N)`` -> (wave, ``{"reversed": True}``)."""
    return wave.flip(-1), {"reversed": True}


def change_speed(
    wave: torch.Tensor,
    speed: float,
    *,
    mode: Literal["sinc", "linear", "stretch"] = "sinc",
    num_out: int | None = None,
    zero_crossings: int = 16,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Play ``(..., N)`` ``speed`` times faster: ``(..., num_out)`` with output sample ``k`` = the
    input at (fractional) sample ``k * speed``; ``num_out`` defaults to ``round(N / speed)``.

    Pitch scales with ``speed``. ``"sinc"``: Hann-windowed sinc with ``zero_crossings`` lobes per
    side at cutoff ``min(1, 1 / speed)`` of Nyquist, weights normalised to sum 1; samples outside
    the input count as 0. ``"linear"``: linear interpolation (the last sample is held).
    ``"stretch"``: tempo only, pitch kept (:func:`time_stretch`, a phase vocoder).
    Returns (wave, ``{"speed": speed, "mode": mode}``).
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    n = wave.shape[-1]
    n_out = int(round(n / speed)) if num_out is None else int(num_out)
    params: dict[str, Any] = {"speed": float(speed), "mode": mode}
    if n == 0 or n_out == 0:
        return wave.new_zeros(*wave.shape[:-1], n_out), params
    if speed == 1.0 and n_out <= n:
        return wave[..., :n_out].clone(), params
    x = wave.float()
    if mode == "stretch":
        return time_stretch(x, float(speed), num_out=n_out).to(wave.dtype), params
    pos = torch.arange(n_out, dtype=torch.float64) * float(speed)
    if mode == "linear":
        i0 = pos.floor().long().clamp_(0, n - 1)
        i1 = (i0 + 1).clamp_(max=n - 1)
        frac = (pos - i0.double()).clamp_(0, 1).to(x.dtype)
        out = x[..., i0] * (1 - frac) + x[..., i1] * frac
        return out.to(wave.dtype), params
    if mode != "sinc":
        raise ValueError(f"mode must be 'sinc', 'linear' or 'stretch', got {mode!r}")
    if float(speed).is_integer():
        out = _sinc_decimate(x, int(speed), n_out, zero_crossings)
    else:
        out = _sinc_gather(x, float(speed), n_out, zero_crossings)
    return out.to(wave.dtype), params


def time_stretch(
    wave: torch.Tensor, rate: float, *, num_out: int | None = None, n_fft: int = 512, hop: int | None = None
) -> torch.Tensor:
    """Play ``(..., N)`` ``rate`` times faster **without changing pitch** -> ``(..., num_out)``
    (default ``round(N / rate)``): a phase vocoder (AVTS's "time-stretch without pitch change").

    STFT with a Hann window of ``n_fft`` samples (32 ms at 16 kHz) and hop ``n_fft // 4``; output
    frame ``j`` reads the input at frame position ``p = j * rate``: magnitude interpolated
    linearly between frames ``floor(p)`` and ``floor(p) + 1``, phase accumulated from the
    measured per-bin phase advance (so each partial keeps its frequency),

        phi_0 = angle(X[:, 0]);  phi_{j+1} = phi_j + w + princarg(angle(X[:, k+1]) - angle(X[:, k]) - w),

    with ``k = floor(p_j)`` and ``w = 2 pi hop f / n_fft`` the advance of bin ``f``; inverse STFT
    by overlap-add. Transients smear a little (the usual phase-vocoder "phasiness").
    """
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    n = wave.shape[-1]
    n_out = int(round(n / rate)) if num_out is None else int(num_out)
    lead = wave.shape[:-1]
    if n == 0 or n_out == 0:
        return wave.new_zeros(*lead, n_out)
    hop = hop or n_fft // 4
    x = wave.reshape(-1, n).float()
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)
    frames = spec.shape[-1]
    steps = torch.arange(int(math.ceil(frames / rate)) + 1, dtype=torch.float64, device=x.device) * rate
    steps = steps[steps < frames]  # output frame j reads input position j * rate
    k = (steps + 1e-9).floor().long()  # 3 * 5.0000000001-style rounding must not drop a frame
    alpha = (steps - k).clamp_(min=0.0).to(x.dtype)
    padded = torch.cat([spec, torch.zeros_like(spec[..., :1])], dim=-1)  # frame k + 1 at the end
    mag = (1 - alpha) * padded[..., k].abs() + alpha * padded[..., k + 1].abs()
    # phases in float64: the running sum reaches ~1e5 rad over a few seconds
    angle = padded.angle().double()
    advance = 2 * math.pi * hop * torch.arange(spec.shape[-2], dtype=torch.float64, device=x.device) / n_fft
    dphi = angle[..., k + 1] - angle[..., k] - advance[:, None]
    dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi))  # principal value
    inc = advance[:, None] + dphi
    phase = angle[..., :1] + torch.cumsum(inc, dim=-1) - inc  # phi_0 for the first frame
    out = torch.polar(mag, torch.remainder(phase, 2 * math.pi).to(mag.dtype))
    y = torch.istft(out, n_fft, hop, window=window, center=True, length=n_out)
    return y.reshape(*lead, n_out).to(wave.dtype)


def _sinc_weights(u: torch.Tensor, zero_crossings: int) -> torch.Tensor:
    """Hann-windowed sinc at distances ``u`` (output-rate samples), zero from ``zero_crossings`` on."""
    w = torch.special.sinc(u) * (0.5 + 0.5 * torch.cos(math.pi * u / zero_crossings))
    return torch.where(u.abs() < zero_crossings, w, torch.zeros_like(w))


def _sinc_gather(x: torch.Tensor, speed: float, n_out: int, zero_crossings: int) -> torch.Tensor:
    """General speed: gather the taps around each output position ``k * speed``."""
    n = x.shape[-1]
    cutoff = min(1.0, 1.0 / speed)
    half = int(math.ceil(zero_crossings / cutoff))
    offsets = torch.arange(-half + 1, half + 1, dtype=torch.long)
    pos = torch.arange(n_out, dtype=torch.float64) * speed
    idx = pos.floor().long()[:, None] + offsets[None, :]  # (n_out, taps)
    weights = _sinc_weights(((pos[:, None] - idx.double()) * cutoff).float(), zero_crossings)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
    inside = (idx >= 0) & (idx < n)
    gathered = x[..., idx.clamp(0, n - 1)] * inside.to(x.dtype)  # (..., n_out, taps)
    return (gathered * weights.to(x.dtype)).sum(dim=-1)


def _sinc_decimate(x: torch.Tensor, k: int, n_out: int, zero_crossings: int) -> torch.Tensor:
    """Integer speed ``k``: the same filter as :func:`_sinc_gather` (every output position is a
    sample, so the taps are identical), run as one strided ``conv1d``."""
    cutoff = 1.0 / k
    half = int(math.ceil(zero_crossings / cutoff))
    offsets = torch.arange(-half + 1, half + 1, dtype=torch.float64)
    weights = _sinc_weights((-offsets * cutoff).float(), zero_crossings)
    weights = (weights / weights.sum()).to(x.dtype)
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, x.shape[-1])
    need = (n_out - 1) * k + weights.numel()
    left = half - 1
    right = max(0, need - flat.shape[-1] - left)
    flat = torch.nn.functional.pad(flat, (left, right))
    out = torch.nn.functional.conv1d(flat, weights.view(1, 1, -1), stride=k)[..., :n_out]
    return out.reshape(*lead, n_out)


@dataclass
class WaveformAugment:
    """Dataset audio transform on a waveform ``(N,)``: random gain (``gain=0`` disables it)."""

    gain: float = 0.1

    def __call__(self, wave: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.gain > 0:
            return random_gain(wave, rng, self.gain)
        return wave, {}


@dataclass
class LogMelAugment:
    """Dataset audio transform producing a log-mel spectrogram ``(n_bins, S)`` from ``(N,)``:
    optional gain on the waveform, then ``frontend``, then time / frequency masking."""

    frontend: LogMel
    gain: float = 0.0
    time_masks: int = 0
    time_width: int = 10
    freq_masks: int = 0
    freq_width: int = 8

    def __call__(self, wave: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        params: dict[str, Any] = {}
        if self.gain > 0:
            wave, p = random_gain(wave, rng, self.gain)
            params.update(p)
        with torch.no_grad():
            spec = self.frontend(wave.float().unsqueeze(0))[0]  # (n_bins, S)
        if self.time_masks:
            spec, p = time_mask(spec, rng, self.time_width, self.time_masks)
            params.update(p)
        if self.freq_masks:
            spec, p = freq_mask(spec, rng, self.freq_width, self.freq_masks)
            params["freq_masks"] = p["freq_masks"]
        return spec, params
