"""Audio-visual event localisation (AVE protocol): per-segment event / background classification.

Protocol:

* every video is cut into consecutive segments of ``segment_seconds`` (AVE: 1 s; default 0.25 s,
  matched to the generated world's 0.1–0.2 s sound events); only whole segments are kept;
* a segment's label is *event* when an annotated event (``events`` in annotations.json) overlaps
  it by at least half of the shorter of the two (:func:`glocal.eval.timeline.label_segments`), else
  *background*; with ``--event-labels class`` event segments take the video's class instead
  (background + classes, AVE's supervised setting);
* features of a segment: the mean over its frames of the per-step local video features
  (audio-visually pooled, ``local_video_features(video, audio)``) concatenated with the per-step
  local audio features (``local_audio_features``); video-only methods use ``local_video_features(video)``;
* a linear classifier (``--classifier``, ``C`` chosen on the val split's segments) is trained on the
  train split's segments; metric: segment accuracy on the test split (fraction of test segments
  classified correctly, :func:`glocal.eval.metrics.segment_accuracy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..methods import Method
from .classifiers import fit_linear
from .context import EvalContext
from .metrics import segment_accuracy
from .timeline import extract_timeline, label_segments, pool_segments, segment_bounds

__all__ = ["local_kinds", "video_events", "segment_dataset", "requires", "run"]


def local_kinds(method: Method) -> list[str]:
    """Per-step feature kinds used for audio-visual tasks: AV-pooled video + audio, or video only."""
    return ["video_av", "audio"] if "audio" in method.modalities else ["video"]


def video_events(ctx: EvalContext, path: str, task: str) -> np.ndarray:
    """``(E, 2)`` annotated ``[onset, offset]`` events of a video (``E`` may be 0)."""
    ann = ctx.video_annotation(path)
    if "events" not in ann:
        raise DataError(f"task '{task}': annotation of '{ctx.annotation_key(path)}' has no 'events'")
    ev = np.asarray(ann["events"], dtype=np.float64).reshape(-1, 2)
    return ev


def segment_dataset(method: Method, ctx: EvalContext, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment features ``(S, D)``, labels ``(S,)`` (0 = background) and video index ``(S,)`` of a split."""
    manifest = ctx.split(split)
    kinds = local_kinds(method)
    tl = extract_timeline(method, ctx, manifest, kinds, desc=f"local features [{split}]")
    xs, ys, vids = [], [], []
    for v, path in enumerate(manifest.paths.tolist()):
        bounds = segment_bounds(float(tl.durations[v]), ctx.options.segment_seconds)
        if bounds.shape[0] == 0:
            continue
        is_event = label_segments(bounds, video_events(ctx, path, "event"))
        if ctx.options.event_labels == "class":
            y = np.where(is_event, int(manifest.labels[v]) + 1, 0)
        else:
            y = is_event.astype(np.int64)
        xs.append(pool_segments(tl.stacked(kinds, v), tl.fps, bounds))
        ys.append(y)
        vids.append(np.full(len(y), v))
    if not xs:
        raise DataError(f"task 'event': no video of split '{split}' is longer than one segment "
                        f"({ctx.options.segment_seconds} s)")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(vids)


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("event")
    ctx.require_annotation_field("event", "events")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Test segment accuracy of the per-segment linear classifier."""
    xtr, ytr, _ = segment_dataset(method, ctx, "train")
    xte, yte, vte = segment_dataset(method, ctx, "test")
    val = segment_dataset(method, ctx, "val") if ctx.has_split("val") else None
    clf = fit_linear(xtr, ytr, val[0] if val else None, val[1] if val else None,
                     classifier=ctx.options.classifier, Cs=ctx.options.Cs, seed=ctx.seed)
    pred = clf.predict(xte)
    acc = segment_accuracy(pred[None, :], yte[None, :])
    majority = float(np.mean(yte == np.bincount(ytr).argmax()))
    return {"segment_acc": acc,
            "meta": {"segment_seconds": ctx.options.segment_seconds, "labels": ctx.options.event_labels,
                     "train_segments": int(ytr.size), "test_segments": int(yte.size),
                     "test_videos": int(np.unique(vte).size), "test_event_fraction": float(np.mean(yte > 0)),
                     "majority_baseline": majority, "C": clf.C, "note": clf.note}}
