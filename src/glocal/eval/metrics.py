"""Evaluation metrics over precomputed features / predictions (spec section 8).

Everything here is a pure function of numpy arrays or torch tensors (tensors are detached and moved
to the CPU); no model code. Bad data (empty arrays, mismatched lengths, NaN / inf values, a binary
task with a single class, an empty ground-truth mask) raises :class:`glocal.errors.DataError`;
programming misuse (a non-positive ``k``, a bad ``chunk_size``) raises :class:`ValueError`.

Contents
--------
* Retrieval: :func:`recall_at_k` (cosine similarity, chunked running top-k).
* Sound-source localisation (Flickr-SoundNet / VGG-SS protocol): :func:`box_mask`,
  :func:`consensus_mask`, :func:`ciou`, :func:`localization_metrics`.
* Classification: :func:`binary_auc` (DFDC), :func:`top1_accuracy`, :func:`segment_accuracy` (AVE).
* Temporal localisation (ActivityNet): :func:`temporal_iou`, :func:`average_recall_at_k`,
  :func:`ar_an_curve`, :func:`ar_an_auc`, :func:`mean_average_precision`.

All rates are fractions in ``[0, 1]`` except :func:`ar_an_auc`, which follows ActivityNet and is on a
``[0, 100]`` scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glocal.errors import DataError

__all__ = [
    "ACTIVITYNET_TIOU_THRESHOLDS",
    "LOCALIZATION_THRESHOLDS",
    "recall_at_k",
    "box_mask",
    "consensus_mask",
    "ciou",
    "localization_metrics",
    "binary_auc",
    "top1_accuracy",
    "segment_accuracy",
    "temporal_iou",
    "average_recall_at_k",
    "ar_an_curve",
    "ar_an_auc",
    "mean_average_precision",
]

#: ActivityNet tIoU thresholds 0.5, 0.55, ..., 0.95 (``np.linspace``: exact decimal values, unlike
#: ``np.arange(0.5, 1.0, 0.05)`` whose accumulated rounding makes e.g. 0.7 -> 0.7000000000000002).
ACTIVITYNET_TIOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, 10)
ACTIVITYNET_TIOU_THRESHOLDS.setflags(write=False)

#: Success-rate thresholds 0, 0.05, ..., 1.0 of the localisation AUC (``i / 20``, exact decimals).
LOCALIZATION_THRESHOLDS: np.ndarray = np.arange(21) / 20.0
LOCALIZATION_THRESHOLDS.setflags(write=False)


# --------------------------------------------------------------------------------------------------
# input helpers
# --------------------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_float_array(x: Any, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """A finite, non-empty float64 array with ``ndim`` dimensions (or one of them)."""
    arr = _to_numpy(x)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise DataError(f"{name} must have {' or '.join(map(str, dims))} dimensions; got shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or inf values")
    return arr


def _as_labels(y: Any, name: str, n: int | None = None) -> np.ndarray:
    """A non-empty 1-D label array (any dtype with equality), optionally of length ``n``."""
    arr = _to_numpy(y)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{name} is empty")
    if n is not None and arr.shape[0] != n:
        raise DataError(f"{name} has {arr.shape[0]} entries but the matching array has {n} rows")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or inf labels")
    return arr


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid rule, identical to ``np.trapz(y, x)`` (removed in numpy 2.x as ``trapz``)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


# --------------------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------------------
def _as_torch_features(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dim() != 2:
            raise DataError(f"{name} must have shape (N, D); got {tuple(t.shape)}")
        if t.numel() == 0:
            raise DataError(f"{name} is empty (shape {tuple(t.shape)})")
        if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8)):
            raise DataError(f"{name} must be numeric; got dtype {t.dtype}")
        t = t.to(torch.float32)
        if not torch.isfinite(t).all():
            raise DataError(f"{name} contains NaN or inf values")
        return t
    return torch.from_numpy(_as_float_array(x, name, 2).astype(np.float32))


def recall_at_k(
    query: Any,
    query_labels: Any,
    gallery: Any,
    gallery_labels: Any,
    ks: Sequence[int] = (1, 5, 10, 20, 50),
    *,
    chunk_size: int = 4096,
    exclude_self: bool = False,
) -> dict[str, float]:
    """Class-level retrieval recall at ``k`` with cosine similarity (spec 8.2 "Video retrieval").

    A query is a hit at ``k`` if at least one of its ``k`` most similar gallery items has the
    query's label. Features are L2-normalised; the similarity matrix is never materialised: queries
    are processed ``chunk_size`` at a time and the gallery ``chunk_size`` columns at a time, keeping
    a running top-``max(ks)`` (``torch.topk``) per query, so memory is ``O(chunk_size**2)``.
    Ties at the top-k boundary are broken arbitrarily (as ``torch.topk`` does).

    Args:
        query: ``(Nq, D)`` query features.
        query_labels: ``(Nq,)`` labels (any type with equality, e.g. ints or strings).
        gallery: ``(Ng, D)`` gallery features.
        gallery_labels: ``(Ng,)`` labels.
        ks: cut-offs; each ``k`` larger than the gallery (``Ng``, or ``Ng - 1`` with
            ``exclude_self``) is clipped to it. The dict keys keep the requested ``k``.
        chunk_size: queries (and gallery items) per block.
        exclude_self: query ``i`` and gallery item ``i`` are the same video (leave-one-out
            retrieval within one set); requires ``Nq == Ng`` and drops item ``i`` from query ``i``'s
            ranking.

    Returns:
        ``{"R@1": float, "R@5": ..., ...}``: fractions of queries with a hit, in ``[0, 1]``.
    """
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must not be empty")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"every k must be a positive int; got {k!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int; got {chunk_size!r}")

    q = _as_torch_features(query, "query")
    g = _as_torch_features(gallery, "gallery")
    nq, ng = q.shape[0], g.shape[0]
    if q.shape[1] != g.shape[1]:
        raise DataError(f"query and gallery feature sizes differ: {q.shape[1]} vs {g.shape[1]}")
    ql = _as_labels(query_labels, "query_labels", nq)
    gl = _as_labels(gallery_labels, "gallery_labels", ng)
    if exclude_self and nq != ng:
        raise ValueError(f"exclude_self=True needs query and gallery of the same size; got {nq} and {ng}")
    n_candidates = ng - 1 if exclude_self else ng
    if n_candidates < 1:
        raise DataError("the gallery has no item to retrieve (exclude_self with a single item)")

    try:
        codes = np.unique(np.concatenate([ql, gl]), return_inverse=True)[1].reshape(-1)
    except TypeError as exc:  # unorderable mixed label types
        raise DataError(f"query / gallery labels cannot be compared: {exc}") from exc
    q_codes = torch.from_numpy(codes[:nq].astype(np.int64))
    g_codes = torch.from_numpy(codes[nq:].astype(np.int64))

    kmax = min(max(ks), n_candidates)
    q = F.normalize(q, dim=1)
    g = F.normalize(g, dim=1)
    # first_hit[i] = 0-based rank of the first same-label item within the top kmax (kmax if none)
    first_hit = torch.empty(nq, dtype=torch.int64)
    ranks = torch.arange(kmax, dtype=torch.int64)
    with torch.no_grad():
        for q0 in range(0, nq, chunk_size):
            qc = q[q0 : q0 + chunk_size]
            c = qc.shape[0]
            best_val = torch.empty(c, 0)
            best_idx = torch.empty(c, 0, dtype=torch.int64)
            for g0 in range(0, ng, chunk_size):
                sims = qc @ g[g0 : g0 + chunk_size].T  # (c, gc)
                gc = sims.shape[1]
                idx = torch.arange(g0, g0 + gc, dtype=torch.int64).expand(c, gc)
                if exclude_self:
                    rows = torch.arange(q0, q0 + c)
                    local = rows - g0
                    inside = (local >= 0) & (local < gc)
                    sims[inside.nonzero(as_tuple=True)[0], local[inside]] = float("-inf")
                vals = torch.cat([best_val, sims], dim=1)
                idxs = torch.cat([best_idx, idx], dim=1)
                kk = min(kmax, vals.shape[1])
                best_val, pos = torch.topk(vals, kk, dim=1, largest=True, sorted=True)
                best_idx = torch.gather(idxs, 1, pos)
            hits = g_codes[best_idx] == q_codes[q0 : q0 + c, None]  # (c, kmax), in rank order
            first_hit[q0 : q0 + c] = torch.where(hits, ranks, torch.full_like(ranks, kmax)).min(dim=1).values
    out: dict[str, float] = {}
    for k in ks:
        out[f"R@{k}"] = float((first_hit < min(int(k), kmax)).double().mean())
    return out


# --------------------------------------------------------------------------------------------------
# sound-source localisation
# --------------------------------------------------------------------------------------------------
def _check_size(height: int, width: int) -> None:
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")


def box_mask(boxes: Any, height: int, width: int) -> np.ndarray:
    """Binary union mask of boxes given in normalised ``(x0, y0, x1, y1)`` coordinates.

    Box edges are scaled to pixels (``x * width``, ``y * height``) and rounded to the nearest pixel
    edge; pixel rows ``[round(y0*H), round(y1*H))`` and columns ``[round(x0*W), round(x1*W))`` are
    set. This equals the reference ``mask[y0:y1, x0:x1] = 1`` for pixel-aligned boxes.

    Args:
        boxes: ``(K, 4)`` (or one ``(4,)`` box) with ``0 <= x0 <= x1 <= 1`` and ``0 <= y0 <= y1 <= 1``.
        height, width: mask size.

    Returns:
        ``(H, W)`` float64 mask with values in ``{0, 1}``.
    """
    _check_size(height, width)
    b = _as_float_array(boxes, "boxes", (1, 2))
    if b.ndim == 1:
        b = b[None]
    if b.shape[1] != 4:
        raise DataError(f"boxes must have shape (K, 4) as x0, y0, x1, y1; got {b.shape}")
    tol = 1e-6
    if (b < -tol).any() or (b > 1 + tol).any():
        raise DataError("boxes must be normalised to [0, 1]; got values outside that range")
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise DataError("boxes must satisfy x0 <= x1 and y0 <= y1")
    b = np.clip(b, 0.0, 1.0)
    mask = np.zeros((height, width), dtype=np.float64)
    cols = np.floor(b[:, [0, 2]] * width + 0.5).astype(np.int64)
    rows = np.floor(b[:, [1, 3]] * height + 0.5).astype(np.int64)
    for (c0, c1), (r0, r1) in zip(cols, rows):
        mask[r0:r1, c0:c1] = 1.0
    return mask


def consensus_mask(boxes_per_annotator: Sequence[Any], height: int, width: int) -> np.ndarray:
    """Flickr-SoundNet ground truth: ``clip(sum_a box_mask(boxes_a) / 2, 0, 1)``.

    Args:
        boxes_per_annotator: one ``(K_a, 4)`` normalised box array per annotator.
        height, width: mask size.

    Returns:
        ``(H, W)`` float64 map with values in ``{0, 0.5, 1}``.
    """
    if isinstance(boxes_per_annotator, (np.ndarray, torch.Tensor)) and _to_numpy(boxes_per_annotator).ndim == 2:
        raise ValueError("boxes_per_annotator must be a sequence of (K_a, 4) arrays, one per annotator")
    if len(boxes_per_annotator) == 0:
        raise DataError("boxes_per_annotator is empty: no annotator boxes")
    total = np.zeros((height, width), dtype=np.float64)
    for boxes in boxes_per_annotator:
        total += box_mask(boxes, height, width)
    return np.clip(total / 2.0, 0.0, 1.0)


def _ciou_batch(heatmaps: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """cIoU of ``(N, H, W)`` heatmaps against ``(N, H, W)`` gt maps (already the same size)."""
    n = heatmaps.shape[0]
    flat = heatmaps.reshape(n, -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    # min-max normalisation; a constant map normalises to all zeros (and then predicts nothing)
    norm = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1.0), 0.0)
    median = np.median(norm, axis=1, keepdims=True)
    pred = (norm > median).astype(np.float64)  # top 50 % of pixels (exactly half for distinct values)
    gt = gts.reshape(n, -1)
    inter = (pred * gt).sum(axis=1)
    denom = gt.sum(axis=1) + (pred * (gt == 0)).sum(axis=1)
    return inter / denom


def _check_gt(gt: np.ndarray, name: str) -> None:
    if (gt < 0).any() or (gt > 1).any():
        raise DataError(f"{name} values must lie in [0, 1]")
    empty = gt.reshape(gt.shape[0], -1).sum(axis=1) == 0
    if empty.any():
        raise DataError(f"{name} has an all-zero ground-truth mask at index {int(np.flatnonzero(empty)[0])}")


def ciou(heatmap: Any, gt: Any) -> float:
    """Consensus IoU of one localisation heatmap (spec 8.2 "Sound source localization").

    The heatmap is min–max normalised and binarised at its median (pixels strictly above the
    median -> 1, i.e. the top 50 %; a constant heatmap predicts nothing), then
    ``cIoU = Σ(pred·gt) / (Σ gt + Σ(pred·[gt = 0]))``.

    Args:
        heatmap: ``(H, W)`` scores (higher = more likely the source), same size as ``gt``.
        gt: ``(H, W)`` ground-truth map in ``[0, 1]`` (binary or Flickr consensus); must not be empty.

    Returns:
        cIoU in ``[0, 1]``.
    """
    h = _as_float_array(heatmap, "heatmap", 2)
    g = _as_float_array(gt, "gt", 2)
    if h.shape != g.shape:
        raise DataError(f"heatmap {h.shape} and gt {g.shape} differ in size; resize first or use localization_metrics")
    _check_gt(g[None], "gt")
    return float(_ciou_batch(h[None], g[None])[0])


def localization_metrics(heatmaps: Any, gts: Any, *, resize_to: int | None = 224) -> dict[str, float]:
    """cIoU@0.5, success-rate AUC and mean cIoU over a test set (Flickr-SoundNet / VGG-SS protocol).

    Heatmaps (possibly low-resolution, e.g. ``7x7``) are upsampled bilinearly (half-pixel centres,
    like ``cv2.INTER_LINEAR``) to ``resize_to x resize_to`` — the ground-truth maps are brought to
    the same size with nearest-neighbour resampling when they differ — or, with ``resize_to=None``,
    to the ground-truth size. Each sample's cIoU is computed as in :func:`ciou`.

    ``AUC`` is the trapezoid-rule area under ``success(θ) = mean(cIoU >= θ)`` for
    ``θ = 0, 0.05, ..., 1.0`` (:data:`LOCALIZATION_THRESHOLDS`).

    Args:
        heatmaps: ``(N, h, w)`` heatmaps.
        gts: ``(N, H, W)`` ground-truth maps in ``[0, 1]``.
        resize_to: common square evaluation size, or ``None`` for the gt size.

    Returns:
        ``{"cIoU@0.5": float, "AUC": float, "mean_cIoU": float}``.
    """
    h = _as_float_array(heatmaps, "heatmaps", 3)
    g = _as_float_array(gts, "gts", 3)
    if h.shape[0] != g.shape[0]:
        raise DataError(f"got {h.shape[0]} heatmaps but {g.shape[0]} ground-truth maps")
    _check_gt(g, "gts")
    if resize_to is not None:
        _check_size(resize_to, resize_to)
        size = (int(resize_to), int(resize_to))
    else:
        size = (g.shape[1], g.shape[2])
    if h.shape[1:] != size:
        h = F.interpolate(torch.from_numpy(h)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
    if g.shape[1:] != size:
        g = F.interpolate(torch.from_numpy(g)[:, None], size=size, mode="nearest-exact")[:, 0].numpy()
        _check_gt(g, "gts (resized)")
    scores = _ciou_batch(h, g)
    success = (scores[None, :] >= LOCALIZATION_THRESHOLDS[:, None]).mean(axis=1)
    return {
        "cIoU@0.5": float((scores >= 0.5).mean()),
        "AUC": _trapezoid(success, LOCALIZATION_THRESHOLDS),
        "mean_cIoU": float(scores.mean()),
    }


# --------------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------------
def binary_auc(scores: Any, labels: Any) -> float:
    """ROC AUC from ranks (Mann–Whitney U); tied scores get their average rank.

    Equals ``sklearn.metrics.roc_auc_score(labels, scores)``.

    Args:
        scores: ``(N,)`` scores, higher = more likely positive (e.g. "fake" for DFDC).
        labels: ``(N,)`` binary labels: bool or values in ``{0, 1}``; both classes must occur.

    Returns:
        AUC in ``[0, 1]``.
    """
    s = _as_float_array(scores, "scores", 1)
    y = _as_labels(labels, "labels", s.shape[0])
    if y.dtype == bool:
        pos = y
    else:
        if not np.issubdtype(y.dtype, np.number) or not np.isin(y, (0, 1)).all():
            raise DataError(f"labels must be binary 0/1 (or bool); got values {np.unique(y)[:5]!r}")
        pos = y == 1
    n_pos = int(pos.sum())
    n_neg = pos.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("binary_auc needs both positive and negative labels; got a single class")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # 1-based rank of the last member of each tie group
    avg_rank = ends - (counts - 1) / 2.0
    ranks = avg_rank[inverse.reshape(-1)]
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def top1_accuracy(logits_or_pred: Any, labels: Any) -> float:
    """Top-1 accuracy.

    Args:
        logits_or_pred: ``(N, C)`` scores (argmax taken) or ``(N,)`` predicted labels.
        labels: ``(N,)`` true labels.

    Returns:
        Fraction correct in ``[0, 1]``.
    """
    p = _to_numpy(logits_or_pred)
    if p.ndim == 2:
        p = _as_float_array(p, "logits", 2).argmax(axis=1)
    elif p.ndim != 1:
        raise DataError(f"logits_or_pred must have shape (N, C) or (N,); got {p.shape}")
    else:
        p = _as_labels(p, "predictions")
    y = _as_labels(labels, "labels", p.shape[0])
    return float((p == y).mean())


def segment_accuracy(pred: Any, gt: Any) -> float:
    """AVE segment accuracy: fraction of correctly classified 1-s segments over all segments.

    Args:
        pred: ``(N, S)`` predicted segment classes, or ``(N, S, C)`` scores (argmax over ``C``).
        gt: ``(N, S)`` true segment classes (background included as its own class).

    Returns:
        Fraction of the ``N * S`` segments classified correctly.
    """
    p = _to_numpy(pred)
    if p.ndim == 3:
        p = _as_float_array(p, "pred", 3).argmax(axis=2)
    elif p.ndim != 2:
        raise DataError(f"pred must have shape (N, S) or (N, S, C); got {p.shape}")
    if p.size == 0:
        raise DataError("pred is empty")
    g = _to_numpy(gt)
    if g.shape != p.shape:
        raise DataError(f"pred {p.shape} and gt {g.shape} shapes differ")
    for name, a in (("pred", p), ("gt", g)):
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise DataError(f"{name} contains NaN or inf")
    return float((p == g).mean())


# --------------------------------------------------------------------------------------------------
# temporal localisation (ActivityNet)
# --------------------------------------------------------------------------------------------------
def _as_segments(x: Any, name: str, cols: int, allow_empty: bool = False) -> np.ndarray:
    arr = _to_numpy(x)
    if arr.size == 0 and allow_empty:
        return np.zeros((0, cols), dtype=np.float64)
    arr = _as_float_array(arr, name, (1, 2))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.shape[1] != cols:
        raise DataError(f"{name} must have {cols} columns; got shape {arr.shape}")
    if (arr[:, 1] < arr[:, 0]).any():
        raise DataError(f"{name} has a segment whose end precedes its start")
    return arr


def _tiou(seg: np.ndarray, segs: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(seg[1], segs[:, 1]) - np.maximum(seg[0], segs[:, 0]), 0.0, None)
    union = (seg[1] - seg[0]) + (segs[:, 1] - segs[:, 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def temporal_iou(seg: Any, segs: Any) -> np.ndarray:
    """Temporal IoU of one segment against many.

    Args:
        seg: ``(2,)`` ``(start, end)``.
        segs: ``(K, 2)`` segments (or one ``(2,)`` segment).

    Returns:
        ``(K,)`` tIoU values; a zero-length union gives 0.
    """
    a = _as_segments(seg, "seg", 2)
    if a.shape[0] != 1:
        raise DataError(f"seg must be a single (start, end) pair; got shape {a.shape}")
    return _tiou(a[0], _as_segments(segs, "segs", 2))


def _check_thresholds(tiou_thresholds: Any) -> np.ndarray:
    t = np.atleast_1d(np.asarray(tiou_thresholds, dtype=np.float64))
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all() or (t <= 0).any() or (t > 1).any():
        raise ValueError(f"tIoU thresholds must be a non-empty list of values in (0, 1]; got {tiou_thresholds!r}")
    return t


def _proposal_best_tiou(proposals: Sequence[Any], gts: Sequence[Any]) -> tuple[list[np.ndarray], int, int]:
    """Per video, ``(G_i, K_i)`` running max tIoU of each gt over the top-n score-sorted proposals.

    Returns the list, the total number of gts and the total number of proposals.
    """
    if len(proposals) != len(gts):
        raise DataError(f"got proposals for {len(proposals)} videos but ground truth for {len(gts)}")
    if len(gts) == 0:
        raise DataError("no videos given")
    best: list[np.ndarray] = []
    n_gt = n_prop = 0
    for i, (p_raw, g_raw) in enumerate(zip(proposals, gts)):
        p = _as_segments(p_raw, f"proposals[{i}]", 3, allow_empty=True)
        g = _as_segments(g_raw, f"gts[{i}]", 2, allow_empty=True)
        order = np.argsort(-p[:, 2], kind="stable")
        p = p[order]
        m = np.stack([_tiou(seg, p[:, :2]) for seg in g]) if len(g) else np.zeros((0, len(p)))
        best.append(np.maximum.accumulate(m, axis=1) if m.size else m)
        n_gt += len(g)
        n_prop += len(p)
    if n_gt == 0:
        raise DataError("no ground-truth segments in any video")
    return best, n_gt, n_prop


def _recall_with(best: list[np.ndarray], n_used: Sequence[int], thresholds: np.ndarray, n_gt: int) -> float:
    """Average (over thresholds) recall when video ``i`` uses its top ``n_used[i]`` proposals."""
    cols = []
    for b, n in zip(best, n_used):
        if b.shape[0] == 0:
            continue
        n = min(int(n), b.shape[1])
        cols.append(b[:, n - 1] if n > 0 else np.full(b.shape[0], -1.0))
    top = np.concatenate(cols)  # best tIoU per gt
    return float((top[None, :] >= thresholds[:, None]).sum(axis=1).mean() / n_gt)


def average_recall_at_k(
    proposals: Sequence[Any],
    gts: Sequence[Any],
    ks: Sequence[int] = (1, 5, 10, 100),
    tiou_thresholds: Any = ACTIVITYNET_TIOU_THRESHOLDS,
) -> dict[str, float]:
    """Average recall with the top ``k`` proposals of every video (ActivityNet proposal metric).

    A ground-truth segment is recalled at threshold ``t`` if any of its video's ``k`` highest-scoring
    proposals has ``tIoU >= t`` with it (no one-to-one matching, as in ActivityNet). Recall is pooled
    over all gt segments of all videos, then averaged over the thresholds.

    Args:
        proposals: per video a ``(K_i, 3)`` array of ``(start, end, score)`` (``K_i`` may be 0).
        gts: per video a ``(G_i, 2)`` array of ``(start, end)``.
        ks: proposals per video.
        tiou_thresholds: default 0.5:0.05:0.95 (:data:`ACTIVITYNET_TIOU_THRESHOLDS`).

    Returns:
        ``{"AR@1": float, ...}`` fractions in ``[0, 1]``.
    """
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"every k must be a positive int; got {k!r}")
    if len(tuple(ks)) == 0:
        raise ValueError("ks must not be empty")
    t = _check_thresholds(tiou_thresholds)
    best, n_gt, _ = _proposal_best_tiou(proposals, gts)
    return {f"AR@{k}": _recall_with(best, [k] * len(best), t, n_gt) for k in ks}


def ar_an_curve(
    proposals: Sequence[Any],
    gts: Sequence[Any],
    *,
    max_avg_proposals: int = 100,
    tiou_thresholds: Any = ACTIVITYNET_TIOU_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """ActivityNet's average-recall vs average-number-of-proposals (AR–AN) curve.

    Follows the official ``average_recall_vs_avg_nr_proposals``: video ``i`` keeps
    ``n_i = min(floor(K_i * max_avg_proposals * V / P), K_i)`` of its score-sorted proposals
    (``P`` = all proposals, ``V`` = videos), then at each of 100 points ``j = 1..100`` it uses its top
    ``min(floor(n_i * j * max_avg_proposals * V / (100 * Σn)), n_i)``; when every video has at least
    ``max_avg_proposals`` proposals this is simply the top ``j * max_avg_proposals / 100``. The
    integer arithmetic is exact (the official float version can lose one proposal to rounding).

    Args:
        proposals: per video ``(K_i, 3)`` ``(start, end, score)``.
        gts: per video ``(G_i, 2)``.
        max_avg_proposals: the right end of the AN axis (100 for ActivityNet).
        tiou_thresholds: default 0.5:0.05:0.95.

    Returns:
        ``(avg_proposals (100,), avg_recall (100,))`` with
        ``avg_proposals = max_avg_proposals * (1..100) / 100`` and recall as a fraction.
    """
    if isinstance(max_avg_proposals, bool) or not isinstance(max_avg_proposals, (int, np.integer)) or max_avg_proposals < 1:
        raise ValueError(f"max_avg_proposals must be a positive int; got {max_avg_proposals!r}")
    t = _check_thresholds(tiou_thresholds)
    best, n_gt, n_prop = _proposal_best_tiou(proposals, gts)
    if n_prop == 0:
        raise DataError("no proposals in any video")
    v = len(best)
    counts = [b.shape[1] for b in best]
    kept = [min(c * max_avg_proposals * v // n_prop, c) for c in counts]
    total = sum(kept)
    if total == 0:
        raise DataError("the proportional proposal budget keeps no proposal; raise max_avg_proposals")
    points = np.arange(1, 101)
    recall = np.array(
        [
            _recall_with(best, [min(n * int(j) * max_avg_proposals * v // (100 * total), n) for n in kept], t, n_gt)
            for j in points
        ]
    )
    return max_avg_proposals * points / 100.0, recall


def ar_an_auc(
    proposals: Sequence[Any],
    gts: Sequence[Any],
    *,
    max_avg_proposals: int = 100,
    tiou_thresholds: Any = ACTIVITYNET_TIOU_THRESHOLDS,
) -> float:
    """Area under the AR–AN curve on ActivityNet's ``[0, 100]`` scale.

    ``100 * trapz(AR, AN) / AN[-1]`` over the 100 points of :func:`ar_an_curve` (AN from
    ``max_avg_proposals / 100`` to ``max_avg_proposals``), exactly as the official evaluation
    computes it; a perfect proposal set therefore scores ``99`` with the default grid.
    """
    x, y = ar_an_curve(proposals, gts, max_avg_proposals=max_avg_proposals, tiou_thresholds=tiou_thresholds)
    return 100.0 * _trapezoid(y, x) / float(x[-1])


def _voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point interpolated AP: Σ (r_n − r_{n−1}) · max_{r ≥ r_n} p(r)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def mean_average_precision(
    detections: Sequence[Any],
    gts: Sequence[Any],
    tiou: float | Sequence[float] = 0.5,
) -> float:
    """Single-class temporal detection AP (VOC all-point interpolation), averaged over ``tiou``.

    Detections of all videos are ranked by score (ties keep input order). Going down the ranking,
    a detection is a true positive if some not-yet-matched gt segment of its video has
    ``tIoU >= threshold`` with it — the highest-tIoU such segment is taken (ActivityNet matching) —
    otherwise a false positive. AP is the area under the monotone precision envelope.

    Args:
        detections: per video ``(K_i, 3)`` ``(start, end, score)`` (``K_i`` may be 0).
        gts: per video ``(G_i, 2)`` (``G_i`` may be 0; at least one segment overall).
        tiou: one threshold, or several (e.g. 0.5:0.05:0.95) whose APs are averaged.

    Returns:
        AP (or mean AP over thresholds) in ``[0, 1]``.
    """
    thresholds = _check_thresholds(tiou)
    if len(detections) != len(gts):
        raise DataError(f"got detections for {len(detections)} videos but ground truth for {len(gts)}")
    if len(gts) == 0:
        raise DataError("no videos given")
    dets = [_as_segments(d, f"detections[{i}]", 3, allow_empty=True) for i, d in enumerate(detections)]
    segs = [_as_segments(g, f"gts[{i}]", 2, allow_empty=True) for i, g in enumerate(gts)]
    n_gt = sum(len(g) for g in segs)
    if n_gt == 0:
        raise DataError("no ground-truth segments in any video")
    all_scores = np.concatenate([d[:, 2] for d in dets])
    if all_scores.size == 0:
        return 0.0
    order = np.argsort(-all_scores, kind="stable")
    aps = []
    for thr in thresholds:
        tp_flags = []
        for d, g in zip(dets, segs):
            flags = np.zeros(len(d), dtype=bool)
            if len(g) and len(d):
                used = np.zeros(len(g), dtype=bool)
                for j in np.argsort(-d[:, 2], kind="stable"):
                    ious = _tiou(d[j, :2], g)
                    for gi in np.argsort(-ious, kind="stable"):
                        if ious[gi] < thr:
                            break
                        if not used[gi]:
                            used[gi] = True
                            flags[j] = True
                            break
            tp_flags.append(flags)
        tp = np.concatenate(tp_flags)[order].astype(np.float64)
        tp_cum = np.cumsum(tp)
        fp_cum = np.cumsum(1.0 - tp)
        aps.append(_voc_ap(tp_cum / n_gt, tp_cum / (tp_cum + fp_cum)))
    return float(np.mean(aps))
