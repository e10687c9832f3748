"""Controllable local-clip placement (CtrlAug, methods.md 3.2 step 4): draw the *target overlap
first*, then derive the coordinates.

Boxes are ``(t0, t1, x0, y0, x1, y1)`` in normalised global-view coordinates ``[0, 1]^3``. For a
local clip whose size ``(dt, dx, dy)`` is already drawn, :func:`place_at_iou` picks a reference
cell of a ``(T, H, W)`` grid over the global view and a target IoU ``u``, and slides the box from
the cell's centre towards a far corner of the cube until its 3-D IoU with the cell is ``u``
(bisection; the box stays inside the unit cube). A target above the best IoU the size allows
(a box much smaller or larger than a cell) gives the centred, best-overlapping box.
A range of targets that moves with the epochs is a curriculum (``GlobalLocalSampler.at_epoch``).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["box_iou_3d", "grid_cell_box", "place_at_iou"]


def box_iou_3d(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(t0, t1, x0, y0, x1, y1)`` boxes: ``vol(a ∩ b) / vol(a ∪ b)``."""
    lo = np.maximum(a[[0, 2, 3]], b[[0, 2, 3]])
    hi = np.minimum(a[[1, 4, 5]], b[[1, 4, 5]])
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    vol_a = float((a[1] - a[0]) * (a[4] - a[2]) * (a[5] - a[3]))
    vol_b = float((b[1] - b[0]) * (b[4] - b[2]) * (b[5] - b[3]))
    union = vol_a + vol_b - inter
    return inter / union if union > 0 else 0.0


def grid_cell_box(index: int, grid: tuple[int, int, int]) -> np.ndarray:
    """Box of cell ``index`` (row-major over ``(T, H, W)``) of a regular grid on ``[0, 1]^3``."""
    gt, gh, gw = grid
    it, rest = divmod(int(index), gh * gw)
    iy, ix = divmod(rest, gw)
    return np.array([it / gt, (it + 1) / gt, ix / gw, iy / gh, (ix + 1) / gw, (iy + 1) / gh])


def _box(start: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The box with corner ``start`` ``(t, x, y)`` and extent ``size`` ``(dt, dx, dy)``."""
    end = start + size
    return np.array([start[0], end[0], start[1], start[2], end[1], end[2]])


def place_at_iou(
    rng: np.random.Generator,
    size: tuple[float, float, float],
    grid: tuple[int, int, int],
    iou_range: tuple[float, float],
    iters: int = 40,
) -> tuple[np.ndarray, int, float]:
    """Place a box of ``size`` ``(dt, dx, dy)`` (each in ``(0, 1]``) so that its IoU with a random
    cell of ``grid`` is a target drawn from ``U(iou_range)`` -> ``(box, cell index, achieved IoU)``.

    The box's corner moves on the segment from the position centred on the cell (clamped into
    the cube) to a corner of the feasible positions whose IoU is at most the target (a random
    one; the least-overlapping corner when none is); bisection on that segment finds the
    target. Draws, in order: the cell, the target, the far corner.
    """
    size_a = np.asarray(size, dtype=np.float64)
    index = int(rng.integers(0, int(np.prod(grid))))
    cell = grid_cell_box(index, grid)
    target = float(rng.uniform(*iou_range))
    room = 1.0 - size_a  # feasible corners: [0, room] per axis
    centre = np.array([(cell[0] + cell[1]) / 2, (cell[2] + cell[4]) / 2, (cell[3] + cell[5]) / 2])
    near = np.clip(centre - size_a / 2, 0.0, room)
    corners = [np.where(np.array(bits, dtype=bool), room, 0.0) for bits in itertools.product((0, 1), repeat=3)]
    corner_iou = [box_iou_3d(_box(c, size_a), cell) for c in corners]
    low = [c for c, u in zip(corners, corner_iou) if u <= target] or [corners[int(np.argmin(corner_iou))]]
    far = low[int(rng.integers(0, len(low)))]

    def iou_at(f: float) -> float:
        return box_iou_3d(_box(near + f * (far - near), size_a), cell)

    lo, hi = 0.0, 1.0
    if iou_at(lo) <= target:
        f = lo  # the target is above the best overlap this size allows
    elif iou_at(hi) >= target:
        f = hi  # ... or below the least
    else:  # iou(lo) > target >= iou(hi): a crossing lies between (the IoU is continuous)
        for _ in range(iters):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if iou_at(mid) > target else (lo, mid)
        f = hi
    box = _box(near + f * (far - near), size_a)
    return box, index, box_iou_3d(box, cell)
