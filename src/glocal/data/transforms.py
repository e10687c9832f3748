"""Temporally consistent video transforms that return their parameters.

Input clips are uint8 ``(T, H, W, 3)`` tensors; outputs float ``(3, T, S, S)`` normalised with
ImageNet statistics. Randomness comes from a ``numpy.random.Generator`` passed in by the
dataset (seeded by ``(seed, epoch, index)``), so a sample is reproducible and resumable. The
sampled geometry is returned so that aligned views (GLCM slow/fast, CtrlAug global/local) can be
mapped onto each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CropParams", "ClipTransform", "IMAGENET_MEAN", "IMAGENET_STD", "normalize_clip"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CropParams:
    """A crop in normalised source coordinates ``[0, 1]`` plus a horizontal flip flag."""

    x0: float
    y0: float
    x1: float
    y1: float
    flip: bool = False


def sample_resized_crop(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """RandomResizedCrop box ``(top, left, h, w)`` in pixels (falls back to a centre crop)."""
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_r))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def normalize_clip(x: torch.Tensor) -> torch.Tensor:
    """Normalise float ``(3, T, H, W)`` in [0, 1] with ImageNet mean/std: ``(x - mean) / std``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(3, 1, 1, 1)
    return (x - mean) / std


def _adjust_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    gray = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
    return (gray + factor * (x - gray)).clamp(0, 1)


def _rotate_hue(x: torch.Tensor, shift: float) -> torch.Tensor:
    """Hue rotation by ``shift`` turns (in [-0.5, 0.5]) as a rotation in YIQ space."""
    m_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=x.dtype)
    m_rgb = torch.linalg.inv(m_yiq)
    c, s = math.cos(2 * math.pi * shift), math.sin(2 * math.pi * shift)
    rot = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=x.dtype)
    mat = m_rgb @ rot @ m_yiq
    return torch.einsum("ij,jthw->ithw", mat, x).clamp(0, 1)


@dataclass
class ClipTransform:
    """Random resized crop + flip + colour jitter + grayscale, identical for every frame.

    With ``train=False`` it is a deterministic centre crop of the largest square (``scale`` ignored).
    """

    size: int = 112
    scale: tuple[float, float] = (0.2, 1.0)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    train: bool = True

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[CropParams, dict]:
        """Draw crop geometry and photometric parameters for one clip."""
        if self.train:
            top, left, h, w = sample_resized_crop(rng, height, width, self.scale)
            flip = bool(rng.random() < self.flip_p)
        else:
            side = min(height, width)
            top, left, h, w = (height - side) // 2, (width - side) // 2, side, side
            flip = False
        crop = CropParams(left / width, top / height, (left + w) / width, (top + h) / height, flip)
        photo: dict = {}
        if self.train and rng.random() < self.jitter_p:
            b, c, s, hue = self.jitter
            photo = {
                "brightness": float(rng.uniform(1 - b, 1 + b)),
                "contrast": float(rng.uniform(1 - c, 1 + c)),
                "saturation": float(rng.uniform(1 - s, 1 + s)),
                "hue": float(rng.uniform(-hue, hue)),
                "order": rng.permutation(4).tolist(),
            }
        photo["grayscale"] = bool(self.train and rng.random() < self.grayscale_p)
        return crop, photo

    def apply(self, frames: torch.Tensor, crop: CropParams, photo: dict) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` → normalised float ``(3, T, size, size)``."""
        t, h, w, _ = frames.shape
        top, left = int(round(crop.y0 * h)), int(round(crop.x0 * w))
        bottom, right = max(top + 1, int(round(crop.y1 * h))), max(left + 1, int(round(crop.x1 * w)))
        x = frames[:, top:bottom, left:right].permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, h, w)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        if crop.flip:
            x = x.flip(-1)
        x = x.permute(1, 0, 2, 3).contiguous()  # (3, T, S, S)
        if "order" in photo:
            for op in photo["order"]:
                if op == 0:
                    x = (x * photo["brightness"]).clamp(0, 1)
                elif op == 1:
                    mean = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
                    x = (mean + photo["contrast"] * (x - mean)).clamp(0, 1)
                elif op == 2:
                    x = _adjust_saturation(x, photo["saturation"])
                elif abs(photo["hue"]) > 1e-6:
                    x = _rotate_hue(x, photo["hue"])
        if photo.get("grayscale"):
            gray = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
            x = gray.unsqueeze(0).expand(3, -1, -1, -1).contiguous()
        return normalize_clip(x)

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, CropParams]:
        crop, photo = self.sample(rng, int(frames.shape[1]), int(frames.shape[2]))
        return self.apply(frames, crop, photo), crop
