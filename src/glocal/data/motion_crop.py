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
``M``; its area and aspect ratio are drawn as a RandomResizedCrop's, and the box is shifted to lie
inside the frame. A clip without motion (a still, one frame, or uniform change) gives ``None``:
the caller falls back to an ordinary random crop.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["motion_map", "sample_motion_crop"]

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


def sample_motion_crop(
    rng: np.random.Generator,
    motion: np.ndarray,
    stride: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int] | None:
    """A crop box ``(top, left, h, w)`` in frame pixels centred (as far as the frame allows) on a
    pixel drawn with probability proportional to ``motion``; ``None`` when the map is all zero.

    Area (a ``scale`` fraction of the frame) and aspect ratio (log-uniform in ``ratio``) as in
    RandomResizedCrop; after ``attempts`` draws that do not fit, the largest centred square side.
    """
    total = float(motion.sum())
    if not math.isfinite(total) or total <= 0:
        return None
    flat = int(rng.choice(motion.size, p=(motion / total).ravel()))
    cy = min(height - 1, (flat // motion.shape[1]) * stride + stride // 2)
    cx = min(width - 1, (flat % motion.shape[1]) * stride + stride // 2)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    h = w = min(height, width)
    for _ in range(attempts):
        target = height * width * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_r))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= width and 0 < ch <= height:
            h, w = ch, cw
            break
    top = min(max(cy - h // 2, 0), height - h)
    left = min(max(cx - w // 2, 0), width - w)
    return top, left, h, w
