"""Linear classifiers on frozen features with the regularisation chosen on a validation split.

Shared by the linear probe, sound classification, event localisation, temporal action
localisation and deepfake detection. Features are standardised (mean / std of the fitting data);
the classifier is a multinomial logistic regression (L-BFGS) or a linear SVM (liblinear,
squared hinge, one-vs-rest). ``C`` is picked on the validation split, then the model is refitted on
train + validation (the protocol of :func:`glocal.eval.probes.linear_probe`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from ..errors import DataError
from .metrics import _as_float_array, _as_labels

__all__ = ["LinearClassifier", "fit_linear", "DEFAULT_CS"]

DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
Classifier = Literal["logreg", "svm"]


def _make(classifier: str, C: float, seed: int, max_iter: int, class_weight: str | None) -> Any:
    if classifier == "logreg":
        return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, random_state=seed,
                                  class_weight=class_weight)
    if classifier == "svm":
        return LinearSVC(C=C, dual="auto", max_iter=max_iter, random_state=seed, class_weight=class_weight)
    raise ValueError(f"classifier must be 'logreg' or 'svm'; got {classifier!r}")


@dataclass
class LinearClassifier:
    """A fitted standardiser + linear model; ``classes`` are the sorted training labels."""

    scaler: StandardScaler
    model: Any
    classes: np.ndarray
    C: float
    val_top1: float | None
    note: str = ""

    def predict(self, x: Any) -> np.ndarray:
        """Predicted labels ``(N,)`` for features ``(N, D)``."""
        return self.model.predict(self.scaler.transform(_as_float_array(x, "x", 2)))

    def scores(self, x: Any) -> np.ndarray:
        """Class scores ``(N, K)`` (probabilities for logreg, margins for the SVM), columns = ``classes``."""
        z = self.scaler.transform(_as_float_array(x, "x", 2))
        if isinstance(self.model, LogisticRegression):
            return self.model.predict_proba(z)
        d = self.model.decision_function(z)
        return np.stack([-d, d], axis=1) if d.ndim == 1 else d

    def positive_score(self, x: Any, positive: Any = 1) -> np.ndarray:
        """Score ``(N,)`` of class ``positive`` (higher = more likely), for AUC and thresholds."""
        idx = np.flatnonzero(self.classes == positive)
        if idx.size == 0:
            raise DataError(f"class {positive!r} was not in the training labels {self.classes.tolist()}")
        return self.scores(x)[:, int(idx[0])]


def _fit(x: np.ndarray, y: np.ndarray, classifier: str, C: float, seed: int, max_iter: int,
         class_weight: str | None) -> tuple[StandardScaler, Any]:
    scaler = StandardScaler().fit(x)
    model = _make(classifier, C, seed, max_iter, class_weight)
    # small problems: one BLAS thread (multi-threaded BLAS is much slower on busy small machines)
    with warnings.catch_warnings(), threadpool_limits(limits=1 if x.size < 5_000_000 else None):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(x), y)
    return scaler, model


def fit_linear(
    train_x: Any,
    train_y: Any,
    val_x: Any = None,
    val_y: Any = None,
    *,
    classifier: Classifier = "logreg",
    Cs: Sequence[float] = DEFAULT_CS,
    seed: int = 0,
    max_iter: int = 5000,
    val_fraction: float = 0.2,
    class_weight: str | None = None,
) -> LinearClassifier:
    """Fit a linear classifier, ``C`` chosen on validation data.

    Validation data: ``(val_x, val_y)`` when given and non-empty; else a stratified
    ``val_fraction`` split of the training data when every class has at least two samples; else
    (tiny data) ``C = 1`` without selection (recorded in ``note``).

    Args:
        train_x: ``(N, D)`` features; train_y: ``(N,)`` labels (at least two classes).
        val_x, val_y: optional ``(V, D)`` / ``(V,)``.
        classifier: ``"logreg"`` or ``"svm"``.
        Cs: candidate inverse regularisation strengths (> 0).
        class_weight: ``None`` or ``"balanced"``.

    Returns:
        the fitted :class:`LinearClassifier` (refitted on train + validation).
    """
    if classifier not in ("logreg", "svm"):
        raise ValueError(f"classifier must be 'logreg' or 'svm'; got {classifier!r}")
    Cs = tuple(float(c) for c in Cs)
    if not Cs or any(not np.isfinite(c) or c <= 0 for c in Cs):
        raise ValueError(f"Cs must be a non-empty list of positive numbers; got {Cs!r}")
    x = _as_float_array(train_x, "train_x", 2)
    y = _as_labels(train_y, "train_y", x.shape[0])
    if np.unique(y).size < 2:
        raise DataError(f"the training data has a single class ({np.unique(y).tolist()}); a classifier needs two")
    note = ""
    if val_x is not None and val_y is not None and len(val_y) > 0:
        vx = _as_float_array(val_x, "val_x", 2)
        vy = _as_labels(val_y, "val_y", vx.shape[0])
        if vx.shape[1] != x.shape[1]:
            raise DataError(f"val_x has {vx.shape[1]} feature dimensions but train_x has {x.shape[1]}")
        fx, fy = x, y
    else:
        _, counts = np.unique(y, return_counts=True)
        n_val = int(np.ceil(val_fraction * y.size))
        if counts.min() >= 2 and counts.size <= n_val <= y.size - counts.size:
            fx, vx, fy, vy = train_test_split(x, y, test_size=n_val, stratify=y, random_state=seed)
        else:
            scaler, model = _fit(x, y, classifier, 1.0, seed, max_iter, class_weight)
            return LinearClassifier(scaler, model, np.asarray(model.classes_), 1.0, None,
                                    note="too few samples for a validation split: C=1 without selection")
    if np.unique(fy).size < 2:
        raise DataError("the training data (without its validation part) has a single class")
    best_c, best_acc = Cs[0], -1.0
    for c in Cs:
        scaler, model = _fit(fx, fy, classifier, c, seed, max_iter, class_weight)
        acc = float((model.predict(scaler.transform(vx)) == vy).mean())
        if acc > best_acc:
            best_c, best_acc = c, acc
    all_x, all_y = np.concatenate([fx, vx]), np.concatenate([fy, vy])
    scaler, model = _fit(all_x, all_y, classifier, best_c, seed, max_iter, class_weight)
    return LinearClassifier(scaler, model, np.asarray(model.classes_), best_c, best_acc, note)
