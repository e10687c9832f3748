"""Tests of glocal.eval.metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from glocal.errors import DataError
from glocal.eval.metrics import (
    ACTIVITYNET_TIOU_THRESHOLDS,
    ar_an_auc,
    ar_an_curve,
    average_recall_at_k,
    binary_auc,
    box_mask,
    ciou,
    consensus_mask,
    localization_metrics,
    mean_average_precision,
    recall_at_k,
    segment_accuracy,
    temporal_iou,
    top1_accuracy,
)

# ------------------------------------------------------------------------------------------------
# retrieval
# ------------------------------------------------------------------------------------------------
# gallery: g0=(1,0) A, g1=(0.8,0.6) B, g2=(0,1) A, g3=(-1,0) B   (all unit norm)
GALLERY = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
GALLERY_Y = np.array(["A", "B", "A", "B"])
# q0=(1,0) B : sims 1, .8, 0, -1      -> ranking A,B,...      first hit at rank 2
# q1=(0,1) A : sims 0, .6, 1, 0       -> ranking g2(A) first   first hit at rank 1
# q2=(-1,0) A: sims -1, -.8, 0, 1     -> ranking g3(B), g2(A)  first hit at rank 2
# q3=(.6,.8) C: label absent from the gallery -> never a hit
QUERY = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]])
QUERY_Y = np.array(["B", "A", "A", "C"])


def test_recall_at_k_hand_ranking():
    r = recall_at_k(QUERY, QUERY_Y, GALLERY, GALLERY_Y, ks=(1, 2, 3, 10))
    # R@1: q1 only; R@2, R@3: q0, q1, q2; k=10 is clipped to the 4-item gallery
    assert r == pytest.approx({"R@1": 0.25, "R@2": 0.75, "R@3": 0.75, "R@10": 0.75})


def test_recall_at_k_is_cosine_and_accepts_tensors():
    scaled = torch.tensor(QUERY * np.array([[5.0], [0.1], [3.0], [2.0]]))
    r = recall_at_k(scaled, QUERY_Y, torch.tensor(GALLERY * 7.0), GALLERY_Y, ks=(1, 2), chunk_size=3)
    assert r == pytest.approx({"R@1": 0.25, "R@2": 0.75})


def test_recall_at_k_exclude_self():
    # x0=(1,0) A, x1=(1,.1) B, x2=(0,1) B, x3=(.1,1) A
    x = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    y = np.array([0, 1, 1, 0])
    # with self: every item retrieves itself first
    assert recall_at_k(x, y, x, y, ks=(1,))["R@1"] == 1.0
    # without self (cosines: x0·x1=.995, x0·x3=.0995, x0·x2=0, x1·x3=.198, x1·x2=.0995, x2·x3=.995):
    # x0 -> x1(B) x3(A) x2     first hit rank 2
    # x1 -> x0(A) x3(A) x2(B)  first hit rank 3
    # x2 -> x3(A) x1(B) x0     first hit rank 2
    # x3 -> x2(B) x1(B) x0(A)  first hit rank 3
    expected = {"R@1": 0.0, "R@2": 0.5, "R@3": 1.0, "R@10": 1.0}
    for chunk in (1, 3, 4096):
        r = recall_at_k(x, y, x, y, ks=(1, 2, 3, 10), exclude_self=True, chunk_size=chunk)
        assert r == pytest.approx(expected), chunk


def _brute_force_recall(q, ql, g, gl, ks):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    order = np.argsort(-(qn @ gn.T), axis=1)
    hits = gl[order] == ql[:, None]
    return {f"R@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}


def test_recall_at_k_chunked_equals_unchunked_and_brute_force():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(37, 8)), rng.normal(size=(53, 8))
    ql, gl = rng.integers(0, 5, 37), rng.integers(0, 5, 53)
    ks = (1, 5, 10, 20, 50)
    full = recall_at_k(q, ql, g, gl, ks, chunk_size=10_000)
    for chunk in (1, 4, 16):
        assert recall_at_k(q, ql, g, gl, ks, chunk_size=chunk) == pytest.approx(full)
    assert full == pytest.approx(_brute_force_recall(q, ql, g, gl, ks))
    assert full["R@1"] < full["R@50"]  # non-trivial data


def test_recall_at_k_bad_input():
    with pytest.raises(DataError, match="NaN"):
        recall_at_k(np.array([[np.nan, 1.0]]), [0], GALLERY, GALLERY_Y)
    with pytest.raises(DataError, match="entries"):
        recall_at_k(QUERY, QUERY_Y[:3], GALLERY, GALLERY_Y)
    with pytest.raises(DataError, match="empty"):
        recall_at_k(np.zeros((0, 2)), [], GALLERY, GALLERY_Y)
    with pytest.raises(DataError, match="feature sizes"):
        recall_at_k(np.ones((2, 3)), [0, 1], GALLERY, GALLERY_Y)
    with pytest.raises(ValueError, match="positive int"):
        recall_at_k(QUERY, QUERY_Y, GALLERY, GALLERY_Y, ks=(0,))
    with pytest.raises(ValueError, match="same size"):
        recall_at_k(QUERY[:3], QUERY_Y[:3], GALLERY, GALLERY_Y, exclude_self=True)


# ------------------------------------------------------------------------------------------------
# sound-source localisation
# ------------------------------------------------------------------------------------------------
ROWS = np.arange(16.0).reshape(4, 4)  # median 7.5 -> pred = rows 2 and 3 (8 pixels)


def test_box_mask_and_consensus():
    m = box_mask([[0.25, 0.25, 0.75, 0.75]], 4, 4)
    expected = np.zeros((4, 4))
    expected[1:3, 1:3] = 1
    np.testing.assert_array_equal(m, expected)
    # non-square: rows [2, 6), cols [1, 3); union with a second box on row 0
    m = box_mask([[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.25, 0.125]], 8, 4)
    expected = np.zeros((8, 4))
    expected[2:6, 1:3] = 1
    expected[0:1, 0:1] = 1
    np.testing.assert_array_equal(m, expected)
    # annotator 1: rows 2-3 cols 0-1; annotator 2: rows 2-3 all cols -> sum/2 clipped
    c = consensus_mask([[[0, 0.5, 0.5, 1]], [[0, 0.5, 1, 1]]], 4, 4)
    np.testing.assert_array_equal(c, [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0.5, 0.5], [1, 1, 0.5, 0.5]])
    with pytest.raises(DataError):
        box_mask([[0.5, 0, 0.2, 1]], 4, 4)  # x1 < x0
    with pytest.raises(DataError):
        box_mask(np.zeros((0, 4)), 4, 4)
    with pytest.raises(DataError):
        consensus_mask([], 4, 4)


def test_ciou_hand_values():
    # pred = rows 2-3 (8 px). gt rows 2-3 cols 0-1 (4 px): inter 4, Σgt 4, pred outside gt 4 -> 4/8
    assert ciou(ROWS, box_mask([[0, 0.5, 0.5, 1]], 4, 4)) == pytest.approx(0.5)
    # gt rows 1-2 cols 1-2 (4 px): inter 2 (row 2), pred outside gt 6 -> 2 / (4 + 6)
    assert ciou(ROWS, box_mask([[0.25, 0.25, 0.75, 0.75]], 4, 4)) == pytest.approx(0.2)
    # consensus gt [[0]*4, [0]*4, [1,1,.5,.5], [1,1,.5,.5]]:
    cons = consensus_mask([[[0, 0.5, 0.5, 1]], [[0, 0.5, 1, 1]]], 4, 4)
    # pred rows 2-3: inter = 2*(1+1+.5+.5) = 6, Σgt = 6, pred on gt=0: 0 -> 1
    assert ciou(ROWS, cons) == pytest.approx(1.0)
    # pred cols 2-3 (transposed ramp): inter = 4 px * .5 = 2, Σgt = 6, pred on gt=0: rows 0-1 -> 4
    assert ciou(ROWS.T, cons) == pytest.approx(2 / 10)


def test_ciou_median_binarisation():
    full = np.ones((4, 4))
    # even count, distinct values: exactly the top half (8 of 16) is predicted
    assert ciou(ROWS, full) == pytest.approx(0.5)
    # odd count: pixels strictly above the median 4 of 0..8 -> 4 of 9
    assert ciou(np.arange(9.0).reshape(3, 3), np.ones((3, 3))) == pytest.approx(4 / 9)
    # min-max normalisation makes it invariant to affine rescaling
    gt = box_mask([[0.25, 0.25, 0.75, 0.75]], 4, 4)
    assert ciou(3 * ROWS + 7, gt) == pytest.approx(ciou(ROWS, gt))
    # a constant heatmap predicts nothing
    assert ciou(np.full((4, 4), 2.0), gt) == 0.0
    with pytest.raises(DataError, match="all-zero"):
        ciou(ROWS, np.zeros((4, 4)))
    with pytest.raises(DataError, match="NaN"):
        ciou(np.full((4, 4), np.nan), gt)


def test_localization_metrics_auc_by_hand():
    gts = np.stack(
        [
            box_mask([[0, 0.5, 0.5, 1]], 4, 4),  # cIoU 0.5
            box_mask([[0.25, 0.25, 0.75, 0.75]], 4, 4),  # cIoU 0.2
            box_mask([[0, 0.5, 1, 1]], 4, 4),  # cIoU 1.0
            box_mask([[0, 0.5, 1, 1]], 4, 4),  # constant heatmap -> cIoU 0
        ]
    )
    heat = np.stack([ROWS, ROWS, ROWS, np.zeros((4, 4))])
    out = localization_metrics(heat, gts, resize_to=None)
    # cIoUs [0.5, 0.2, 1.0, 0.0]
    # success: θ=0 -> 1; θ=.05..0.2 (4 values) -> .75; θ=.25..0.5 (6) -> .5; θ=.55..1.0 (10) -> .25
    # trapezoid, step .05: (.875 + 3*.75 + .625 + 5*.5 + .375 + 9*.25) * .05 = 8.875 * .05 = 0.44375
    assert out["AUC"] == pytest.approx(0.44375)
    assert out["cIoU@0.5"] == pytest.approx(0.5)  # 0.5 and 1.0
    assert out["mean_cIoU"] == pytest.approx(1.7 / 4)


def test_localization_metrics_upsamples_low_res_heatmaps():
    # 2x2 [[0,0],[1,1]] bilinearly upsampled to 4x4 gives rows 0, .25, .75, 1 -> pred rows 2-3
    low = np.array([[[0.0, 0.0], [1.0, 1.0]]])
    gt = box_mask([[0, 0.5, 0.5, 1]], 4, 4)[None]
    assert localization_metrics(low, gt, resize_to=None)["mean_cIoU"] == pytest.approx(0.5)
    # both brought to 8x8 (gt by nearest neighbour): same geometry, same cIoU
    assert localization_metrics(torch.tensor(low), gt, resize_to=8)["mean_cIoU"] == pytest.approx(0.5)
    with pytest.raises(DataError, match="heatmaps"):
        localization_metrics(np.zeros((2, 2, 2)), gt)


# ------------------------------------------------------------------------------------------------
# classification
# ------------------------------------------------------------------------------------------------
def test_binary_auc_hand_examples():
    # positives .35 and .8 vs negatives .1 and .4: .35 beats .1, loses to .4; .8 beats both -> 3/4
    assert binary_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # tie: positive .5 vs negative .5 counts 1/2; + (.5 > .2) + 2 for .9 -> 3.5 / 4
    assert binary_auc([0.5, 0.5, 0.2, 0.9], [True, False, False, True]) == pytest.approx(0.875)


def test_binary_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # rounding creates many ties
    assert binary_auc(torch.tensor(s), y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_binary_auc_bad_input():
    with pytest.raises(DataError, match="single class"):
        binary_auc([0.1, 0.2], [1, 1])
    with pytest.raises(DataError, match="binary"):
        binary_auc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(DataError, match="NaN"):
        binary_auc([0.1, np.nan], [0, 1])
    with pytest.raises(DataError, match="entries"):
        binary_auc([0.1, 0.2, 0.3], [0, 1])


def test_top1_and_segment_accuracy():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])  # argmax 1, 0, 1
    assert top1_accuracy(logits, [1, 1, 1]) == pytest.approx(2 / 3)
    assert top1_accuracy(torch.tensor([2, 0, 1]), [2, 1, 1]) == pytest.approx(2 / 3)
    pred = np.array([[1, 2, 0], [0, 0, 3]])
    gt = np.array([[1, 2, 2], [0, 1, 3]])
    # correct: [1 1 0], [1 0 1] -> 4 of 6 segments
    assert segment_accuracy(pred, gt) == pytest.approx(4 / 6)
    scores = np.eye(4)[pred]  # (N, S, C) one-hot scores of the same predictions
    assert segment_accuracy(scores, gt) == pytest.approx(4 / 6)
    with pytest.raises(DataError):
        segment_accuracy(pred, gt[:, :2])
    with pytest.raises(DataError):
        top1_accuracy(logits, [1, 1])


# ------------------------------------------------------------------------------------------------
# temporal localisation
# ------------------------------------------------------------------------------------------------
def test_temporal_iou_hand():
    # (2,6) vs (4,8): 2/6; vs (6,7): touching -> 0; vs (0,10): 4/10; vs (3,5): 2/4
    out = temporal_iou([2, 6], [[4, 8], [6, 7], [0, 10], [3, 5]])
    np.testing.assert_allclose(out, [1 / 3, 0.0, 0.4, 0.5])
    with pytest.raises(DataError, match="end precedes"):
        temporal_iou([6, 2], [[0, 1]])


# video A: gts (0,10), (20,30); video B: gt (0,4)
AR_GTS = [np.array([[0.0, 10.0], [20.0, 30.0]]), np.array([[0.0, 4.0]])]
# A: (0,10) -> tIoU 1 with gt1; (20,27.7) -> 0.77 with gt2; (50,60) -> 0
# B (given unsorted): (0,2.9) score .5 -> 0.725; (10,20) score .95 -> 0
AR_PROPS = [
    np.array([[0.0, 10.0, 0.9], [20.0, 27.7, 0.8], [50.0, 60.0, 0.7]]),
    np.array([[0.0, 2.9, 0.5], [10.0, 20.0, 0.95]]),
]


def test_average_recall_at_k_hand():
    np.testing.assert_allclose(ACTIVITYNET_TIOU_THRESHOLDS, np.arange(10) * 0.05 + 0.5)
    ar = average_recall_at_k(AR_PROPS, AR_GTS, ks=(1, 2, 3, 100))
    # k=1: only A/gt1 recalled (all 10 thresholds) -> 10 / (3 gts * 10 thresholds)
    # k=2: + A/gt2 at 0.5..0.75 (6 thresholds) + B/gt at 0.5..0.7 (5) -> 21 / 30
    assert ar == pytest.approx({"AR@1": 1 / 3, "AR@2": 0.7, "AR@3": 0.7, "AR@100": 0.7})
    # a single threshold of 0.75: k=2 recalls A/gt1, A/gt2 (0.77) but not B (0.725) -> 2/3
    assert average_recall_at_k(AR_PROPS, AR_GTS, ks=(2,), tiou_thresholds=0.75)["AR@2"] == pytest.approx(2 / 3)
    # the comparison is tIoU >= threshold: (20,28) vs (20,30) has tIoU exactly 0.8
    exact = [np.array([[20.0, 28.0, 1.0]])]
    assert average_recall_at_k(exact, [np.array([[20.0, 30.0]])], ks=(1,), tiou_thresholds=0.8)["AR@1"] == 1.0
    with pytest.raises(DataError):
        average_recall_at_k(AR_PROPS[:1], AR_GTS)


def test_ar_an_auc_hand():
    props = [AR_PROPS[0][:2], AR_PROPS[1]]  # 2 proposals per video
    x, y = ar_an_curve(props, AR_GTS, max_avg_proposals=2)
    # AN = j/50, j = 1..100; proposals used per video = j // 50 -> AR 0 (j<50), 1/3 (50..99), .7 (100)
    np.testing.assert_allclose(x, np.arange(1, 101) / 50)
    assert np.all(y[:49] == 0) and np.allclose(y[49:99], 1 / 3) and y[99] == pytest.approx(0.7)
    # trapz = .02*(0 + 1/3)/2 + 49*.02/3 + .02*(1/3 + .7)/2 = 1021/3000; AUC = 100 * that / 2
    assert ar_an_auc(props, AR_GTS, max_avg_proposals=2) == pytest.approx(1021 / 60)


def test_ar_an_curve_matches_top_k_when_every_video_has_enough_proposals():
    rng = np.random.default_rng(2)
    gts, props = [], []
    for _ in range(3):
        s = rng.uniform(0, 80, size=(2, 1))
        gts.append(np.hstack([s, s + rng.uniform(2, 20, size=(2, 1))]))
        p = rng.uniform(0, 90, size=(100, 1))
        props.append(np.hstack([p, p + rng.uniform(1, 20, size=(100, 1)), rng.uniform(size=(100, 1))]))
    x, y = ar_an_curve(props, gts)
    ks = tuple(range(1, 101))
    ar = average_recall_at_k(props, gts, ks=ks)
    np.testing.assert_allclose(x, ks)
    np.testing.assert_allclose(y, [ar[f"AR@{k}"] for k in ks])
    assert y[0] < y[-1]


def test_ar_an_curve_uses_exact_proposal_counts():
    # one video, 100 proposals; only the 29th by score matches the gt. ActivityNet's float
    # arithmetic computes int(100 * 0.29) = 28 proposals at AN = 29 and would miss it.
    props = np.array([[100.0 + i, 101.0 + i, 1.0 - i / 100] for i in range(100)])
    props[28, :2] = [0.0, 10.0]
    x, y = ar_an_curve([props], [np.array([[0.0, 10.0]])])
    np.testing.assert_array_equal(y, (np.arange(1, 101) >= 29).astype(float))


def test_mean_average_precision_hand():
    gts = [np.array([[0.0, 10.0], [20.0, 30.0]]), np.array([[0.0, 10.0]])]
    dets = [
        np.array([[0, 10, 0.9], [1, 10, 0.8], [50, 60, 0.6], [20, 29, 0.5]]),
        np.array([[0, 9, 0.7]]),
    ]
    # ranked: TP (A gt1), FP (A gt1 already used), TP (B, tIoU .9), FP, TP (A gt2, tIoU .9)
    # precision 1, 1/2, 2/3, 1/2, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1
    # AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45
    assert mean_average_precision(dets, gts, tiou=0.5) == pytest.approx(34 / 45)
    # at 0.95 only the exact match counts: AP = 1/3 * 1
    assert mean_average_precision(dets, gts, tiou=0.95) == pytest.approx(1 / 3)
    assert mean_average_precision(dets, gts, tiou=[0.5, 0.95]) == pytest.approx((34 / 45 + 1 / 3) / 2)
    assert mean_average_precision([np.zeros((0, 3)), np.zeros((0, 3))], gts) == 0.0
    with pytest.raises(DataError, match="no ground-truth"):
        mean_average_precision(dets, [np.zeros((0, 2)), np.zeros((0, 2))])
