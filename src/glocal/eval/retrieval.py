"""Video retrieval: test-split queries against the train-split gallery, cosine, R@k."""

from __future__ import annotations

from ..methods import Method
from .context import EvalContext
from .linear_probe import video_features_by_split
from .metrics import recall_at_k

__all__ = ["run"]


def run(method: Method, ctx: EvalContext, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@k = fraction of test videos with a same-class train video among their k nearest."""
    feats = video_features_by_split(method, ctx, ["train", "test"])
    (xg, yg), (xq, yq) = feats["train"], feats["test"]
    return recall_at_k(xq, yq, xg, yg, ks=ks)
