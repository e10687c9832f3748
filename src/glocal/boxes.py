"""Normalised spatio-temporal boxes ``(t0, t1, x0, y0, x1, y1)`` in ``[0, 1]^3``: the geometry
the samplers draw (CtrlAug's local clips in global-view coordinates) and the objectives score
(region targets over the global map's cells). Torch, broadcasting over leading dimensions."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["grid_cell_boxes", "box_volume", "box_intersection", "box_iou"]


def grid_cell_boxes(
    t: int, h: int, w: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Boxes ``(t·h·w, 6)`` of a ``t x h x w`` grid of equal cells tiling ``[0, 1]^3``, in the
    order of ``fmap.flatten(2)`` for a ``(B, C, t, h, w)`` map: cell ``(i, j, k)`` is
    ``(i/t, (i+1)/t, k/w, j/h, (k+1)/w, (j+1)/h)``."""
    if min(t, h, w) < 1:
        raise ValueError(f"grid sizes must be >= 1; got {(t, h, w)}")
    i, j, k = torch.meshgrid(torch.arange(t, device=device), torch.arange(h, device=device),
                             torch.arange(w, device=device), indexing="ij")
    i, j, k = (v.reshape(-1).double() for v in (i, j, k))
    return torch.stack([i / t, (i + 1) / t, k / w, j / h, (k + 1) / w, (j + 1) / h], dim=1).to(dtype)


def box_volume(b: Tensor) -> Tensor:
    """``(..., 6)`` boxes -> ``(...)`` volumes ``(t1 - t0)(x1 - x0)(y1 - y0)``."""
    return (b[..., 1] - b[..., 0]).clamp(min=0) * (b[..., 4] - b[..., 2]).clamp(min=0) * (
        b[..., 5] - b[..., 3]).clamp(min=0)


def box_intersection(a: Tensor, b: Tensor) -> Tensor:
    """Intersection volume of broadcastable ``(..., 6)`` boxes -> ``(...)``:
    ``Π_axis max(0, min(hi_a, hi_b) - max(lo_a, lo_b))``."""
    lo = torch.maximum(a[..., [0, 2, 3]], b[..., [0, 2, 3]])
    hi = torch.minimum(a[..., [1, 4, 5]], b[..., [1, 4, 5]])
    return (hi - lo).clamp(min=0).prod(dim=-1)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of broadcastable ``(..., 6)`` boxes: ``vol(a ∩ b) / vol(a ∪ b)`` (0 for two empty boxes)."""
    inter = box_intersection(a, b)
    union = box_volume(a) + box_volume(b) - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))
