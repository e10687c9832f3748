"""Localisation scores that stay meaningful on small objects: pointing game, mass share, fixed-threshold cIoU.

The median-binarised cIoU of :func:`glocal.eval.metrics.localization_metrics` (the LVS reference rule)
keeps the top 50 % of a map's pixels, so on a frame whose ground truth covers a fraction ``A < 0.5``
of the crop ``cIoU <= A / 0.5 = 2A``: below ``A = 0.25`` even a perfect continuous map cannot reach
cIoU 0.5. The scores here have no such ceiling:

* **pointing** (:func:`pointing_hits`): the ground-truth value at the map's peak. Ties: every pixel
  within ``1e-6`` of the map's range below its maximum is a peak, and the credit is the mean
  ground-truth value over the tied peaks (for a binary ground truth: the fraction of tied maxima
  inside the source). A constant map therefore scores the ground truth's area fraction — the
  chance of a random point. Soft (Flickr consensus) ground truth gives partial credit.
* **mass share** (:func:`mass_share`): ``Σ (m · gt) / Σ m`` with ``m = map - min(map)`` (min-subtracted,
  non-negative). A constant map (``m = 0``) counts as uniform and scores the area fraction.
* **cIoU at a fixed threshold** (:func:`threshold_ciou`): the map min-max normalised to ``[0, 1]``
  (a constant map to all zeros), binarised ``norm >= t``, then the usual
  ``cIoU = Σ(pred·gt) / (Σ gt + Σ(pred·[gt = 0]))``.

Every function takes maps already brought to the ground-truth size (:func:`upsample`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .metrics import LOCALIZATION_THRESHOLDS, _as_float_array, _check_gt, _trapezoid, localization_metrics

__all__ = ["FIXED_THRESHOLDS", "PEAK_TOLERANCE", "upsample", "pointing_hits", "mass_share", "threshold_ciou",
           "gt_area", "localization_scores", "centre_prior_maps", "oracle_maps"]

#: fixed binarisation thresholds of the min-max normalised map
FIXED_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
#: pixels within this fraction of the map's range below its maximum count as tied peaks
PEAK_TOLERANCE = 1e-6
#: weight of the tie-breaking ramp added to the ground truth in :func:`oracle_maps`
ORACLE_EPSILON = 1e-6


def upsample(heatmaps: Any, size: tuple[int, int]) -> np.ndarray:
    """``(N, h, w)`` maps -> ``(N, H, W)`` float64, bilinear with half-pixel centres (unchanged if equal)."""
    h = _as_float_array(heatmaps, "heatmaps", 3)
    if h.shape[1:] == tuple(size):
        return h
    return F.interpolate(torch.from_numpy(h)[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0].numpy()


def _pair(heatmaps: Any, gts: Any, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(N, H, W)`` float64 maps and ground truths of the same shape."""
    h = _as_float_array(heatmaps, "heatmaps", 3)
    g = _as_float_array(gts, "gts", 3)
    if h.shape != g.shape:
        raise DataError(f"heatmaps {h.shape} and gts {g.shape} differ in shape; upsample the maps first")
    if allow_empty:
        if (g < 0).any() or (g > 1).any():
            raise DataError("gts values must lie in [0, 1]")
    else:
        _check_gt(g, "gts")
    return h, g


def pointing_hits(heatmaps: Any, gts: Any, *, allow_empty: bool = False) -> np.ndarray:
    """Pointing-game credit per map (see module doc for ties).

    Args:
        heatmaps: ``(N, H, W)`` scores (higher = more likely the source).
        gts: ``(N, H, W)`` ground truth in ``[0, 1]`` (binary mask / box, or Flickr consensus);
            non-empty unless ``allow_empty`` (distractors: an empty one simply scores 0).

    Returns:
        ``(N,)`` credits in ``[0, 1]`` (1 / 0 for a binary ground truth and a unique peak).
    """
    h, g = _pair(heatmaps, gts, allow_empty)
    n = h.shape[0]
    flat, gt = h.reshape(n, -1), g.reshape(n, -1)
    hi = flat.max(axis=1, keepdims=True)
    span = hi - flat.min(axis=1, keepdims=True)
    peaks = flat >= hi - PEAK_TOLERANCE * span
    return (peaks * gt).sum(axis=1) / peaks.sum(axis=1)


def mass_share(heatmaps: Any, gts: Any) -> np.ndarray:
    """Share of the min-subtracted map's mass on the ground truth, per map.

    Args:
        heatmaps: ``(N, H, W)`` scores.
        gts: ``(N, H, W)`` non-empty ground truth in ``[0, 1]``.

    Returns:
        ``(N,)`` shares ``Σ(m·gt) / Σ m`` in ``[0, 1]``, ``m = map - min(map)``; a constant map scores
        ``mean(gt)`` (uniform mass).
    """
    h, g = _pair(heatmaps, gts)
    n = h.shape[0]
    m = h.reshape(n, -1) - h.reshape(n, -1).min(axis=1, keepdims=True)
    gt = g.reshape(n, -1)
    total = m.sum(axis=1)
    uniform = gt.mean(axis=1)
    return np.where(total > 0, (m * gt).sum(axis=1) / np.where(total > 0, total, 1.0), uniform)


