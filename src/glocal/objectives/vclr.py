"""VCLR / SeCo loss pieces (methods.md 2.5), pure functions on embeddings.

* :func:`seco_inter_loss` — inter-frame instance discrimination: the anchor query against each of
  its ``P`` keys (same frame re-augmented + the other segments' frames), queue negatives, one
  InfoNCE row per key (the release's ``P·B`` rows ``[q·k⁺, q·Queue] / τ``, label 0).
* :func:`seco_intra_loss` — intra-video discrimination: the re-augmented same frame is the
  positive, the other segments' frames are negatives; ``"pairwise"`` = the release's 2-way rows
  ``[q·p⁺, q·p_j] / τ`` per negative, ``"joint"`` = one row with all negatives (the equation).
* :func:`normalize_order_features` — the order-feature L2 normalisation, with the release's
  quirk (``"frames"``: across the ``K`` items per channel) or per item (``"features"``).
* :func:`permute_tuples` — present each sample's ``K``-tuple in its own order.

The segment term is :func:`~glocal.objectives.info_nce` with ``in_batch_negatives=False`` and the
order term a 4-way cross-entropy. Inputs are expected L2-normalised where the release
normalises; nothing is re-normalised here.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .info_nce import multi_positive_nce

__all__ = ["INTRA_MODES", "ORDER_NORM_AXES", "seco_inter_loss", "seco_intra_loss", "normalize_order_features",
           "permute_tuples"]

INTRA_MODES = ("pairwise", "joint")
ORDER_NORM_AXES = ("frames", "features")


def seco_inter_loss(q: Tensor, keys: Tensor, queue: Tensor, *, tau: float) -> Tensor:
    """Inter-frame loss ``(1/P) Σ_p L_NCE(q, k_p, queue)``, averaged over the batch.

    Args:
        q: ``(B, D)`` anchor queries.
        keys: ``(B, P, D)`` positive keys of each query.
        queue: ``(K, D)`` shared negatives, used as stored.
        tau: temperature.

    ``L_bp = -log e^{q_b·k_bp/τ} / (e^{q_b·k_bp/τ} + Σ_n e^{q_b·n/τ})``; returns ``mean_{b,p} L_bp``.
    """
    if queue.dim() != 2:
        raise ValueError(f"queue must be (K, D); got {tuple(queue.shape)}")
    return multi_positive_nce(q, keys, queue.unsqueeze(0), tau=tau, mode="separate_rows")


def seco_intra_loss(q: Tensor, pos: Tensor, negs: Tensor, *, tau: float,
                    mode: Literal["pairwise", "joint"] = "pairwise") -> Tensor:
    """Intra-video loss of ``q`` ``(B, D)`` with positive ``pos`` ``(B, D)`` and per-sample
    negatives ``negs`` ``(B, J, D)``.

    ``"pairwise"`` (release): ``mean_{b,j} -log e^{q·p/τ} / (e^{q·p/τ} + e^{q·n_j/τ})``;
    ``"joint"`` (equation): ``mean_b -log e^{q·p/τ} / (e^{q·p/τ} + Σ_j e^{q·n_j/τ})``.
    """
    if mode not in INTRA_MODES:
        raise ValueError(f"mode must be one of {INTRA_MODES}; got {mode!r}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau}")
    if q.dim() != 2 or pos.shape != q.shape or negs.dim() != 3 or negs.shape[0] != q.shape[0] or negs.shape[2] != q.shape[1]:
        raise ValueError(f"expected q (B, D), pos (B, D), negs (B, J, D); got {tuple(q.shape)}, {tuple(pos.shape)}, "
                         f"{tuple(negs.shape)}")
    s_pos = (q * pos).sum(dim=1, keepdim=True) / tau  # (B, 1)
    s_neg = torch.einsum("bd,bjd->bj", q, negs) / tau  # (B, J)
    if mode == "pairwise":
        # -log softmax([s+, s_j])_0 = log(e^{s+} + e^{s_j}) - s+
        return (torch.logaddexp(s_pos, s_neg) - s_pos).mean()
    return (torch.logsumexp(torch.cat([s_pos, s_neg], dim=1), dim=1) - s_pos[:, 0]).mean()


def normalize_order_features(o: Tensor, axis: Literal["frames", "features"] = "frames") -> Tensor:
    """L2-normalise per-item order features ``o`` ``(B, K, D)``: ``"frames"`` over the ``K``
    items for each channel (the release's ``dim=1``), ``"features"`` over ``D`` per item."""
    if axis not in ORDER_NORM_AXES:
        raise ValueError(f"axis must be one of {ORDER_NORM_AXES}; got {axis!r}")
    if o.dim() != 3:
        raise ValueError(f"order features must be (B, K, D); got {tuple(o.shape)}")
    return F.normalize(o, dim=1 if axis == "frames" else 2)


def permute_tuples(x: Tensor, perm: Tensor) -> Tensor:
    """``out[b, j] = x[b, perm[b, j]]`` for ``x`` ``(B, K, ...)`` and ``perm`` int ``(B, K)``."""
    if perm.shape != x.shape[:2]:
        raise ValueError(f"perm must be (B, K) = {tuple(x.shape[:2])}; got {tuple(perm.shape)}")
    rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    return x[rows, perm.to(x.device)]
