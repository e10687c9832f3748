"""Motion-focused cropping: centre a training crop on a pixel that moves.

On footage where the objects are small and each video has its own background, two random
resized crops of one video share mostly background, so a contrastive positive pair can be
matched by the background alone (the shortcut documented in docs/methods_results.md,
"Video-only methods"). Centring both crops on moving pixels (after Li et al., "Motion-focused
Contrastive Learning of Video Representations", ICCV 2021, who sample crops where the motion map
is high) makes the moving object the content the two views share, while the background around
it changes as the object moves.

The motion map of a clip ``x`` (uint8 ``(T, H, W, 3)``) is the mean absolute frame difference

    M(y, x) = max(0, mean_t sum_c |x[t+1, y, x, c] - x[t, y, x, c]| - median(M))

The median is subtracted so that a uniform level of change (sensor noise, a panning camera's
texture) does not count as motion. A crop's centre is drawn with probability proportional to
``M`` (:func:`sample_motion_centre`); :func:`glocal.data.transforms.sample_motion_crop` draws its
area and aspect ratio as a RandomResizedCrop's and shifts the box to lie inside the frame. A clip
without motion (a still, one frame, or uniform change) has no centre: the caller falls back to an
ordinary random crop.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["motion_map", "sample_motion_centre"]

#: the motion map is computed on a grid of at most this many pixels per side (strided rows/columns)
_MAP_SIDE = 64


def motion_map(frames: torch.Tensor) -> tuple[np.ndarray, int]:
    """``(T, H, W, 3)`` frames (uint8, or float on any scale) -> (float64 ``(h, w)``
    median-subtracted motion map, stride).

    The map is computed on every ``stride``-th row and column (``stride`` keeps its sides at most
    about 64); pixel ``(i, j)`` of the map stands for frame pixel ``(i * stride, j * stride)``.
    """
    t, h, w, _ = frames.shape
    stride = max(1, min(h, w) // _MAP_SIDE)
    if t < 2:
        return np.zeros(((h + stride - 1) // stride, (w + stride - 1) // stride)), stride
    x = frames[:, ::stride, ::stride].to(torch.float64)
    change = (x[1:] - x[:-1]).abs().sum(dim=-1).mean(dim=0)
    m = change.numpy()
    return np.maximum(m - np.median(m), 0.0), stride


def sample_motion_centre(
    rng: np.random.Generator, motion: np.ndarray, stride: int, height: int, width: int
) -> tuple[int, int] | None:
    """A frame pixel ``(y, x)`` drawn with probability proportional to ``motion`` (a map of
    :func:`motion_map` with its ``stride``); None when the map is all zero."""
    total = float(motion.sum())
    if not math.isfinite(total) or total <= 0:
        return None
    flat = int(rng.choice(motion.size, p=(motion / total).ravel()))
    cy = min(height - 1, (flat // motion.shape[1]) * stride + stride // 2)
    cx = min(width - 1, (flat % motion.shape[1]) * stride + stride // 2)
    return cy, cx
