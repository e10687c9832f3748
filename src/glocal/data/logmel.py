"""Log-mel spectrogram frontend built on ``torch.stft`` (no torchaudio / librosa).

``LogMel(wave)``: ``(B, N)`` or ``(B, C, N)`` waveform (channels are averaged to mono) ->
``(B, n_bins, S)`` with ``S = 1 + N // hop_length`` (``center=True``).

Pipeline (always float32, also under autocast): Hann window of ``win_length`` (periodic, zero-padded
to ``n_fft`` by ``torch.stft``) -> power spectrum ``|X|^2`` -> triangular mel filterbank ->
``ln(mel + eps)`` or ``10 log10(max(mel, eps))`` (optionally clipped to ``max - top_db`` per example)
-> optional per-bin ``(x - mean) / std``.

Filterbank: triangles whose corners are ``n_mels + 2`` points equally spaced on the mel scale between
``f_min`` and ``f_max`` and which are linear in Hz between the corners (the HTK / torchaudio / librosa
construction). Mel scale ``"htk"`` (default, ``2595 log10(1 + f / 700)``) or ``"slaney"`` (linear
below 1 kHz, logarithmic above); ``norm=None`` (peak 1, default) or ``"slaney"`` (unit area:
each row scaled by ``2 / (f_hi - f_lo)``). ``n_mels=None`` skips the filterbank (linear
``n_fft // 2 + 1``-bin spectrogram, as AVID uses).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from glocal.errors import ConfigError

__all__ = [
    "subtract_noise_floor",
    "LOGMEL_PRESETS",
    "LogMel",
    "hz_to_mel",
    "mel_filterbank",
    "mel_to_hz",
    "num_frames",
    "resize_time",
]

LOG_MODES = ("ln", "db")
MEL_SCALES = ("htk", "slaney")
MEL_NORMS = (None, "slaney")
RESIZE_MODES = ("nearest", "nearest-exact", "linear", "area")

# [INF] presets (spec 1.3, 4.2, 7.2). "glcm": 16 kHz, 25 ms Hann / 10 ms hop, 80 mels to 8 kHz,
# ln(mel + 1e-6). "avid": AVID-CMA style 24 kHz, 100 frames/s, n_fft 512 -> 257-bin linear dB
# spectrogram. "avts": 16 kHz, 25 ms / 10 ms, 128 mels (n_fft 1024 so no filter falls between FFT
# bins), dB clipped at 80 dB below the per-example peak.
LOGMEL_PRESETS: dict[str, dict[str, Any]] = {
    "glcm": dict(
        sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80,
        f_min=0.0, f_max=8000.0, log="ln", eps=1e-6, top_db=None,
    ),
    "avid": dict(
        sample_rate=24000, n_fft=512, win_length=512, hop_length=240, n_mels=None,
        f_min=0.0, f_max=None, log="db", eps=1e-10, top_db=None,
    ),
    "avts": dict(
        sample_rate=16000, n_fft=1024, win_length=400, hop_length=160, n_mels=128,
        f_min=0.0, f_max=8000.0, log="db", eps=1e-10, top_db=80.0,
    ),
}


def hz_to_mel(f: torch.Tensor | float, scale: str = "htk") -> torch.Tensor:
    """Hz -> mel. ``"htk"``: ``2595 log10(1 + f / 700)``; ``"slaney"``: ``3 f / 200`` below 1 kHz,
    ``15 + 27 ln(f / 1000) / ln(6.4)`` above."""
    f = torch.as_tensor(f, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    if scale == "slaney":
        lin = 3.0 * f / 200.0
        log = 15.0 + torch.log(torch.clamp(f, min=1e-12) / 1000.0) * (27.0 / math.log(6.4))
        return torch.where(f >= 1000.0, log, lin)
    raise ConfigError(f"mel_scale must be one of {MEL_SCALES}, got {scale!r}")


def mel_to_hz(m: torch.Tensor | float, scale: str = "htk") -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    m = torch.as_tensor(m, dtype=torch.float64)
    if scale == "htk":
        return 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)
    if scale == "slaney":
        lin = 200.0 * m / 3.0
        log = 1000.0 * torch.exp((m - 15.0) * (math.log(6.4) / 27.0))
        return torch.where(m >= 15.0, log, lin)
    raise ConfigError(f"mel_scale must be one of {MEL_SCALES}, got {scale!r}")


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    mel_scale: str = "htk",
    norm: str | None = None,
) -> torch.Tensor:
    """Triangular mel filterbank, ``(n_mels, n_fft // 2 + 1)`` float32, rows = filters.

    Filter ``m`` rises linearly (in Hz) from corner ``m`` to ``m + 1`` and falls to ``m + 2``; the
    corners are ``n_mels + 2`` points equally spaced in mel between ``f_min`` and ``f_max``.
    """
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(hz_to_mel(f_min, mel_scale)), float(hz_to_mel(f_max, mel_scale)), n_mels + 2,
        dtype=torch.float64,
    )
    corners = mel_to_hz(mels, mel_scale)  # (n_mels + 2,)
    corners[0], corners[-1] = float(f_min), f_max  # exact ends (the mel round trip is not)
    lo, mid, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    fb = torch.clamp(torch.minimum(rising, falling), min=0.0)
    if norm == "slaney":
        fb = fb * (2.0 / (hi - lo))
    elif norm is not None:
        raise ConfigError(f"norm must be one of {MEL_NORMS}, got {norm!r}")
    return fb.to(torch.float32)


def num_frames(n_samples: int, hop_length: int) -> int:
    """Frames produced by ``torch.stft(center=True)``: ``1 + n_samples // hop_length``."""
    return 1 + n_samples // hop_length


def subtract_noise_floor(spec: torch.Tensor, quantile: float) -> torch.Tensor:
    """Remove each clip's stationary background from a log spectrogram.

    ``(B, n_bins, S) -> (B, n_bins, S)``: ``y[b, f, s] = x[b, f, s] - Q_q({x[b, f, s']}_{s'})``,
    the per-clip, per-bin ``quantile`` over time (e.g. 0.2: the noise floor under sparse sound
    events). On a log scale this divides each bin's energy by its floor, so steady noise of any
    colour and level maps to about 0 and only what rises above it (the events) remains.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1]; got {quantile}")
    return spec - torch.quantile(spec, quantile, dim=-1, keepdim=True)


def resize_time(spec: torch.Tensor, steps: int, mode: str = "nearest") -> torch.Tensor:
    """Resample the last (time) axis of ``(B, F, S)`` (or ``(F, S)``) to ``steps`` frames.

    ``mode``: ``"nearest"`` (``F.interpolate`` default, as the GLCM release), ``"nearest-exact"``,
    ``"linear"`` (``align_corners=False``) or ``"area"``. Returns ``(B, F, steps)``.
    """
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}")
    if spec.dim() not in (2, 3):
        raise ValueError(f"resize_time expects (B, F, S) or (F, S), got shape {tuple(spec.shape)}")
    squeeze = spec.dim() == 2
    x = spec.unsqueeze(0) if squeeze else spec
    kwargs: dict[str, Any] = {"align_corners": False} if mode == "linear" else {}
    out = F.interpolate(x, size=steps, mode=mode, **kwargs)
    return out.squeeze(0) if squeeze else out


class LogMel(nn.Module):
    """Waveform -> log-mel (or log linear) spectrogram, ``(B, [C,] N) -> (B, n_bins, S)``.

    Args:
        sample_rate: Hz.
        n_fft: FFT size (``n_fft // 2 + 1`` frequency bins).
        win_length: Hann window length (<= ``n_fft``).
        hop_length: hop in samples; ``S = 1 + N // hop_length``.
        n_mels: mel bands, or ``None`` for the linear power spectrogram.
        f_min, f_max: filterbank range in Hz (``f_max=None`` -> ``sample_rate / 2``).
        log: ``"ln"`` -> ``ln(x + eps)``; ``"db"`` -> ``10 log10(max(x, eps))``.
        eps: log offset / floor.
        top_db: for ``"db"`` only: clip each example at ``its max - top_db``.
        mel_scale: ``"htk"`` or ``"slaney"``.
        norm: ``None`` (triangle peak 1) or ``"slaney"`` (unit-area triangles).
        norm_stats: optional per-bin ``(mean, std)`` (each ``n_bins`` long), applied last.

    Buffers: ``window`` ``(win_length,)``, ``fb`` ``(n_mels, n_fft // 2 + 1)`` (if mel),
    ``mean`` / ``std`` ``(n_bins, 1)`` (if ``norm_stats``).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        n_mels: int | None = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: str = "ln",
        eps: float = 1e-6,
        top_db: float | None = None,
        mel_scale: str = "htk",
        norm: str | None = None,
        norm_stats: tuple[Sequence[float] | torch.Tensor, Sequence[float] | torch.Tensor]
        | None = None,
    ) -> None:
        super().__init__()
        self._validate(
            sample_rate, n_fft, win_length, hop_length, n_mels, f_min, f_max, log, eps, top_db,
            mel_scale, norm,
        )
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length)
        self.hop_length = int(hop_length)
        self.n_mels = n_mels
        self.f_min = float(f_min)
        self.f_max = sample_rate / 2.0 if f_max is None else float(f_max)
        self.log = log
        self.eps = float(eps)
        self.top_db = top_db
        self.mel_scale = mel_scale
        self.norm = norm
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        fb = None
        if n_mels is not None:
            fb = mel_filterbank(
                self.sample_rate, self.n_fft, n_mels, self.f_min, self.f_max, mel_scale, norm
            )
        self.fb: torch.Tensor | None
        self.register_buffer("fb", fb, persistent=False)
        self.n_bins = n_mels if n_mels is not None else self.n_fft // 2 + 1
        self.mean: torch.Tensor | None
        self.std: torch.Tensor | None
        mean = std = None
        if norm_stats is not None:
            mean = torch.as_tensor(norm_stats[0], dtype=torch.float32).reshape(-1, 1)
            std = torch.as_tensor(norm_stats[1], dtype=torch.float32).reshape(-1, 1)
            if mean.shape[0] != self.n_bins or std.shape[0] != self.n_bins:
                raise ConfigError(
                    f"norm_stats must be (mean, std) with {self.n_bins} entries each, "
                    f"got {mean.shape[0]} and {std.shape[0]}"
                )
            if bool((std <= 0).any()):
                raise ConfigError("norm_stats std entries must be > 0")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    @staticmethod
    def _validate(
        sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int | None,
        f_min: float, f_max: float | None, log: str, eps: float, top_db: float | None,
        mel_scale: str, norm: str | None,
    ) -> None:
        for name, v in (("sample_rate", sample_rate), ("n_fft", n_fft),
                        ("win_length", win_length), ("hop_length", hop_length)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive int, got {v!r}")
        if win_length > n_fft:
            raise ConfigError(f"win_length must be <= n_fft ({n_fft}), got {win_length}")
        if n_mels is not None and (not isinstance(n_mels, int) or n_mels < 1):
            raise ConfigError(f"n_mels must be a positive int or None, got {n_mels!r}")
        nyq = sample_rate / 2.0
        hi = nyq if f_max is None else f_max
        if not (0.0 <= f_min < hi <= nyq):
            raise ConfigError(
                f"need 0 <= f_min < f_max <= sample_rate / 2 ({nyq}), got f_min={f_min}, f_max={f_max}"
            )
        if log not in LOG_MODES:
            raise ConfigError(f"log must be one of {LOG_MODES}, got {log!r}")
        if not eps > 0:
            raise ConfigError(f"eps must be > 0, got {eps!r}")
        if top_db is not None and not top_db > 0:
            raise ConfigError(f"top_db must be > 0 or None, got {top_db!r}")
        if mel_scale not in MEL_SCALES:
            raise ConfigError(f"mel_scale must be one of {MEL_SCALES}, got {mel_scale!r}")
        if norm not in MEL_NORMS:
            raise ConfigError(f"norm must be one of {MEL_NORMS}, got {norm!r}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "LogMel":
        """Build from :data:`LOGMEL_PRESETS` ``[name]`` with keyword overrides."""
        if name not in LOGMEL_PRESETS:
            raise ConfigError(f"LogMel preset must be one of {sorted(LOGMEL_PRESETS)}, got {name!r}")
        return cls(**{**LOGMEL_PRESETS[name], **overrides})

    def num_frames(self, n_samples: int) -> int:
        """``1 + n_samples // hop_length``."""
        return num_frames(n_samples, self.hop_length)

    def power_spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` float32 -> ``(B, n_fft // 2 + 1, S)`` power ``|STFT|^2``."""
        pad_mode = "reflect" if wave.shape[-1] > self.n_fft // 2 else "constant"
        spec = torch.stft(
            wave, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=self.window.to(wave.device, torch.float32), center=True, pad_mode=pad_mode,
            return_complex=True,
        )
        return spec.real.square() + spec.imag.square()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` or ``(B, C, N)`` -> ``(B, n_bins, 1 + N // hop_length)`` float32."""
        if wave.dim() == 3:
            wave = wave.mean(dim=1)
        elif wave.dim() != 2:
            raise ValueError(f"LogMel expects (B, N) or (B, C, N), got shape {tuple(wave.shape)}")
        with torch.autocast(device_type=wave.device.type, enabled=False):
            x = self.power_spectrogram(wave.float())
            if self.fb is not None:
                x = torch.matmul(self.fb, x)  # (n_mels, F) @ (B, F, S) -> (B, n_mels, S)
            if self.log == "ln":
                x = torch.log(x + self.eps)
            else:
                x = 10.0 * torch.log10(torch.clamp(x, min=self.eps))
                if self.top_db is not None:
                    peak = x.amax(dim=(1, 2), keepdim=True)
                    x = torch.maximum(x, peak - self.top_db)
            if self.mean is not None and self.std is not None:
                x = (x - self.mean) / self.std
        return x

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, win_length={self.win_length}, "
            f"hop_length={self.hop_length}, n_mels={self.n_mels}, f_min={self.f_min}, "
            f"f_max={self.f_max}, log={self.log!r}, eps={self.eps}, top_db={self.top_db}, "
            f"mel_scale={self.mel_scale!r}, norm={self.norm!r}"
        )
