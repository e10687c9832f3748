"""Benign edits for robust video fingerprinting (AVTS protocol, spec 8.2).

Every edit maps a decoded source clip — uint8 frames ``(T_src, H, W, 3)`` and mono float32 audio
``(N_src,)`` (or None) — to an edited clip of ``num_frames`` frames ``(T, H, W, 3)`` (same size) and
``num_samples`` samples. The source spans ``EDITS[name].span`` times the clip (1.25 for the speed
change, 1 otherwise). Randomness comes only from ``numpy.random.default_rng(seed)``, so an edit is
deterministic for a seed.

* ``crop``: a random crop keeping ``crop_fraction`` (0.7) of each side, resized back to ``H x W``;
* ``blur``: Gaussian blur, sigma ``blur_sigma`` = 1.5 px (separable, reflect padding);
* ``reencode``: H.264 at CRF ``crf`` = 40 (the world is CRF 23) + AAC 64 kb/s through
  :func:`glocal.data.av_writer.write_mp4`, decoded back with :func:`glocal.data.io.read_clip`;
* ``noise``: additive Gaussian pixel noise (std 10 grey levels) and white audio noise at 10 dB SNR;
* ``speed``: played 1.25x faster — frames ``floor(k * 1.25)`` of the source and the audio resampled
  by linear interpolation (so its pitch rises too).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.av_writer import write_mp4
from ..data.io import read_clip

__all__ = ["Edit", "EDITS", "EditTransform", "apply_edit", "crop", "blur", "reencode", "add_noise", "speed"]

Audio = np.ndarray | None


def _fit_audio(audio: Audio, n: int) -> Audio:
    if audio is None:
        return None
    a = np.asarray(audio, dtype=np.float32)[:n]
    return np.pad(a, (0, n - a.shape[0])) if a.shape[0] < n else a


def crop(frames: np.ndarray, audio: Audio, rng: np.random.Generator, fraction: float = 0.7) -> tuple[np.ndarray, Audio]:
    """Random crop of ``fraction`` of each side (same for every frame), resized back to ``(H, W)``."""
    t, h, w, _ = frames.shape
    ch, cw = max(1, int(round(h * fraction))), max(1, int(round(w * fraction)))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    x = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + ch, left:left + cw])).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy(), audio


def blur(frames: np.ndarray, audio: Audio, sigma: float = 1.5) -> tuple[np.ndarray, Audio]:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (reflect padding)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[2] - 1), min(radius, x.shape[3] - 1)
    x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    kw, kh = k[radius - pad_w: radius + pad_w + 1], k[radius - pad_h: radius + pad_h + 1]
    kw = (kw / kw.sum()).view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    kh = (kh / kh.sum()).view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.conv2d(x, kw, groups=c), kh, groups=c)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy(), audio


#: sample rates the AAC encoder accepts
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


def reencode(frames: np.ndarray, audio: Audio, fps: float, sample_rate: int, crf: int = 40) -> tuple[np.ndarray, Audio]:
    """Encode to H.264 (CRF ``crf``) + AAC and decode back (odd sizes are edge-padded for yuv420p;
    audio at a rate AAC does not accept is encoded at the next accepted rate and resampled back)."""
    t, h, w, _ = frames.shape
    padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    rate = next((r for r in AAC_RATES if r >= sample_rate), AAC_RATES[-1])
    enc_audio = audio
    if audio is not None and rate != sample_rate:
        n = int(round(len(audio) * rate / sample_rate))
        enc_audio = np.interp(np.arange(n) * sample_rate / rate, np.arange(len(audio)), audio).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="glocal-edit-") as tmp:
        path = write_mp4(Path(tmp) / "clip.mp4", padded, fps, enc_audio, rate if audio is not None else None,
                         crf=crf, preset="superfast")
        clip = read_clip(path, 0.0, t, fps, sample_rate=sample_rate, read_audio=audio is not None)
    out_audio = None if audio is None or clip.audio is None else _fit_audio(clip.audio[0], len(audio))
    return np.ascontiguousarray(clip.frames[:, :h, :w]), out_audio


def add_noise(frames: np.ndarray, audio: Audio, rng: np.random.Generator, pixel_std: float = 10.0,
              snr_db: float = 10.0) -> tuple[np.ndarray, Audio]:
    """Gaussian pixel noise (std in grey levels) and white audio noise at ``snr_db`` dB SNR."""
    noisy = frames.astype(np.float32) + rng.normal(0.0, pixel_std, size=frames.shape).astype(np.float32)
    out = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    if audio is None:
        return out, None
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    std = math.sqrt(power / 10 ** (snr_db / 10)) if power > 0 else 0.0
    return out, (audio + rng.normal(0.0, std, size=audio.shape)).astype(np.float32)


def speed(frames: np.ndarray, audio: Audio, num_frames: int, num_samples: int, factor: float = 1.25
          ) -> tuple[np.ndarray, Audio]:
    """Play ``factor`` times faster: frame ``k`` ← source ``floor(k * factor)``; audio linearly resampled."""
    idx = np.minimum(np.floor(np.arange(num_frames) * factor).astype(np.int64), frames.shape[0] - 1)
    out_audio = None
    if audio is not None:
        pos = np.arange(num_samples) * factor
        out_audio = np.interp(pos, np.arange(audio.shape[0]), audio).astype(np.float32)
    return np.ascontiguousarray(frames[idx]), out_audio


@dataclass(frozen=True)
class Edit:
    """A named edit: ``span`` = source length / clip length it needs."""

    name: str
    span: float
    apply: Callable[..., tuple[np.ndarray, Audio]]


def _crop(fr: np.ndarray, au: Audio, *, rng: np.random.Generator, **_: object) -> tuple[np.ndarray, Audio]:
    return crop(fr, au, rng)


def _blur(fr: np.ndarray, au: Audio, **_: object) -> tuple[np.ndarray, Audio]:
    return blur(fr, au)


def _reencode(fr: np.ndarray, au: Audio, *, fps: float, sample_rate: int, **_: object) -> tuple[np.ndarray, Audio]:
    return reencode(fr, au, fps, sample_rate)


def _noise(fr: np.ndarray, au: Audio, *, rng: np.random.Generator, **_: object) -> tuple[np.ndarray, Audio]:
    return add_noise(fr, au, rng)


def _speed(fr: np.ndarray, au: Audio, *, num_frames: int, num_samples: int, **_: object) -> tuple[np.ndarray, Audio]:
    return speed(fr, au, num_frames, num_samples)


EDITS: dict[str, Edit] = {
    "crop": Edit("crop", 1.0, _crop),
    "blur": Edit("blur", 1.0, _blur),
    "reencode": Edit("reencode", 1.0, _reencode),
    "noise": Edit("noise", 1.0, _noise),
    "speed": Edit("speed", 1.25, _speed),
}


def apply_edit(name: str, frames: np.ndarray, audio: Audio, *, num_frames: int, num_samples: int, fps: float,
               sample_rate: int, seed: int | tuple[int, ...] = 0) -> tuple[np.ndarray, Audio]:
    """Apply edit ``name`` to a source clip; returns ``(num_frames, H, W, 3)`` uint8 and ``(num_samples,)``.

    Args:
        frames: uint8 ``(T_src, H, W, 3)`` with ``T_src >= ceil(num_frames * span)``.
        audio: float32 ``(N_src,)`` or None.
        seed: seed (or seed sequence) of the edit's random draws.
    """
    edit = EditTransform(name, num_frames, num_samples, fps, sample_rate)
    return edit(frames, audio, np.random.default_rng(seed))


@dataclass(frozen=True)
class EditTransform:
    """Edit ``name`` as a dataset audio-visual transform (``MultiViewDataset(av_transforms=...)``):
    ``(uint8 (T_src, H, W, 3), float32 (N_src,) or None, rng)`` -> ``(uint8 (num_frames, H, W, 3),
    float32 (num_samples,) or None)``, ``T_src >= ceil(num_frames * span)``."""

    name: str
    num_frames: int
    num_samples: int
    fps: float
    sample_rate: int

    def __post_init__(self) -> None:
        if self.name not in EDITS:
            raise ValueError(f"unknown edit {self.name!r}; known: {sorted(EDITS)}")

    def __call__(self, frames: np.ndarray, audio: Audio, rng: np.random.Generator) -> tuple[np.ndarray, Audio]:
        src_audio = None if audio is None else np.asarray(audio, dtype=np.float32)
        if EDITS[self.name].span == 1.0:
            frames, src_audio = frames[: self.num_frames], _fit_audio(src_audio, self.num_samples)
        out, out_audio = EDITS[self.name].apply(frames, src_audio, rng=rng, fps=self.fps, sample_rate=self.sample_rate,
                                                num_frames=self.num_frames, num_samples=self.num_samples)
        return out, _fit_audio(out_audio, self.num_samples)
