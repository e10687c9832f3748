"""Controllable local-clip placement (CtrlAug, methods.md 3.2 step 4): draw the *target overlap
first*, then derive the coordinates.

Boxes are ``(t0, t1, x0, y0, x1, y1)`` in normalised global-view coordinates ``[0, 1]^3``
(:mod:`glocal.boxes`). For a local clip whose size ``(dt, dx, dy)`` is already drawn,
:func:`place_at_iou` picks a reference cell of a ``(T, H, W)`` grid over the global view and a
target IoU ``u``, and slides the box from the cell's centre towards a far corner of the cube
until its 3-D IoU with the cell is ``u`` (the box stays inside the unit cube). A target above
the best IoU the size allows (a box much smaller or larger than a cell) gives the centred,
best-overlapping box. A range of targets that moves with the epochs is a curriculum
(``GlobalLocalSampler.at_epoch``).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from ..boxes import box_iou, grid_cell_boxes

__all__ = ["place_at_iou"]

#: The 8 corners of the unit cube, ``(8, 3)`` in ``(t, x, y)``.
_CORNERS = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)), dtype=torch.float64)


def _boxes(starts: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Boxes ``(K, 6)`` with corners ``starts`` ``(K, 3)`` = ``(t, x, y)`` and extent ``size``."""
    ends = starts + size
    return torch.stack([starts[:, 0], ends[:, 0], starts[:, 1], starts[:, 2], ends[:, 1], ends[:, 2]], dim=1)


def place_at_iou(
    rng: np.random.Generator,
    size: tuple[float, float, float],
    grid: tuple[int, int, int],
    iou_range: tuple[float, float],
    passes: int = 3,
    points: int = 257,
) -> tuple[np.ndarray, int, float]:
    """Place a box of ``size`` ``(dt, dx, dy)`` (each in ``(0, 1]``) so that its IoU with a random
    cell of ``grid`` is a target drawn from ``U(iou_range)`` -> ``(box, cell index, achieved IoU)``.

    The box's corner moves on the segment from the position centred on the cell (clamped into
    the cube) to a corner of the feasible positions whose IoU is at most the target (a random
    one; the least-overlapping corner when none is). The IoU is continuous along the segment, so
    a crossing of the target lies in every bracket ``IoU(lo) > u >= IoU(hi)``; each of ``passes``
    evaluates ``points`` positions of the bracket at once and keeps the first sub-bracket that
    crosses (``(points - 1)^-passes`` of the segment: ~6e-8 by default). Draws, in order: the
    cell, the target, the far corner.
    """
    size_t = torch.tensor(size, dtype=torch.float64)
    index = int(rng.integers(0, int(np.prod(grid))))
    cell = grid_cell_boxes(*grid, dtype=torch.float64)[index]
    target = float(rng.uniform(*iou_range))
    room = 1.0 - size_t  # feasible corners: [0, room] per axis
    centre = torch.stack([(cell[0] + cell[1]) / 2, (cell[2] + cell[4]) / 2, (cell[3] + cell[5]) / 2])
    near = torch.minimum((centre - size_t / 2).clamp(min=0.0), room)
    corners = _CORNERS * room
    corner_iou = box_iou(_boxes(corners, size_t), cell)
    low = torch.nonzero(corner_iou <= target).flatten().tolist() or [int(corner_iou.argmin())]
    far = corners[low[int(rng.integers(0, len(low)))]]

    def ious(f: torch.Tensor) -> torch.Tensor:
        return box_iou(_boxes(near + f[:, None] * (far - near), size_t), cell)

    ends = ious(torch.tensor([0.0, 1.0], dtype=torch.float64))
    if ends[0] <= target:
        f = 0.0  # the target is above the best overlap this size allows
    elif ends[1] >= target:
        f = 1.0  # ... or below the least
    else:
        lo, hi = 0.0, 1.0
        for _ in range(passes):
            fs = torch.linspace(lo, hi, points, dtype=torch.float64)
            k = int(torch.nonzero(ious(fs) <= target)[0])  # >= 1: ious(lo) > target >= ious(hi)
            lo, hi = float(fs[k - 1]), float(fs[k])
        f = hi
    box = _boxes(near[None] + f * (far - near)[None], size_t)[0]
    return box.numpy(), index, float(box_iou(box, cell))
