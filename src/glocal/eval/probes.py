"""Frozen-feature classifiers: linear probe, cosine kNN, k-fold (ESC-50) linear probe (spec 8.2).

Inputs are numpy arrays or torch tensors of precomputed features; labels may be ints or strings.
Bad data raises :class:`glocal.errors.DataError`; misuse of arguments raises :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from glocal.errors import DataError

from .metrics import _as_float_array, _as_labels

__all__ = ["linear_probe", "knn_classify", "knn_predict", "kfold_linear_probe"]


def _xy(x: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    xa = _as_float_array(x, f"{name}_x", 2)
    ya = _as_labels(y, f"{name}_y", xa.shape[0])
    return xa, ya


def _check_dims(*arrays: tuple[str, np.ndarray]) -> None:
    d = arrays[0][1].shape[1]
    for name, a in arrays[1:]:
        if a.shape[1] != d:
            raise DataError(f"{name} has {a.shape[1]} feature dimensions but {arrays[0][0]} has {d}")


def _fit_predict(
    x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, C: float, seed: int, max_iter: int
) -> np.ndarray:
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, random_state=seed)
    clf.fit(scaler.transform(x), y)
    return clf.predict(scaler.transform(x_eval))


def linear_probe(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    *,
    val_x: Any = None,
    val_y: Any = None,
    val_fraction: float = 0.2,
    Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0),
    seed: int = 0,
    max_iter: int = 5000,
) -> dict[str, float]:
    """Logistic-regression linear probe with the inverse regularisation ``C`` chosen on validation.

    Features are standardised (mean/std fitted on the training data of each fit). For each ``C``
    a multinomial L-BFGS logistic regression is fitted on the training split and scored (top-1) on
    the validation split — ``(val_x, val_y)`` if given, else a stratified ``val_fraction`` split of
    the training set drawn with ``seed``. The best ``C`` (first in ``Cs`` order on ties) is then
    refitted on train + val and evaluated on the test set. Deterministic for a given ``seed``.

    Args:
        train_x: ``(N, D)`` training features; train_y: ``(N,)`` labels.
        test_x: ``(M, D)`` test features; test_y: ``(M,)`` labels.
        val_x, val_y: optional ``(V, D)`` / ``(V,)`` validation split (both or neither).
        val_fraction: held-out fraction of train when no validation split is given, in ``(0, 1)``.
        Cs: candidate values of ``C`` (> 0).
        seed: seed of the validation split and the solver.
        max_iter: L-BFGS iteration cap.

    Returns:
        ``{"top1": test accuracy, "C": chosen C, "val_top1": validation accuracy at that C}``.
    """
    if (val_x is None) != (val_y is None):
        raise ValueError("give both val_x and val_y, or neither")
    Cs = tuple(float(c) for c in Cs)
    if not Cs or any(not np.isfinite(c) or c <= 0 for c in Cs):
        raise ValueError(f"Cs must be a non-empty list of positive numbers; got {Cs!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int; got {max_iter!r}")

    tr_x, tr_y = _xy(train_x, train_y, "train")
    te_x, te_y = _xy(test_x, test_y, "test")
    if val_x is None:
        try:
            fit_x, va_x, fit_y, va_y = train_test_split(
                tr_x, tr_y, test_size=val_fraction, stratify=tr_y, random_state=seed
            )
        except ValueError as exc:
            raise DataError(
                f"cannot draw a stratified {val_fraction:.0%} validation split from the training set "
                f"({tr_x.shape[0]} samples, {np.unique(tr_y).size} classes): {exc}. "
                "Pass val_x/val_y explicitly or use more samples per class."
            ) from exc
    else:
        va_x, va_y = _xy(val_x, val_y, "val")
        fit_x, fit_y = tr_x, tr_y
    _check_dims(("train_x", tr_x), ("test_x", te_x), ("val_x", va_x))
    if np.unique(fit_y).size < 2:
        raise DataError("the training split has a single class; a classifier needs at least two")

    best_c, best_acc = Cs[0], -1.0
    for c in Cs:
        acc = float((_fit_predict(fit_x, fit_y, va_x, c, seed, max_iter) == va_y).mean())
        if acc > best_acc:
            best_c, best_acc = c, acc
    all_x = np.concatenate([fit_x, va_x])
    all_y = np.concatenate([fit_y, va_y])
    top1 = float((_fit_predict(all_x, all_y, te_x, best_c, seed, max_iter) == te_y).mean())
    return {"top1": top1, "C": best_c, "val_top1": best_acc}


def knn_classify(train_x: Any, train_y: Any, test_x: Any, test_y: Any, **options: Any) -> dict[str, float]:
    """Cosine-similarity kNN classifier (InstDisc-style weighted voting): the test top-1 of
    :func:`knn_predict`.

    Args:
        train_x: ``(N, D)``; train_y: ``(N,)``; test_x: ``(M, D)``; test_y: ``(M,)``.
        options: ``k``, ``temperature``, ``weighted``, ``chunk_size`` of :func:`knn_predict`.

    Returns:
        ``{"top1": float}``.
    """
    te_x, te_y = _xy(test_x, test_y, "test")
    return {"top1": float((knn_predict(train_x, train_y, te_x, **options) == te_y).mean())}


def knn_predict(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    *,
    k: int = 20,
    temperature: float = 0.07,
    weighted: bool = True,
    chunk_size: int = 4096,
) -> np.ndarray:
    """Predicted labels ``(M,)`` of a cosine-similarity kNN classifier (InstDisc-style voting).

    Each test sample takes its ``k`` most cosine-similar training samples (``k`` clipped to the
    training-set size). With ``weighted=True`` neighbour ``j`` votes for its class with weight
    ``exp(s_j / temperature)``; otherwise every neighbour has weight 1 (majority vote). The class
    with the largest total wins; exact ties go to the smallest class (in sorted label order).
    Test samples are processed ``chunk_size`` at a time.

    Args:
        train_x: ``(N, D)``; train_y: ``(N,)``; test_x: ``(M, D)``.
        k: neighbours per test sample.
        temperature: softmax temperature of the vote weights (> 0).
        weighted: temperature-weighted (True) or plain majority (False) voting.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int; got {chunk_size!r}")
    tr_x, tr_y = _xy(train_x, train_y, "train")
    te_x = _as_float_array(test_x, "test_x", 2)
    _check_dims(("train_x", tr_x), ("test_x", te_x))

    classes, codes = np.unique(tr_y, return_inverse=True)
    codes_t = torch.from_numpy(codes.reshape(-1).astype(np.int64))
    n_cls = classes.size
    kk = min(int(k), tr_x.shape[0])
    g = F.normalize(torch.from_numpy(tr_x), dim=1)
    q_all = F.normalize(torch.from_numpy(te_x), dim=1)
    pred = np.empty(te_x.shape[0], dtype=np.int64)
    with torch.no_grad():
        for s in range(0, q_all.shape[0], chunk_size):
            q = q_all[s : s + chunk_size]
            sims, idx = torch.topk(q @ g.T, kk, dim=1)
            w = torch.exp(sims / temperature) if weighted else torch.ones_like(sims)
            votes = torch.zeros(q.shape[0], n_cls, dtype=w.dtype).scatter_add_(1, codes_t[idx], w)
            pred[s : s + q.shape[0]] = votes.argmax(dim=1).numpy()  # first maximum on ties
    return classes[pred]


