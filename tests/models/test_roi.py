"""RoIAlign-3D (one output bin) against an explicit trilinear-interpolation loop."""

from __future__ import annotations

import math

import pytest
import torch

from glocal.models.roi import roi_align_3d


def _trilinear(vol: torch.Tensor, t: float, y: float, x: float) -> torch.Tensor:
    """``vol`` ``(C, T, H, W)`` at normalised ``(t, y, x)``, cell centres at ``(k + 0.5) / size``,
    coordinates clamped to the first / last centre (border padding)."""
    out = torch.zeros(vol.shape[0], dtype=vol.dtype)
    corners = []
    for p, size in ((t, vol.shape[1]), (y, vol.shape[2]), (x, vol.shape[3])):
        u = min(max(p * size - 0.5, 0.0), size - 1.0)
        lo = int(math.floor(u))
        hi = min(lo + 1, size - 1)
        corners.append(((lo, 1.0 - (u - lo)), (hi, u - lo)))
    for ti, wt in corners[0]:
        for yi, wy in corners[1]:
            for xi, wx in corners[2]:
                out += wt * wy * wx * vol[:, ti, yi, xi]
    return out


@pytest.mark.parametrize("samples", [1, 2, (3, 2, 1)])
def test_roi_align_matches_loop(samples: int | tuple[int, int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(2, 3, 4, 5, 6, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[[0.1, 0.6, 0.2, 0.0, 0.9, 0.5], [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]],
                          [[0.5, 0.7, 0.3, 0.4, 0.35, 0.95], [0.9, 1.0, 0.0, 0.8, 0.1, 1.0]]], dtype=torch.float64)
    st, sh, sw = (samples,) * 3 if isinstance(samples, int) else samples
    got = roi_align_3d(fmap, boxes, samples)
    assert got.shape == (2, 2, 3)
    for b in range(2):
        for n in range(2):
            t0, t1, x0, y0, x1, y1 = boxes[b, n].tolist()
            pts = [_trilinear(fmap[b], t0 + (i + 0.5) * (t1 - t0) / st, y0 + (j + 0.5) * (y1 - y0) / sh,
                              x0 + (k + 0.5) * (x1 - x0) / sw)
                   for i in range(st) for j in range(sh) for k in range(sw)]
            assert torch.allclose(got[b, n], torch.stack(pts).mean(dim=0), atol=1e-10)


def test_roi_align_constant_map_and_bad_shapes() -> None:
    fmap = torch.full((1, 2, 3, 4, 4), 1.5)
    box = torch.tensor([[[0.2, 0.4, 0.1, 0.1, 0.3, 0.9]]])
    assert torch.allclose(roi_align_3d(fmap, box), torch.full((1, 1, 2), 1.5))
    with pytest.raises(ValueError):
        roi_align_3d(fmap[0], torch.zeros(1, 1, 6))
    with pytest.raises(ValueError):
        roi_align_3d(fmap, torch.zeros(1, 1, 4))
