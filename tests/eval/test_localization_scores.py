"""Pointing game, mass share, fixed-threshold cIoU, oracle and centre prior: hand cases and loop references."""

from __future__ import annotations

import numpy as np
import pytest

from glocal.errors import DataError
from glocal.eval.localization_scores import (
    PEAK_TOLERANCE,
    centre_prior_maps,
    gt_area,
    localization_scores,
    mass_share,
    oracle_maps,
    pointing_hits,
    threshold_ciou,
    upsample,
)
from glocal.eval.metrics import box_mask, localization_metrics

ROWS = np.repeat(np.arange(4.0)[:, None], 4, axis=1)  # row i has value i
BOTTOM = box_mask([[0, 0.5, 1, 1]], 4, 4)  # rows 2-3
TOP_LEFT = box_mask([[0, 0, 0.5, 0.5]], 4, 4)  # rows 0-1, cols 0-1


def one(fn, heat, gt, *args):
    return float(fn(np.asarray(heat, float)[None], np.asarray(gt, float)[None], *args)[0])


# ------------------------------------------------------------------------------------------------
# hand-computed 4x4 cases
# ------------------------------------------------------------------------------------------------
def test_pointing_hand_cases():
    peak = np.zeros((4, 4))
    peak[3, 1] = 5.0
    assert one(pointing_hits, peak, BOTTOM) == 1.0
    assert one(pointing_hits, peak, TOP_LEFT) == 0.0
    two = np.zeros((4, 4))
    two[0, 0] = two[3, 3] = 2.0  # tied maxima: one inside the top-left box, one outside
    assert one(pointing_hits, two, TOP_LEFT) == 0.5
    assert one(pointing_hits, np.full((4, 4), 7.0), TOP_LEFT) == 0.25  # constant map: every pixel a peak
    assert one(pointing_hits, ROWS, BOTTOM) == 1.0  # the whole bottom row ties, all inside
    soft = TOP_LEFT * 0.5
    assert one(pointing_hits, -ROWS, soft) == 0.25  # top row ties: 2 of 4 peaks on consensus 0.5
    assert one(pointing_hits, -ROWS - ROWS.T, soft) == 0.5  # single peak at (0, 0), consensus 0.5: half credit
    nearly = np.zeros((4, 4))
    nearly[0, 0], nearly[3, 3] = 1.0, 1.0 - PEAK_TOLERANCE / 2  # within the tolerance: a tie
    assert one(pointing_hits, nearly, TOP_LEFT) == 0.5


def test_mass_share_hand_cases():
    # min-subtracted ROWS: total 4 * (0 + 1 + 2 + 3) = 24
    assert one(mass_share, ROWS, BOTTOM) == pytest.approx((4 * 2 + 4 * 3) / 24)
    assert one(mass_share, ROWS, TOP_LEFT) == pytest.approx(2 / 24)
    assert one(mass_share, ROWS + 10, TOP_LEFT) == pytest.approx(2 / 24)  # offsets do not matter
    assert one(mass_share, np.full((4, 4), 3.0), TOP_LEFT) == pytest.approx(0.25)  # uniform
    assert one(mass_share, ROWS, TOP_LEFT * 0.5) == pytest.approx(1 / 24)


def test_threshold_ciou_hand_cases():
    # normalised ROWS = 0, 1/3, 2/3, 1 by row
    assert one(threshold_ciou, ROWS, BOTTOM, 0.3) == pytest.approx(8 / (8 + 4))  # rows 1-3 predicted
    assert one(threshold_ciou, ROWS, BOTTOM, 0.5) == pytest.approx(1.0)  # rows 2-3
    assert one(threshold_ciou, ROWS, BOTTOM, 0.7) == pytest.approx(4 / 8)  # row 3
    assert one(threshold_ciou, np.full((4, 4), 1.0), BOTTOM, 0.5) == 0.0  # a constant map predicts nothing
    with pytest.raises(ValueError):
        threshold_ciou(ROWS[None], BOTTOM[None], 0.0)
    with pytest.raises(DataError):
        threshold_ciou(ROWS[None], np.zeros((1, 4, 4)), 0.5)  # empty ground truth
    with pytest.raises(DataError):
        mass_share(ROWS[None], BOTTOM[None, :2])  # shapes differ