def kfold_linear_probe(x: Any, y: Any, folds: Any, **linear_probe_kwargs: Any) -> dict[str, Any]:
    """Leave-one-fold-out linear probe (ESC-50: 5 predefined folds, report the mean accuracy).

    For every fold id ``f`` (sorted), :func:`linear_probe` is trained on the samples of the other
    folds (its validation split drawn from them) and tested on fold ``f``.

    Args:
        x: ``(N, D)`` features; y: ``(N,)`` labels; folds: ``(N,)`` fold ids (at least two distinct).
        **linear_probe_kwargs: forwarded to :func:`linear_probe` (not ``val_x`` / ``val_y``).

    Returns:
        ``{"mean_top1": float, "per_fold": [top1 per fold], "fold_ids": [...], "per_fold_C": [...]}``.
    """
    if "val_x" in linear_probe_kwargs or "val_y" in linear_probe_kwargs:
        raise ValueError("kfold_linear_probe draws validation splits itself; do not pass val_x / val_y")
    xa = _as_float_array(x, "x", 2)
    ya = _as_labels(y, "y", xa.shape[0])
    fa = _as_labels(folds, "folds", xa.shape[0])
    fold_ids = np.unique(fa)
    if fold_ids.size < 2:
        raise DataError(f"k-fold evaluation needs at least two folds; got {fold_ids.size}")
    per_fold: list[float] = []
    per_c: list[float] = []
    for f in fold_ids:
        test = fa == f
        res = linear_probe(xa[~test], ya[~test], xa[test], ya[test], **linear_probe_kwargs)
        per_fold.append(res["top1"])
        per_c.append(res["C"])
    return {
        "mean_top1": float(np.mean(per_fold)),
        "per_fold": per_fold,
        "fold_ids": fold_ids.tolist(),
        "per_fold_C": per_c,
    }
