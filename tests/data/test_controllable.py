"""Controllable local-clip placement (CtrlAug 3.2 step 4): the drawn IoU with a reference cell is
reached, the curriculum moves the range, and the sampler's boxes are the placed boxes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import torch

from glocal.boxes import box_iou, grid_cell_boxes
from glocal.data.controllable import place_at_iou


def box_iou_3d(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)))


def grid_cell_box(index: int, grid: tuple[int, int, int]) -> np.ndarray:
    return grid_cell_boxes(*grid, dtype=torch.float64)[index].numpy()
from glocal.data.samplers import GlobalLocalSampler


def _iou_by_counting(a: np.ndarray, b: np.ndarray, n: int = 60) -> float:
    """IoU by counting the centres of an ``n^3`` lattice (the slow, obvious reference)."""
    c = (np.arange(n) + 0.5) / n
    t, x, y = np.meshgrid(c, c, c, indexing="ij")

    def inside(box: np.ndarray) -> np.ndarray:
        return (box[0] <= t) & (t < box[1]) & (box[2] <= x) & (x < box[4]) & (box[3] <= y) & (y < box[5])

    ia, ib = inside(a), inside(b)
    return float((ia & ib).sum() / max((ia | ib).sum(), 1))


def test_iou_matches_counting_and_cells_tile_the_cube() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        lo = rng.uniform(0, 0.6, 3)
        hi = lo + rng.uniform(0.1, 0.4, 3)
        a = np.array([lo[0], hi[0], lo[1], lo[2], hi[1], hi[2]])
        b = grid_cell_box(int(rng.integers(0, 12)), (3, 2, 2))
        assert box_iou_3d(a, b) == pytest.approx(_iou_by_counting(a, b), abs=0.03)
    grid = (2, 3, 4)
    cells = [grid_cell_box(i, grid) for i in range(24)]
    assert sum((c[1] - c[0]) * (c[4] - c[2]) * (c[5] - c[3]) for c in cells) == pytest.approx(1.0)
    for a, b in itertools.combinations(cells, 2):
        assert box_iou_3d(a, b) == 0.0


@pytest.mark.parametrize("target", [0.05, 0.2, 0.4])
def test_placement_reaches_the_drawn_iou(target: float) -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):
        box, cell, achieved = place_at_iou(rng, (0.4, 0.3, 0.3), (2, 4, 4), (target, target))
        assert np.all(box >= -1e-12) and np.all(box <= 1 + 1e-12)
        assert np.allclose([box[1] - box[0], box[4] - box[2], box[5] - box[3]], [0.4, 0.3, 0.3])
        assert achieved == pytest.approx(box_iou_3d(box, grid_cell_box(cell, (2, 4, 4))))
        assert achieved == pytest.approx(target, abs=1e-3)


def test_unreachable_target_gives_the_best_overlap() -> None:
    # a box twice the cell's volume can reach at most IoU 1/2 with it (the cell inside the box)
    box, cell, achieved = place_at_iou(np.random.default_rng(2), (1.0, 0.5, 0.5), (2, 2, 2), (0.9, 0.9))
    assert achieved == pytest.approx(0.125 / 0.25, abs=1e-9)  # cell volume / box volume


def _mean_iou(sampler: GlobalLocalSampler, n: int = 40) -> float:
    vals = []
    for k in range(n):
        plan = sampler.plan(np.random.default_rng(k), 0.0, 10.0, 25.0)
        boxes, cells, ious = plan.targets["boxes"], plan.targets["ref_cell"], plan.targets["ref_iou"]
        for box, cell, iou in zip(boxes, cells, ious):
            assert box_iou_3d(box, grid_cell_box(int(cell), sampler.iou_grid)) == pytest.approx(iou, abs=1e-6)
            vals.append(iou)
    return float(np.mean(vals))


def test_sampler_places_local_boxes_at_the_drawn_iou_and_follows_the_curriculum() -> None:
    base = dict(global_frames=8, global_stride=4, local_frames=4, n_local=3, local_span=(0.4, 0.5),
                local_area=(0.1, 0.15))
    easy = GlobalLocalSampler(**base, iou_range=(0.3, 0.4), iou_grid=(2, 2, 2))
    hard = GlobalLocalSampler(**base, iou_range=(0.0, 0.05), iou_grid=(2, 2, 2))
    assert 0.3 <= _mean_iou(easy) <= 0.4 and _mean_iou(hard) <= 0.05
    plain = GlobalLocalSampler(**base)
    assert "ref_iou" not in plain.plan(np.random.default_rng(0), 0.0, 10.0, 25.0).targets
    assert plain.at_epoch(5) is plain
    curriculum = GlobalLocalSampler(**base, iou_range=(0.3, 0.4), iou_grid=(2, 2, 2), iou_range_final=(0.0, 0.1),
                                    iou_epochs=10)
    assert curriculum.at_epoch(0).iou_range == pytest.approx((0.3, 0.4))
    assert curriculum.at_epoch(5).iou_range == pytest.approx((0.15, 0.25))
    assert curriculum.at_epoch(25).iou_range == pytest.approx((0.0, 0.1))
    assert _mean_iou(curriculum.at_epoch(10)) <= 0.1
    with pytest.raises(ValueError, match="iou_range"):
        GlobalLocalSampler(iou_range=(0.5, 0.2))


def test_dataset_moves_the_sampler_along_the_curriculum(tmp_path) -> None:
    from glocal.data.av_writer import write_mp4
    from glocal.data.dataset import MultiViewDataset
    from glocal.data.manifest import Manifest
    from glocal.data.transforms import ClipTransform

    path = write_mp4(tmp_path / "v.mp4", np.zeros((40, 32, 32, 3), np.uint8), 16)
    manifest = Manifest(root=tmp_path, paths=np.array([str(path)]), labels=np.zeros(1, np.int64), class_names=[])
    sampler = GlobalLocalSampler(global_frames=8, global_stride=2, local_frames=2, n_local=2, local_span=(0.3, 0.4),
                                 local_area=(0.15, 0.2), iou_range=(0.15, 0.25), iou_grid=(2, 2, 2),
                                 iou_range_final=(0.0, 0.02), iou_epochs=4)
    tfs = {"global": ClipTransform(size=16), "local": ClipTransform(size=8)}
    ds = MultiViewDataset(manifest, sampler, tfs, with_audio=False)
    first = ds[0]["target/ref_iou"]
    assert torch_all_between(first, 0.149, 0.251)
    tagged = ds[(4, 0)]["target/ref_iou"]  # an (epoch, index) item is at its own epoch (persistent workers)
    assert ds.epoch == 0 and torch_all_between(tagged, 0.0, 0.021)
    ds.set_epoch(4)
    assert ds._epoch_sampler.iou_range == pytest.approx((0.0, 0.02))
    assert torch.equal(ds[0]["target/ref_iou"], tagged)


def torch_all_between(x, lo: float, hi: float) -> bool:
    return bool(((x >= lo) & (x <= hi)).all())