def _normalise(h: np.ndarray) -> np.ndarray:
    """Min-max normalise each row of ``(N, P)`` to ``[0, 1]``; a constant row becomes all zeros."""
    lo = h.min(axis=1, keepdims=True)
    span = h.max(axis=1, keepdims=True) - lo
    return np.where(span > 0, (h - lo) / np.where(span > 0, span, 1.0), 0.0)


def threshold_ciou(heatmaps: Any, gts: Any, threshold: float) -> np.ndarray:
    """cIoU per map with the normalised map binarised at ``norm >= threshold``.

    Args:
        heatmaps: ``(N, H, W)`` scores.
        gts: ``(N, H, W)`` non-empty ground truth in ``[0, 1]``.
        threshold: in ``(0, 1]``.

    Returns:
        ``(N,)`` cIoU values in ``[0, 1]``.
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1]; got {threshold!r}")
    h, g = _pair(heatmaps, gts)
    n = h.shape[0]
    pred = (_normalise(h.reshape(n, -1)) >= float(threshold)).astype(np.float64)
    gt = g.reshape(n, -1)
    return (pred * gt).sum(axis=1) / (gt.sum(axis=1) + (pred * (gt == 0)).sum(axis=1))


def gt_area(gts: Any) -> np.ndarray:
    """``(N,)`` area fraction of each ``(N, H, W)`` ground truth (mean value: consensus 0.5 counts half)."""
    g = _as_float_array(gts, "gts", 3)
    return g.reshape(g.shape[0], -1).mean(axis=1)


def _success(scores: np.ndarray, prefix: str, suffix: str) -> dict[str, float]:
    success = (scores[None, :] >= LOCALIZATION_THRESHOLDS[:, None]).mean(axis=1)
    return {f"{prefix}cIoU@0.5{suffix}": float((scores >= 0.5).mean()),
            f"{prefix}AUC{suffix}": _trapezoid(success, LOCALIZATION_THRESHOLDS),
            f"{prefix}mean_cIoU{suffix}": float(scores.mean())}


def localization_scores(heatmaps: Any, gts: Any, thresholds: Sequence[float] = FIXED_THRESHOLDS) -> dict[str, float]:
    """Every localisation score of a set of maps against their ground truth.

    Args:
        heatmaps: ``(N, h, w)`` maps (upsampled bilinearly to the ground-truth size).
        gts: ``(N, H, W)`` non-empty ground truth in ``[0, 1]``.
        thresholds: fixed binarisation thresholds of the normalised map.

    Returns:
        ``cIoU@0.5``, ``AUC``, ``mean_cIoU`` (median rule, as the reference code), ``pointing``,
        ``mass_share`` and, per threshold ``t``, ``cIoU@0.5_t{t}``, ``AUC_t{t}``, ``mean_cIoU_t{t}``.
    """
    g = _as_float_array(gts, "gts", 3)
    h = upsample(heatmaps, g.shape[1:])
    out = dict(localization_metrics(h, g, resize_to=None))
    out["pointing"] = float(pointing_hits(h, g).mean())
    out["mass_share"] = float(mass_share(h, g).mean())
    for t in thresholds:
        out.update(_success(threshold_ciou(h, g, t), "", f"_t{t:g}"))
    return out


def centre_prior_maps(n: int, height: int, width: int) -> np.ndarray:
    """``(n, H, W)`` centre-prior baseline: ``1 - distance to the crop centre / the largest such distance``."""
    ys = (np.arange(height) + 0.5) / height - 0.5
    xs = (np.arange(width) + 0.5) / width - 0.5
    d = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return np.broadcast_to(1.0 - d / d.max(), (n, height, width)).copy()


def oracle_maps(gts: Any) -> np.ndarray:
    """The ground truth as the heat map, made tie-free like a real continuous map.

    ``gt + ORACLE_EPSILON * ramp`` with ``ramp = 1 - distance to the ground truth's centroid /
    the largest such distance`` in ``[0, 1]``: the peak lies on the ground truth (pointing 1, the
    strongest ground-truth pixels first), every fixed threshold recovers the ground truth, and the
    median rule keeps (up to pixels tied at equal distance) the top half of the pixels, as it does
    for a model's map (the raw
    binary ground truth would tie at the median and let the whole mask through, a cIoU no
    continuous map can reach).

    Args:
        gts: ``(N, H, W)`` non-empty ground truth in ``[0, 1]``.

    Returns:
        ``(N, H, W)`` float64 maps.
    """
    g = _as_float_array(gts, "gts", 3)
    _check_gt(g, "gts")
    n, height, width = g.shape
    ys = np.arange(height, dtype=np.float64)[None, :, None]
    xs = np.arange(width, dtype=np.float64)[None, None, :]
    mass = g.sum(axis=(1, 2))[:, None, None]
    cy = (g * ys).sum(axis=(1, 2), keepdims=True) / mass
    cx = (g * xs).sum(axis=(1, 2), keepdims=True) / mass
    d = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
    ramp = 1.0 - d / d.reshape(n, -1).max(axis=1)[:, None, None].clip(min=1e-12)
    return g + ORACLE_EPSILON * ramp
