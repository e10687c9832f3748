"""Linear probe on frozen, clip-averaged video features: train split → test split (spec 8.2).

Features: ``method.video_features`` (``--video-pool max|sound``: ``method.pooled_video_features``;
``sound`` weights positions by the method's sound-source map of the clip's own audio)
of ``clips_per_video`` uniformly spaced centre-cropped clips, averaged per video. With ``sound``
the audio-swap control (:mod:`glocal.eval.audio_swap`) also scores the test videos pooled with
another class's audio: ``leak_top1`` / ``leak_chance`` / ``swap_top1``. Classifier:
logistic regression or linear SVM (``--classifier``), features standardised, ``C`` chosen on
the ``val`` split (a stratified part of train when there is none), then refitted on train +
val; metric: test top-1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..methods import Method
from .audio_swap import run_control
from .classifiers import fit_linear
from .context import EvalContext
from .features import extract_features, make_loader

__all__ = ["video_features_by_split", "requires", "run"]


def video_features_by_split(method: Method, ctx: EvalContext, splits: list[str]) -> dict[str, tuple]:
    """Frozen video features ``(N, D)`` and labels ``(N,)`` for each named split (cached per model),
    pooled over positions as ``ctx.options.video_pool`` says."""
    pool = ctx.options.video_pool
    with_audio = pool == "sound"  # the sound-source map that weights the positions reads the clip's audio

    def video_fn(m: Method, batch: dict):
        return m.pooled_video_features(batch["clip/video"], pool, batch["clip/audio"] if with_audio else None)

    out = {}
    for name in splits:
        key = (id(method), "video", pool, name, ctx.data)
        if key not in ctx.cache:
            loader = make_loader(ctx.split(name), ctx.data, with_audio=with_audio)
            ctx.cache[key] = extract_features(
                method, loader, video_fn, device=ctx.device, dtype=ctx.dtype, desc=f"video features [{name}]",
                progress=ctx.progress,
            )
        out[name] = ctx.cache[key]
    return out


def requires(ctx: EvalContext, task: str = "linear") -> None:
    """Labels and non-empty train / test splits."""
    ctx.require_labels(task)


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Test top-1 of the linear classifier chosen by ``ctx.options.classifier``."""
    splits = ["train", "test"] + (["val"] if ctx.has_split("val") else [])
    feats = video_features_by_split(method, ctx, splits)
    (xtr, ytr), (xte, yte) = feats["train"], feats["test"]
    val = feats.get("val")
    clf = fit_linear(xtr, ytr, val[0] if val else None, val[1] if val else None,
                     classifier=ctx.options.classifier, Cs=ctx.options.Cs, seed=ctx.seed)
    top1 = float(np.mean(clf.predict(xte) == yte))
    out: dict[str, Any] = {"top1": top1}
    meta = {"classifier": ctx.options.classifier, "C": clf.C, "val_top1": clf.val_top1, "note": clf.note,
            "train": int(ytr.size), "test": int(yte.size), "clips_per_video": ctx.data.clips_per_video,
            "video_pool": ctx.options.video_pool}
    if ctx.options.video_pool == "sound":  # the audio-swap control (glocal.eval.audio_swap)
        fields, extra = run_control(method, ctx, clf.predict, "linear", "probe's prediction", "top1")
        out.update(fields)
        meta.update(extra)
    out["meta"] = meta
    return out
