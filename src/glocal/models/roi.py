"""RoIAlign-3D with one output bin: the mean of a dense video map over normalised 3-D boxes.

Used by CtrlAug (methods.md 3.4, 7.5) to read the global video's feature map over the exact
region of each local clip. Boxes are ``(t0, t1, x0, y0, x1, y1)`` normalised to ``[0, 1]`` over
the map's ``(T, W, H)`` extent, with the ``align_corners=False`` convention: cell ``k`` of ``T``
covers ``[k / T, (k + 1) / T)`` and its centre is at ``(k + 0.5) / T``. Each box is sampled at a
regular ``s_t x s_h x s_w`` grid of bin centres (point ``i`` of ``s`` at ``lo + (i + 0.5) (hi -
lo) / s``) by trilinear interpolation (edge values repeat outside the cell centres, as RoIAlign
clamps), and the samples are averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["roi_align_3d"]


def _axis_points(lo: Tensor, hi: Tensor, s: int) -> Tensor:
    """``(..., s)`` normalised sample positions ``lo + (i + 0.5) (hi - lo) / s``."""
    frac = (torch.arange(s, device=lo.device, dtype=lo.dtype) + 0.5) / s
    return lo[..., None] + (hi - lo)[..., None] * frac


def roi_align_3d(fmap: Tensor, boxes: Tensor, samples: int | tuple[int, int, int] = 2) -> Tensor:
    """Average ``fmap`` over each box.

    Args:
        fmap: ``(B, C, T, H, W)`` dense map.
        boxes: ``(B, N, 6)`` boxes ``(t0, t1, x0, y0, x1, y1)`` in normalised map coordinates.
        samples: sample points per box along ``(t, y, x)`` (one int for all three).

    Returns:
        ``(B, N, C)``: ``out[b, n] = mean_{i,j,k} fmap[b](t_i, y_j, x_k)`` (trilinear).
    """
    if fmap.dim() != 5:
        raise ValueError(f"fmap must be (B, C, T, H, W); got {tuple(fmap.shape)}")
    if boxes.dim() != 3 or boxes.shape[0] != fmap.shape[0] or boxes.shape[2] != 6:
        raise ValueError(f"boxes must be (B={fmap.shape[0]}, N, 6); got {tuple(boxes.shape)}")
    st, sh, sw = (samples, samples, samples) if isinstance(samples, int) else samples
    if min(st, sh, sw) < 1:
        raise ValueError(f"samples must be >= 1; got {samples}")
    b, n = boxes.shape[:2]
    boxes = boxes.to(fmap.dtype)
    t = _axis_points(boxes[..., 0], boxes[..., 1], st)  # (B, N, st)
    x = _axis_points(boxes[..., 2], boxes[..., 4], sw)  # (B, N, sw)
    y = _axis_points(boxes[..., 3], boxes[..., 5], sh)  # (B, N, sh)
    # grid[b, n*st + i, j, k] = (x_k, y_j, t_i) mapped from [0, 1] to grid_sample's [-1, 1]
    grid = torch.stack(torch.broadcast_tensors(
        x[:, :, None, None, :], y[:, :, None, :, None], t[:, :, :, None, None]), dim=-1)  # (B, N, st, sh, sw, 3)
    grid = grid.reshape(b, n * st, sh, sw, 3) * 2 - 1
    # (B, C, N·st, sh, sw) trilinear samples
    out = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(b, fmap.shape[1], n, st * sh * sw).mean(dim=3).transpose(1, 2)
