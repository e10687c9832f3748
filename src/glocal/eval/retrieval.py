"""Video retrieval: test-split queries against the train-split gallery, cosine similarity, R@k.

A query is a hit at ``k`` when one of its ``k`` nearest gallery videos has its class (spec 8.2).
Cut-offs larger than the gallery are dropped (R@20 / R@50 need at least 20 / 50 train videos).
Search runs in bounded memory: the chunked exact search of :func:`~glocal.eval.metrics.recall_at_k`,
or faiss (``IndexFlatIP`` on L2-normalised features, queries in chunks) when it is installed and
``--faiss`` is ``auto`` / ``on``. faiss is optional and never a dependency. With
``--video-pool sound`` the audio-swap control (:mod:`glocal.eval.audio_swap`) also reports
``leak_R@1`` / ``leak_chance`` / ``swap_R@1``: the nearest gallery video's class for queries
pooled with another class's audio.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..methods import Method
from .audio_swap import run_control
from .context import EvalContext
from .linear_probe import video_features_by_split
from .metrics import _as_float_array, _as_labels, recall_at_k
from .probes import knn_predict

__all__ = ["load_faiss", "faiss_recall_at_k", "requires", "run"]


def load_faiss(mode: str = "auto") -> ModuleType | None:
    """The faiss module for ``mode`` ``"on"`` (required) / ``"auto"`` (if installed) / ``"off"``."""
    if mode == "off":
        return None
    try:
        return importlib.import_module("faiss")
    except ImportError:
        if mode == "on":
            raise ConfigError("--faiss on, but faiss is not installed (pip install faiss-cpu)") from None
        return None


def faiss_recall_at_k(
    query: Any, query_labels: Any, gallery: Any, gallery_labels: Any, ks: Sequence[int], faiss: ModuleType,
    *, chunk_size: int = 4096,
) -> dict[str, float]:
    """:func:`~glocal.eval.metrics.recall_at_k` through a faiss inner-product index (same definition).

    Args:
        query: ``(Nq, D)``; gallery: ``(Ng, D)``; labels ``(Nq,)`` / ``(Ng,)``; ks: cut-offs
            (clipped to ``Ng``); faiss: the imported module; chunk_size: queries per search call.
    """
    q = _as_float_array(query, "query", 2).astype(np.float32)
    g = _as_float_array(gallery, "gallery", 2).astype(np.float32)
    if q.shape[1] != g.shape[1]:
        raise DataError(f"query and gallery feature sizes differ: {q.shape[1]} vs {g.shape[1]}")
    ql = _as_labels(query_labels, "query_labels", q.shape[0])
    gl = _as_labels(gallery_labels, "gallery_labels", g.shape[0])
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    kmax = min(max(ks), g.shape[0])
    index = faiss.IndexFlatIP(g.shape[1])
    index.add(np.ascontiguousarray(g))
    first = np.empty(q.shape[0], dtype=np.int64)
    for s in range(0, q.shape[0], chunk_size):
        _, idx = index.search(np.ascontiguousarray(q[s:s + chunk_size]), kmax)
        hits = gl[idx] == ql[s:s + chunk_size, None]
        first[s:s + chunk_size] = np.where(hits.any(axis=1), hits.argmax(axis=1), kmax)
    return {f"R@{k}": float(np.mean(first < min(int(k), kmax))) for k in ks}


def requires(ctx: EvalContext) -> None:
    ctx.require_labels("retrieval")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """R@k for every ``k`` in ``ctx.options.retrieval_ks`` that the gallery allows."""
    feats = video_features_by_split(method, ctx, ["train", "test"])
    (xg, yg), (xq, yq) = feats["train"], feats["test"]
    ks = tuple(k for k in ctx.options.retrieval_ks if k <= len(yg)) or (1,)
    faiss = load_faiss(ctx.options.faiss)
    res = faiss_recall_at_k(xq, yq, xg, yg, ks, faiss) if faiss is not None else recall_at_k(xq, yq, xg, yg, ks=ks)
    dropped = [k for k in ctx.options.retrieval_ks if k not in ks]
    meta = {"backend": "faiss" if faiss is not None else "exact-chunked", "queries": int(len(yq)),
            "gallery": int(len(yg)), "dropped_ks": dropped, "video_pool": ctx.options.video_pool}
    if ctx.options.video_pool == "sound":  # the audio-swap control (glocal.eval.audio_swap)
        # the nearest gallery video's class: a 1-nearest-neighbour vote
        fields, extra = run_control(method, ctx, lambda x: knn_predict(xg, yg, x, k=1, weighted=False), "retrieval",
                                    "nearest gallery video's class", "R@1")
        res.update(fields)
        meta.update(extra)
    return {**res, "meta": meta}

