"""kNN classification on frozen, clip-averaged video features (cosine, temperature-weighted vote).

Same features as the linear probe; the train split is the memory bank, the test split is
classified by its ``k`` (``--k``) most cosine-similar train videos (InstDisc weighted voting).
"""

from __future__ import annotations

from typing import Any

from ..methods import Method
from .context import EvalContext
from .linear_probe import video_features_by_split
from .probes import knn_classify

__all__ = ["requires", "run"]


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("knn")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Test top-1 of the cosine kNN classifier with ``ctx.options.knn_k`` neighbours."""
    feats = video_features_by_split(method, ctx, ["train", "test"])
    (xtr, ytr), (xte, yte) = feats["train"], feats["test"]
    k = min(int(ctx.options.knn_k), len(ytr))
    meta = {"k": k, "train": int(len(ytr)), "video_pool": ctx.options.video_pool}
    return {"top1": knn_classify(xtr, ytr, xte, yte, k=k)["top1"], "meta": meta}
