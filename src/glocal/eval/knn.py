"""kNN classification on frozen, clip-averaged video features (cosine, temperature-weighted vote).

Same features as the linear probe; the train split is the memory bank, the test split is
classified by its ``k`` (``--k``) most cosine-similar train videos (InstDisc weighted voting).
With ``--video-pool sound`` the audio-swap control (:mod:`glocal.eval.audio_swap`) also reports
``leak_top1`` / ``leak_chance`` / ``swap_top1`` for the test videos pooled with another class's audio.
"""

from __future__ import annotations

from typing import Any

from ..methods import Method
from .audio_swap import run_control
from .context import EvalContext
from .linear_probe import video_features_by_split
from .probes import knn_predict

__all__ = ["requires", "run"]


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("knn")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Test top-1 of the cosine kNN classifier with ``ctx.options.knn_k`` neighbours."""
    feats = video_features_by_split(method, ctx, ["train", "test"])
    (xtr, ytr), (xte, yte) = feats["train"], feats["test"]
    k = min(int(ctx.options.knn_k), len(ytr))
    meta: dict[str, Any] = {"k": k, "train": int(len(ytr)), "video_pool": ctx.options.video_pool}
    out: dict[str, Any] = {"top1": float((knn_predict(xtr, ytr, xte, k=k) == yte).mean())}
    if ctx.options.video_pool == "sound":  # the audio-swap control (glocal.eval.audio_swap)
        fields, extra = run_control(method, ctx, lambda x: knn_predict(xtr, ytr, x, k=k), "knn", "kNN vote", "top1")
        out.update(fields)
        meta.update(extra)
    out["meta"] = meta
    return out
