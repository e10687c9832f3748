"""Linear probe (and kNN) on frozen, clip-averaged video features: train split → test split."""

from __future__ import annotations

from ..methods import Method
from .context import EvalContext
from .features import extract_features, make_loader
from .probes import knn_classify, linear_probe

__all__ = ["video_features_by_split", "run"]


def _video_fn(method: Method, batch: dict):
    return method.video_features(batch["video"])


def video_features_by_split(method: Method, ctx: EvalContext, splits: list[str]) -> dict[str, tuple]:
    """Frozen video features ``(N, D)`` and labels for each named split."""
    out = {}
    for name in splits:
        key = (id(method), "video", name)
        if key not in ctx.cache:
            loader = make_loader(ctx.split(name), ctx.data, with_audio=False)
            ctx.cache[key] = extract_features(
                method, loader, _video_fn, device=ctx.device, dtype=ctx.dtype, desc=f"video features [{name}]",
                progress=ctx.progress,
            )
        out[name] = ctx.cache[key]
    return out


def run(method: Method, ctx: EvalContext) -> dict[str, float]:
    """Top-1 of a logistic-regression probe (C picked on val) and of a cosine kNN classifier."""
    splits = ["train", "test"] + (["val"] if ctx.has_split("val") else [])
    feats = video_features_by_split(method, ctx, splits)
    (xtr, ytr), (xte, yte) = feats["train"], feats["test"]
    val = feats.get("val")
    probe = linear_probe(xtr, ytr, xte, yte, val_x=val[0] if val else None, val_y=val[1] if val else None,
                         seed=ctx.seed)
    knn = knn_classify(xtr, ytr, xte, yte, k=min(20, len(ytr)))
    return {"linear_top1": probe["top1"], "knn_top1": knn["top1"]}
