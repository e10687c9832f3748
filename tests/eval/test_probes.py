"""Tests of glocal.eval.probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from glocal.errors import DataError
from glocal.eval.probes import kfold_linear_probe, knn_classify, linear_probe


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Tiny L-BFGS fits are ~10x slower with multi-threaded BLAS on a busy 2-core machine."""
    with threadpool_limits(limits=1):
        yield


def _blobs(n_per_class: int, n_classes: int = 3, dim: int = 10, seed: int = 0, noise_seed: int = 0):
    """Gaussian blobs: unit noise around centres 6 std apart (centres fixed by ``seed``)."""
    centres = np.random.default_rng(seed).normal(size=(n_classes, dim)) * 6.0
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + np.random.default_rng(noise_seed).normal(size=(y.size, dim))
    return x, y


def test_linear_probe_separable_blobs():
    tr_x, tr_y = _blobs(40, noise_seed=1)
    te_x, te_y = _blobs(20, noise_seed=2)  # same centres, fresh noise
    out = linear_probe(tr_x, tr_y, te_x, te_y)
    assert out["top1"] >= 0.95
    assert out["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    assert 0.0 <= out["val_top1"] <= 1.0
    # deterministic for a seed; string labels and tensors work too
    names = np.array(["cat", "dog", "owl"])
    again = linear_probe(torch.tensor(tr_x), names[tr_y], te_x, names[te_y])
    assert again == out


def test_linear_probe_random_labels_is_near_chance():
    rng = np.random.default_rng(3)
    tr_x, tr_y = rng.normal(size=(200, 10)), rng.integers(0, 4, 200)
    te_x, te_y = rng.normal(size=(400, 10)), rng.integers(0, 4, 400)
    out = linear_probe(tr_x, tr_y, te_x, te_y, Cs=(0.1, 1.0))
    assert 0.15 < out["top1"] < 0.35  # chance = 0.25


def test_linear_probe_explicit_validation_split_picks_best_c():
    tr_x, tr_y = _blobs(30, seed=1, noise_seed=1)
    va_x, va_y = _blobs(10, seed=1, noise_seed=2)
    # both Cs classify the validation blobs perfectly -> the first in Cs order wins the tie
    out = linear_probe(tr_x, tr_y, tr_x, tr_y, val_x=va_x, val_y=va_y, Cs=(1.0, 0.5))
    assert out["val_top1"] == 1.0 and out["C"] == 1.0
    assert linear_probe(tr_x, tr_y, tr_x, tr_y, val_x=va_x, val_y=va_y, Cs=(0.5, 1.0))["C"] == 0.5
    # validation labels permuted: the (perfect) predictions are now all wrong -> scored on val_y
    shuffled = (va_y + 1) % 3
    assert linear_probe(tr_x, tr_y, tr_x, tr_y, val_x=va_x, val_y=shuffled, Cs=(1.0,))["val_top1"] == 0.0
    with pytest.raises(ValueError, match="both"):
        linear_probe(tr_x, tr_y, tr_x, tr_y, val_x=va_x)


def test_linear_probe_bad_input():
    x, y = _blobs(10)
    with pytest.raises(DataError, match="single class"):
        linear_probe(x[:10], y[:10], x, y, val_x=x[:5], val_y=y[:5])
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        linear_probe(bad, y, x, y)
    with pytest.raises(DataError, match="entries"):
        linear_probe(x, y[:-1], x, y)
    with pytest.raises(DataError, match="stratified"):
        linear_probe(x[:21], y[:21], x, y)  # class 2 has a single sample
    with pytest.raises(DataError, match="feature dimensions"):
        linear_probe(x, y, x[:, :3], y)


# train: a=(1,0) class 0, b=(cos10°, sin10°) class 1, c=(cos20°, sin20°) class 1, d=(0,1) class 0
_DEG = np.pi / 180
KNN_TRAIN = np.array([[1, 0], [np.cos(10 * _DEG), np.sin(10 * _DEG)], [np.cos(20 * _DEG), np.sin(20 * _DEG)], [0, 1]])
KNN_TRAIN_Y = np.array([0, 1, 1, 0])
KNN_TEST = np.array([[2.0, 0.0], [0.0, 3.0]])  # cosine: norms do not matter
KNN_TEST_Y = np.array([0, 0])


def test_knn_by_hand():
    # q1=(1,0), k=3: neighbours a(0, s=1), b(1, s=.9848), c(1, s=.9397)
    #   T=.07: class 0 e^14.286 vs class 1 e^14.069 + e^13.424 = e^14.286 * (.805 + .423) -> class 1 (wrong)
    #   T=.01: e^100 vs e^98.48 + e^93.97 -> class 0 (right); majority: 2 votes class 1 (wrong)
    # q2=(0,1), k=3: neighbours d(0, s=1), c(1, s=.342), b(1, s=.174)
    #   any small T -> class 0 (right); majority -> class 1 (wrong)
    run = lambda **kw: knn_classify(KNN_TRAIN, KNN_TRAIN_Y, KNN_TEST, KNN_TEST_Y, k=3, **kw)["top1"]
    assert run(temperature=0.07) == pytest.approx(0.5)
    assert run(temperature=0.01) == pytest.approx(1.0)
    assert run(weighted=False) == pytest.approx(0.0)
    # k > N is clipped to 4: 2 votes each -> tie goes to the smaller class 0 -> both right
    assert knn_classify(KNN_TRAIN, KNN_TRAIN_Y, KNN_TEST, KNN_TEST_Y, k=100, weighted=False)["top1"] == 1.0
    # chunking does not change anything
    assert knn_classify(KNN_TRAIN, KNN_TRAIN_Y, KNN_TEST, KNN_TEST_Y, k=3, temperature=0.01, chunk_size=1)["top1"] == 1.0


def test_knn_bad_input():
    with pytest.raises(DataError, match="empty"):
        knn_classify(np.zeros((0, 2)), [], KNN_TEST, KNN_TEST_Y)
    with pytest.raises(DataError, match="feature dimensions"):
        knn_classify(KNN_TRAIN, KNN_TRAIN_Y, np.ones((2, 3)), KNN_TEST_Y)
    with pytest.raises(ValueError, match="temperature"):
        knn_classify(KNN_TRAIN, KNN_TRAIN_Y, KNN_TEST, KNN_TEST_Y, temperature=0)


def test_kfold_linear_probe_five_folds():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 6))
    y = np.tile(np.arange(2), 50)  # random features: per-fold accuracies differ
    folds = np.repeat([5, 1, 2, 3, 4], 20)
    out = kfold_linear_probe(x, y, folds, Cs=(0.1, 1.0))
    assert len(out["per_fold"]) == 5 and out["fold_ids"] == [1, 2, 3, 4, 5]
    assert out["mean_top1"] == pytest.approx(np.mean(out["per_fold"]))
    # fold 1 (second block of 20) is tested after training on the other 80 samples
    direct = linear_probe(np.delete(x, np.s_[20:40], 0), np.delete(y, np.s_[20:40]), x[20:40], y[20:40], Cs=(0.1, 1.0))
    assert out["per_fold"][0] == direct["top1"] and out["per_fold_C"][0] == direct["C"]
    with pytest.raises(DataError, match="two folds"):
        kfold_linear_probe(x, y, np.zeros(100))
    with pytest.raises(ValueError, match="val_x"):
        kfold_linear_probe(x, y, folds, val_x=x)
