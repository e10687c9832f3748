"""Hand-computed checks of the protocol building blocks: segment labels, pooling, proposals,
ground-truth maps, sync descriptors, faiss retrieval, classifiers, split rules."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from glocal.data.manifest import Manifest
from glocal.errors import DataError
from glocal.eval.classifiers import fit_linear
from glocal.eval.deepfake import _xcorr, split_by_source, sync_descriptor
from glocal.eval.localization import frame_gt
from glocal.eval.retrieval import faiss_recall_at_k, load_faiss
from glocal.eval.metrics import recall_at_k
from glocal.eval.tal import scores_to_segments
from glocal.eval.temporal import _windows
from glocal.eval.timeline import frame_bounds, label_segments, pool_segments, segment_bounds


# ------------------------------------------------------------------------------------------------
# segment labelling rule: overlap >= half of the shorter of (segment, event)
# ------------------------------------------------------------------------------------------------
def test_segment_bounds_keep_whole_segments():
    assert segment_bounds(2.0, 0.5).tolist() == [[0, 0.5], [0.5, 1.0], [1.0, 1.5], [1.5, 2.0]]
    assert segment_bounds(1.9, 1.0).tolist() == [[0.0, 1.0]]  # the partial second segment is dropped
    assert segment_bounds(0.5, 1.0).shape == (0, 2)
    assert frame_bounds(3, 4.0).tolist() == [[0, 0.25], [0.25, 0.5], [0.5, 0.75]]


def test_label_segments_long_events_need_half_the_segment():
    seg = segment_bounds(4.0, 1.0)  # [0,1) [1,2) [2,3) [3,4)
    # event 0.4-2.6: covers 0.6 of seg0, all of seg1, 0.6 of seg2; event 3.6-5: 0.4 of seg3
    assert label_segments(seg, [[0.4, 2.6], [3.6, 5.0]]).tolist() == [True, True, True, False]
    # exactly half counts
    assert label_segments(seg, [[0.5, 1.0]]).tolist() == [True, False, False, False]
    # 0.6-1.5 (0.9 s): 0.4 in seg0 < 0.45 = half the shorter (the event); 0.5 in seg1 >= 0.45
    assert label_segments(seg, [[0.6, 1.5]]).tolist() == [False, True, False, False]
    # an event shorter than the segment and wholly inside it labels it (half of the event is in it)
    assert label_segments(seg, [[0.51, 1.0]]).tolist() == [True, False, False, False]


def test_label_segments_short_events_need_half_the_event():
    seg = segment_bounds(1.0, 0.25)  # [0,.25) [.25,.5) [.5,.75) [.75,1)
    # 0.2-0.3 (0.1 s): 0.05 in seg0 and 0.05 in seg1 -> both exactly half of the event -> both event
    # 0.6-0.64: wholly inside seg2; 0.74-0.9: 0.01 in seg2 (< 0.08), 0.15 in seg3
    out = label_segments(seg, [[0.2, 0.3], [0.6, 0.64], [0.74, 0.9]])
    assert out.tolist() == [True, True, True, True]
    assert label_segments(seg, [[0.22, 0.3]]).tolist() == [False, True, False, False]  # 0.03 vs 0.05 in seg1
    # zero-length event: the segment holding the instant
    assert label_segments(seg, [[0.5, 0.5]]).tolist() == [False, False, True, False]
    assert label_segments(seg, np.zeros((0, 2))).tolist() == [False] * 4
    with pytest.raises(DataError, match="offset precedes"):
        label_segments(seg, [[0.6, 0.5]])


def test_pool_segments_means_frames_by_midpoint():
    feats = np.arange(12, dtype=np.float32).reshape(2, 6)  # D=2, F=6 at 4 fps: frames span 0..1.5 s
    out = pool_segments(feats, 4.0, np.array([[0.0, 0.5], [0.5, 1.5], [1.0, 1.1]]))
    # midpoints .125 .375 | .625 .875 1.125 1.375 ; the 0.1 s segment has no midpoint: frame floor(1.05*4)=4
    np.testing.assert_allclose(out, [[0.5, 6.5], [3.5, 9.5], [4.0, 10.0]])


# ------------------------------------------------------------------------------------------------
# temporal action localisation proposals
# ------------------------------------------------------------------------------------------------
def test_scores_to_segments_threshold_merge_mean():
    s = [0.1, 0.9, 0.8, 0.2, 0.7, 0.1]  # 2 fps: frame k covers [k/2, (k+1)/2)
    out = scores_to_segments(s, 2.0, [0.5])
    # runs above 0.5: frames 1-2 (mean .85) and frame 4 (.7)
    np.testing.assert_allclose(out, [[0.5, 1.5, 0.85], [2.0, 2.5, 0.7]])
    merged = scores_to_segments(s, 2.0, [0.5], merge_gap=0.5)  # a one-frame gap (0.5 s) is merged
    np.testing.assert_allclose(merged, [[0.5, 2.5, (0.9 + 0.8 + 0.2 + 0.7) / 4]])
    multi = scores_to_segments(s, 2.0, [0.15, 0.85])
    # 0.15: frames 1-4 (mean .65); 0.85: frame 1 (.9)
    np.testing.assert_allclose(multi, [[0.5, 1.0, 0.9], [0.5, 2.5, 0.65]])
    assert scores_to_segments([0.1, 0.2], 2.0, [0.5]).shape == (0, 3)
    # a run found at two thresholds is kept once
    assert scores_to_segments([0.0, 0.9, 0.0], 1.0, [0.1, 0.5]).tolist() == [[1.0, 2.0, 0.9]]


# ------------------------------------------------------------------------------------------------
# sound-source localisation ground truth
# ------------------------------------------------------------------------------------------------
FULL = [0.0, 0.0, 1.0, 1.0, 0.0]  # crop = the whole frame, no flip


def test_frame_gt_single_box_consensus_and_union():
    single = frame_gt([0.0, 0.0, 0.5, 0.5], FULL, 4)
    assert single.sum() == 4 and single[:2, :2].sum() == 4
    two = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 0.5]]  # two annotators
    cons = frame_gt(two, FULL, 4, "consensus")
    # top-left quadrant marked by both (2/2 = 1), top-right by one (1/2)
    np.testing.assert_allclose(cons, [[1, 1, .5, .5], [1, 1, .5, .5], [0, 0, 0, 0], [0, 0, 0, 0]])
    union = frame_gt(two, FULL, 4, "union")
    np.testing.assert_allclose(union, [[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    per_annotator = [[[0.0, 0.0, 0.25, 0.25], [0.75, 0.75, 1.0, 1.0]], [[0.0, 0.0, 0.25, 0.25]]]
    cons3 = frame_gt(per_annotator, FULL, 4, "consensus")
    assert cons3[0, 0] == 1.0 and cons3[3, 3] == 0.5 and cons3.sum() == 1.5
    flipped = frame_gt([0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0, 1.0], 4)
    assert flipped[:2, 2:].sum() == 4
    assert frame_gt([0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0, 0.0], 4).sum() == 0  # outside the crop


# ------------------------------------------------------------------------------------------------
# deepfake: sync descriptor and split
# ------------------------------------------------------------------------------------------------
def test_xcorr_peaks_at_the_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = np.roll(a, 2)  # b_t = a_{t-2}: a_t matches b_{t+2}
    c = _xcorr(a, b, 4)
    assert c.shape == (9,) and int(np.argmax(c)) == 4 + 2 and c[6] == pytest.approx(1.0, abs=0.02)


def test_sync_descriptor_separates_aligned_from_shifted():
    rng = np.random.default_rng(0)
    events = (rng.random(64) < 0.2).astype(float)
    v = np.outer(rng.normal(size=5), events) + 0.05 * rng.normal(size=(5, 64))
    a = np.outer(rng.normal(size=3), events) + 0.05 * rng.normal(size=(3, 64))
    pv, pa = np.eye(5)[:, :2], np.eye(3)[:, :2]
    aligned = sync_descriptor(v, a, pv, pa)
    shifted = sync_descriptor(v, np.roll(a, 7, axis=1), pv, pa)
    assert aligned.shape == (2 * 2 + 9,)
    assert abs(aligned[:4]).max() > 0.9 and abs(shifted[:4]).max() < 0.5  # lag-0 channel correlations
    assert aligned[4 + 4] > shifted[4 + 4]  # lag-0 change-signal correlation


def _fake_manifest(splits, sources, labels, manip):
    n = len(splits)
    return Manifest(root=Path("/x"), paths=np.array([f"/x/{i}.mp4" for i in range(n)]),
                    labels=np.array([["fake", "real"].index(l) for l in labels]), class_names=["fake", "real"],
                    columns={"split": np.array(splits), "source": np.array(sources), "manipulation": np.array(manip)},
                    source="fake.csv")


def test_split_by_source_uses_manifest_splits_when_both_have_both_classes():
    m = _fake_manifest(["train"] * 4 + ["test"] * 2, list("aabbcc"), ["real", "fake"] * 3, ["none", "x"] * 3)
    y = np.array([0, 1] * 3)
    tr, te, note = split_by_source(m, y, 0)
    assert tr.tolist() == [True] * 4 + [False] * 2 and te.tolist() == [False] * 4 + [True] * 2
    assert "manifest's" in note


def test_split_by_source_keeps_pairs_together_and_stratifies():
    src = [s for s in "abcdefgh" for _ in range(2)]
    manip = [m for k in ["shift", "shift", "shift", "shift", "desync", "desync", "desync", "desync"]
             for m in ("none", k)]
    m = _fake_manifest(["test"] * 16, src, ["real", "fake"] * 8, manip)
    y = np.array([0, 1] * 8)
    tr, te, note = split_by_source(m, y, seed=3)
    assert "50/50" in note and tr.sum() == 8 and te.sum() == 8
    for s in "abcdefgh":
        rows = np.array(src) == s
        assert tr[rows].all() or te[rows].all()  # a real video and its fake on the same side
    train_kinds = sorted(np.array(manip)[tr & (y == 1)].tolist())
    assert train_kinds == ["desync", "desync", "shift", "shift"]
    again = split_by_source(m, y, seed=3)
    assert (again[0] == tr).all()
    with pytest.raises(DataError, match="fewer than two source videos"):
        split_by_source(_fake_manifest(["test"] * 2, ["a", "a"], ["real", "fake"], ["none", "x"]), np.array([0, 1]), 0)


# ------------------------------------------------------------------------------------------------
# retrieval through (a stand-in for) faiss
# ------------------------------------------------------------------------------------------------
class _FlatIP:
    """Minimal stand-in for ``faiss.IndexFlatIP`` (exact inner-product search)."""

    def __init__(self, d: int) -> None:
        self.x = np.zeros((0, d), dtype=np.float32)

    def add(self, x: np.ndarray) -> None:
        self.x = np.concatenate([self.x, x])

    def search(self, q: np.ndarray, k: int):
        sims = q @ self.x.T
        idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, idx, axis=1), idx


def test_faiss_path_matches_exact_recall():
    fake_faiss = types.SimpleNamespace(IndexFlatIP=_FlatIP)
    gallery = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    gy = np.array(["A", "B", "A", "B"])
    query = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]])
    qy = np.array(["B", "A", "A", "C"])
    got = faiss_recall_at_k(query, qy, gallery, gy, (1, 2, 10), fake_faiss, chunk_size=3)
    assert got == pytest.approx({"R@1": 0.25, "R@2": 0.75, "R@10": 0.75})
    assert got == pytest.approx(recall_at_k(query, qy, gallery, gy, ks=(1, 2, 10)))


def test_load_faiss_modes(monkeypatch):
    import sys

    assert load_faiss("off") is None
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    assert load_faiss("auto") is None
    from glocal.errors import ConfigError

    with pytest.raises(ConfigError, match="faiss is not installed"):
        load_faiss("on")


# ------------------------------------------------------------------------------------------------
# classifiers and the temporal head windows
# ------------------------------------------------------------------------------------------------
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n)
    return np.eye(3)[y] * 5 + rng.normal(size=(3 * n, 3)), y


@pytest.mark.parametrize("classifier", ["logreg", "svm"])
def test_fit_linear_selects_C_on_val(classifier):
    x, y = _blobs(20, 0)
    vx, vy = _blobs(5, 1)
    tx, ty = _blobs(10, 2)
    clf = fit_linear(x, y, vx, vy, classifier=classifier)
    assert clf.C in (0.01, 0.1, 1.0, 10.0, 100.0) and clf.val_top1 == 1.0
    assert (clf.predict(tx) == ty).mean() > 0.95
    assert clf.scores(tx).shape == (30, 3)
    binary = fit_linear(x[y < 2], y[y < 2], classifier=classifier)  # val drawn from train
    assert binary.positive_score(tx[ty < 2], 1).shape == (20,)


def test_fit_linear_tiny_and_bad_data():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    clf = fit_linear(x, [0, 0, 1, 1])
    assert clf.C == 1.0 and "too few samples" in clf.note
    with pytest.raises(DataError, match="single class"):
        fit_linear(x, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="classifier"):
        fit_linear(x, [0, 0, 1, 1], classifier="tree")


def test_temporal_windows_cover_the_sequence():
    x = np.arange(10, dtype=np.float32)[None]  # D=1, F=10
    w = _windows(x, 4)  # stride 2: starts 0,2,4,6 (6 = F - L)
    assert w.shape == (4, 1, 4) and w[-1, 0].tolist() == [6, 7, 8, 9]
    short = _windows(np.array([[1.0, 2.0]]), 4)  # padded with the last value
    assert short.tolist() == [[[1.0, 2.0, 2.0, 2.0]]]
