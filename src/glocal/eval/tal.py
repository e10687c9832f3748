"""Temporal action localisation: per-frame event / background scores → segments → AR@k, AR–AN AUC, mAP.

Protocol (an ActivityNet-style proposal evaluation on frozen local features):

* per-frame features: the local video features (audio-visually pooled for audio-visual methods)
  concatenated with the local audio features, one vector per frame at the evaluation fps;
* per-frame labels: frame ``k`` (shown during ``[k / fps, (k + 1) / fps)``) is *event* by the
  segment rule of :func:`glocal.eval.timeline.label_segments` against annotations.json ``events``;
* a logistic regression (``C`` on the val split's frames; at most ``max_train_frames`` training
  frames, subsampled with the seed) gives each test frame an event probability;
* proposals (:func:`scores_to_segments`): for every threshold in ``tal_thresholds`` the runs of
  frames scoring above it (runs separated by gaps up to ``tal_merge_gap`` seconds are merged) become
  segments ``[first / fps, (last + 1) / fps]`` scored by the mean probability inside; duplicates
  keep their highest score; proposals are ranked by score;
* metrics against the annotated event segments of the test videos: AR@1/5/10/100 (average recall
  over tIoU 0.5:0.05:0.95 with the top-k proposals per video), the area under the AR–AN curve
  (ActivityNet scale 0–100, up to 100 proposals per video) and mAP at tIoU 0.5 (all proposals as
  detections).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..methods import Method
from .classifiers import fit_linear
from .context import EvalContext
from .event import local_kinds, video_events
from .metrics import ar_an_auc, average_recall_at_k, mean_average_precision
from .timeline import extract_timeline, frame_bounds, label_segments

__all__ = ["scores_to_segments", "frame_dataset", "requires", "run"]


def scores_to_segments(scores: Any, fps: float, thresholds: Any, merge_gap: float = 0.0) -> np.ndarray:
    """Turn per-frame scores into scored segments (threshold + merge, score = mean inside).

    Args:
        scores: ``(F,)`` per-frame event scores; frame ``k`` covers ``[k / fps, (k + 1) / fps)``.
        fps: frames per second.
        thresholds: score thresholds; a frame is "on" when its score is strictly above.
        merge_gap: runs separated by at most this many seconds of "off" frames are merged.

    Returns:
        ``(K, 3)`` ``(start, end, score)`` sorted by decreasing score, without duplicate segments
        (a segment found at several thresholds keeps its highest score).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    gap_frames = int(np.floor(merge_gap * fps + 1e-9))
    found: dict[tuple[int, int], float] = {}
    for thr in np.atleast_1d(np.asarray(thresholds, dtype=np.float64)):
        on = np.concatenate([[False], s > thr, [False]])
        starts = np.flatnonzero(~on[:-1] & on[1:])
        ends = np.flatnonzero(on[:-1] & ~on[1:])  # exclusive
        runs: list[list[int]] = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            if runs and a - runs[-1][1] <= gap_frames:
                runs[-1][1] = b
            else:
                runs.append([a, b])
        for a, b in runs:
            score = float(s[a:b].mean())
            key = (a, b)
            found[key] = max(found.get(key, -np.inf), score)
    if not found:
        return np.zeros((0, 3))
    segs = np.array([[a / fps, b / fps, sc] for (a, b), sc in found.items()])
    return segs[np.argsort(-segs[:, 2], kind="stable")]


def frame_dataset(method: Method, ctx: EvalContext, split: str) -> tuple[list[np.ndarray], list[np.ndarray],
                                                                            list[np.ndarray], np.ndarray, float]:
    """Per video: frame features ``(F, D)``, frame labels ``(F,)``, events ``(E, 2)``; durations; fps."""
    manifest = ctx.split(split)
    kinds = local_kinds(method)
    tl = extract_timeline(method, ctx, manifest, kinds, desc=f"local features [{split}]")
    feats, labels, events = [], [], []
    for v, path in enumerate(manifest.paths.tolist()):
        ev = video_events(ctx, path, "tal")
        f = tl.stacked(kinds, v).T
        feats.append(f)
        labels.append(label_segments(frame_bounds(f.shape[0], tl.fps), ev).astype(np.int64))
        events.append(np.clip(ev, 0.0, float(tl.durations[v])))
    return feats, labels, events, tl.durations, tl.fps


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("tal")
    ctx.require_annotation_field("tal", "events")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """AR@1/5/10/100, AR–AN AUC and mAP@0.5 of the thresholded per-frame event scores on the test split."""
    opts = ctx.options
    ftr, ltr, _, _, _ = frame_dataset(method, ctx, "train")
    xtr, ytr = np.concatenate(ftr), np.concatenate(ltr)
    rng = np.random.default_rng(ctx.seed)
    if xtr.shape[0] > opts.max_train_frames:
        keep = np.sort(rng.choice(xtr.shape[0], opts.max_train_frames, replace=False))
        xtr, ytr = xtr[keep], ytr[keep]
    val = None
    if ctx.has_split("val"):
        fva, lva, _, _, _ = frame_dataset(method, ctx, "val")
        val = (np.concatenate(fva), np.concatenate(lva))
    if np.unique(ytr).size < 2:
        raise DataError("task 'tal': the training frames are all event or all background; check 'events'")
    clf = fit_linear(xtr, ytr, val[0] if val else None, val[1] if val else None,
                     classifier="logreg", Cs=opts.Cs, seed=ctx.seed)
    fte, lte, gts, _, fps = frame_dataset(method, ctx, "test")
    proposals = [scores_to_segments(clf.positive_score(f, 1), fps, opts.tal_thresholds, opts.tal_merge_gap)
                 for f in fte]
    if sum(len(g) for g in gts) == 0:
        raise DataError("task 'tal': the test videos have no annotated events")
    res: dict[str, Any] = dict(average_recall_at_k(proposals, gts, ks=(1, 5, 10, 100)))
    res["AR-AN_AUC"] = ar_an_auc(proposals, gts, max_avg_proposals=100) if sum(map(len, proposals)) else 0.0
    res["mAP@0.5"] = mean_average_precision(proposals, gts, tiou=0.5)
    frame_acc = float(np.mean(np.concatenate([clf.predict(f) for f in fte]) == np.concatenate(lte)))
    res["meta"] = {"test_videos": len(fte), "gt_segments": int(sum(len(g) for g in gts)),
                   "avg_proposals": float(np.mean([len(p) for p in proposals])), "frame_acc": frame_acc,
                   "fps": fps, "C": clf.C, "auc_scale": "0-100 (ActivityNet)"}
    return res
