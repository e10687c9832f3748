"""Pooling a backbone map over its positions into one vector per clip (or per frame).

``mean`` is the ResNet's global average; ``max`` each channel's largest activation, which keeps
an object that covers a few positions instead of averaging it into the background; ``meanmax``
their sum (the global pooling of PANNs, Kong et al. 2020); ``motion`` a weighted mean whose
weights are the clip's motion energy at each position (:func:`motion_weights`), so that what
moves (the animals, the players) makes the feature and a still or slowly panning background
does not. The motion map is the one of motion-focused contrastive learning (MCL, Li et al., ICCV
2021), which uses it to choose crops and to guide where the network looks; here it weights the
pooling.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SpatialPool", "SPATIAL_POOLS", "motion_weights", "pool_positions", "pool_with_weights"]

SpatialPool = Literal["mean", "max", "meanmax", "motion"]
SPATIAL_POOLS: tuple[str, ...] = get_args(SpatialPool)


def motion_weights(video: Tensor, size: tuple[int, int, int], per_frame: bool = False) -> Tensor:
    """Each position's share of the clip's motion energy, at a map's resolution.

    ``E[t, y, x] = sum_c |v[c, t+1, y, x] - v[c, t, y, x]|`` (the last frame repeats the last
    difference), averaged into the ``size = (T', h, w)`` cells of the map, then
    ``M = max(0, E - median(E))`` (the median over the clip's cells, or over each frame's with
    ``per_frame``, so that a uniform level of change, noise or a panning texture, is not motion;
    a cell above it by less than ``1e-5`` of the largest cell counts as 0, rounding noise) and
    ``W = M / sum(M)``. A clip (frame) without motion above its median gets uniform weights,
    i.e. the mean. No gradient flows through the weights.

    Args:
        video: the clip the backbone saw, ``(B, 3, T, H, W)`` (``T >= 2``; any normalisation).
        size: the map's ``(T', h, w)``.
        per_frame: weights summing to 1 over ``(h, w)`` in every one of the ``T'`` steps
            (frame-wise backbones) instead of over the whole map.

    Returns:
        ``(B, T', h, w)`` float32 weights: each clip's (each step's) sum to 1.
    """
    if video.ndim != 5 or video.shape[2] < 2:
        raise ValueError(f"motion weights need a clip (B, 3, T >= 2, H, W), got {tuple(video.shape)}")
    with torch.no_grad():
        v = video.float()
        energy = (v[:, :, 1:] - v[:, :, :-1]).abs().sum(dim=1)  # (B, T-1, H, W)
        energy = torch.cat([energy, energy[:, -1:]], dim=1)  # (B, T, H, W)
        cells = F.adaptive_avg_pool3d(energy.unsqueeze(1), size).squeeze(1)  # (B, T', h, w)
        groups = cells.flatten(2) if per_frame else cells.flatten(1).unsqueeze(1)  # (B, G, n)
        above = groups - groups.median(dim=2, keepdim=True).values
        # rounding noise of a uniform change (1e-5 of the largest cell) is not motion either
        above = torch.where(above > 1e-5 * groups.amax(dim=2, keepdim=True), above, torch.zeros_like(above))
        total = above.sum(dim=2, keepdim=True)
        uniform = torch.full_like(above, 1.0 / above.shape[2])
        weights = torch.where(total > 0, above / total.clamp_min(torch.finfo(above.dtype).tiny), uniform)
        return weights.reshape(cells.shape)


def pool_with_weights(fmap: Tensor, weights: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``sum_p W[p] f[:, c, p]`` over the axes ``dims`` of ``fmap`` (``weights`` broadcast over the
    channel axis 1: ``(B, T', h, w)`` for a ``(B, C, T', h, w)`` map)."""
    return (fmap * weights.unsqueeze(1).to(fmap.dtype)).sum(dim=dims)


def pool_positions(fmap: Tensor, pool: SpatialPool, dims: tuple[int, ...], video: Tensor | None = None) -> Tensor:
    """Each channel of ``fmap`` pooled over the axes ``dims``: their mean, their max,
    ``meanmax`` = mean + max, or ``motion`` = the mean weighted by :func:`motion_weights` of
    ``video`` (the clip the map was computed from; ``dims == (3, 4)`` pools each step apart).
    E.g. ``(B, C, T', H', W')`` over ``(2, 3, 4)`` -> ``(B, C)``."""
    if pool == "mean":
        return fmap.mean(dim=dims)
    if pool == "max":
        return fmap.amax(dim=dims)
    if pool == "meanmax":
        return fmap.mean(dim=dims) + fmap.amax(dim=dims)
    if pool == "motion":
        if video is None:
            raise ValueError("pool='motion' needs the clip the map was computed from")
        per_frame = tuple(dims) == (3, 4)
        return pool_with_weights(fmap, motion_weights(video, tuple(fmap.shape[2:]), per_frame), dims)
    raise ValueError(f"pool must be one of {SPATIAL_POOLS}, got {pool!r}")