def test_localization_scores_keys_and_median_rule_kept():
    heat = np.stack([ROWS, ROWS.T, -ROWS])
    gts = np.stack([BOTTOM, BOTTOM, TOP_LEFT])
    out = localization_scores(heat, gts)
    ref = localization_metrics(heat, gts, resize_to=None)
    assert {k: out[k] for k in ref} == ref
    # ROWS: bottom row, in BOTTOM; ROWS.T: column 3, half in BOTTOM; -ROWS: top row, half in TOP_LEFT
    assert out["pointing"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert out["cIoU@0.5_t0.5"] == pytest.approx(np.mean([
        one(threshold_ciou, h, g, 0.5) >= 0.5 for h, g in zip(heat, gts)]))
    assert {"AUC_t0.3", "mean_cIoU_t0.7", "mass_share"} <= set(out)
    low = localization_scores(np.array([[[0.0, 0.0], [1.0, 1.0]]]), BOTTOM[None])  # 2x2 map upsampled to 4x4
    assert low["pointing"] == 1.0 and low["cIoU@0.5_t0.5"] == 1.0


def test_gt_area_and_upsample():
    np.testing.assert_allclose(gt_area(np.stack([BOTTOM, TOP_LEFT, TOP_LEFT * 0.5])), [0.5, 0.25, 0.125])
    up = upsample(np.array([[[0.0, 1.0], [0.0, 1.0]]]), (4, 4))
    assert up.shape == (1, 4, 4) and (up[:, :, 2:] > up[:, :, :2]).all()


# ------------------------------------------------------------------------------------------------
# slow loop references on random maps with ties
# ------------------------------------------------------------------------------------------------
def slow_pointing(h: np.ndarray, g: np.ndarray) -> float:
    hi, lo = h.max(), h.min()
    hits, n = 0.0, 0
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            if h[i, j] >= hi - PEAK_TOLERANCE * (hi - lo):
                hits += g[i, j]
                n += 1
    return hits / n


def slow_mass(h: np.ndarray, g: np.ndarray) -> float:
    lo = h.min()
    num = den = 0.0
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            num += (h[i, j] - lo) * g[i, j]
            den += h[i, j] - lo
    return num / den if den > 0 else float(g.mean())


def slow_ciou(h: np.ndarray, g: np.ndarray, t: float) -> float:
    lo, hi = h.min(), h.max()
    inter = gt_sum = outside = 0.0
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            on = hi > lo and (h[i, j] - lo) / (hi - lo) >= t
            inter += on * g[i, j]
            gt_sum += g[i, j]
            outside += on and g[i, j] == 0
    return inter / (gt_sum + outside)


def test_against_slow_references():
    rng = np.random.default_rng(0)
    heat = rng.integers(0, 4, size=(40, 5, 6)).astype(float)  # few values: many ties
    heat[0] = 2.0  # a constant map
    gts = (rng.random((40, 5, 6)) < 0.3) * rng.choice([0.5, 1.0], size=(40, 5, 6))
    gts[:, 0, 0] = 1.0  # never empty
    np.testing.assert_allclose(pointing_hits(heat, gts), [slow_pointing(h, g) for h, g in zip(heat, gts)])
    np.testing.assert_allclose(mass_share(heat, gts), [slow_mass(h, g) for h, g in zip(heat, gts)])
    for t in (0.3, 0.5, 0.7, 1.0):
        np.testing.assert_allclose(threshold_ciou(heat, gts, t), [slow_ciou(h, g, t) for h, g in zip(heat, gts)])


# ------------------------------------------------------------------------------------------------
# oracle and centre prior
# ------------------------------------------------------------------------------------------------
def test_oracle_is_the_ceiling():
    rng = np.random.default_rng(1)
    gts = (rng.random((12, 16, 16)) < 0.08).astype(float)  # scattered small masks
    gts[:, 4:6, 7:9] = 1.0
    gts[0] = box_mask([[0.0, 0.0, 0.25, 0.25]], 16, 16)  # area 1/16
    gts[1] = box_mask([[0.0, 0.0, 1.0, 0.75]], 16, 16)  # area 3/4
    oracle = oracle_maps(gts)
    assert (pointing_hits(oracle, gts) == 1.0).all()
    assert np.allclose(mass_share(oracle, gts), 1.0, atol=1e-4)
    for t in (0.3, 0.5, 0.7):
        assert (threshold_ciou(oracle, gts, t) == 1.0).all()
    # median rule: a tie-free map keeps the top half, so cIoU = 2 x area below half the frame
    med = localization_metrics(oracle[:1], gts[:1], resize_to=None)
    assert med["mean_cIoU"] == pytest.approx(2 / 16, abs=0.002) and med["cIoU@0.5"] == 0.0  # 16 / 127: ring ties
    assert localization_metrics(oracle[1:2], gts[1:2], resize_to=None)["cIoU@0.5"] == 1.0
    soft = TOP_LEFT * 0.5 + box_mask([[0, 0, 0.25, 0.25]], 4, 4) * 0.5  # consensus: 1 at (0, 0), 0.5 around
    assert pointing_hits(oracle_maps(soft[None]), soft[None])[0] == 1.0


def test_centre_prior_peaks_at_the_centre():
    m = centre_prior_maps(2, 4, 4)
    assert m.shape == (2, 4, 4) and m[0, 0, 0] == 0.0 and m[0, 1, 1] == m[0, 2, 2] > m[0, 1, 0]
    centre = box_mask([[0.25, 0.25, 0.75, 0.75]], 4, 4)
    assert pointing_hits(m[:1], centre[None])[0] == 1.0
    assert pointing_hits(m[:1], TOP_LEFT[None])[0] == 0.25  # four tied centre pixels, one in the top-left box
