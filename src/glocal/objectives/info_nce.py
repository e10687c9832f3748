"""InfoNCE family: single-positive, multi-positive and soft-target contrastive losses.

* :func:`info_nce` — one positive per query (in-batch and/or queue negatives), optionally
  symmetric; VCLR segment term, AVTS / CtrlAug instance terms.
* :func:`multi_positive_nce` — several positives per query: VCLR inter (``separate_rows``,
  spec 2.5) and AVTS nearest-neighbour positives (``sum_numerator``, spec 4.4).
* :func:`soft_target_nce` — cross-entropy against soft targets: CtrlAug region contrast (3.4).

All losses return the mean over their rows as a 0-dim tensor. ``tau`` is the temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..runtime.gather import all_gather_with_grad, dist_info
from .checks import check_all

__all__ = [
    "info_nce",
    "multi_positive_nce",
    "MULTI_POSITIVE_MODES",
    "soft_target_nce",
    "soft_target_contrast",
]

#: Accepted values of ``multi_positive_nce(mode=...)``.
MULTI_POSITIVE_MODES = ("sum_numerator", "separate_rows")


def _check_tau(tau: float) -> None:
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau}")


def info_nce(
    q: Tensor,
    k: Tensor,
    *,
    tau: float,
    queue: Tensor | None = None,
    symmetric: bool = False,
    normalize: bool = True,
    in_batch_negatives: bool = True,
    gather: bool = False,
) -> Tensor:
    """InfoNCE with the diagonal pairs ``(q_i, k_i)`` as positives.

    Args:
        q: ``(N, D)`` queries.
        k: ``(N, D)`` keys; ``k_i`` is the positive of ``q_i``.
        tau: temperature.
        queue: optional ``(K, D)`` extra negatives (e.g. :class:`FeatureQueue.queue`), used
            **as stored** (not re-normalised), and only in the ``q -> k`` direction, since
            they live in the key space.
        symmetric: also compute the ``k -> q`` direction (anchor ``k_i``, candidates = all rows
            of ``q``) and return the **mean** of the two directions.
        normalize: L2-normalise ``q`` and ``k`` over ``D`` first (cosine scores).
        in_batch_negatives: use the other rows of ``k`` as negatives (default). ``False``
            gives MoCo / VCLR-style logits ``[q_i·k_i, q_i·queue]`` (needs a queue and
            ``symmetric=False``).
        gather: under ``torch.distributed``, the in-batch candidates are the keys (and, for the
            symmetric direction, the queries) of **every** rank, gathered with gradients; this
            rank's rows only, so the result is the mean over this rank's ``N`` queries (see
            :mod:`glocal.runtime.gather`). No-op with one process or without in-batch
            negatives.

    Returns:
        0-dim tensor
        ``L = -(1/N) sum_i log e^{q_i·k_i/τ} / (sum_j e^{q_i·k_j/τ} + sum_n e^{q_i·n/τ})``
        (the ``sum_j`` reduces to ``j = i`` when ``in_batch_negatives=False``).
    """
    _check_tau(tau)
    if q.dim() != 2 or q.shape != k.shape:
        raise ValueError(f"q and k must both be (N, D); got {tuple(q.shape)} and {tuple(k.shape)}")
    if queue is not None and (queue.dim() != 2 or queue.shape[1] != q.shape[1]):
        raise ValueError(f"queue must be (K, D) with D={q.shape[1]}; got {tuple(queue.shape)}")
    if not in_batch_negatives and (queue is None or symmetric):
        raise ValueError("in_batch_negatives=False needs a queue and symmetric=False (no negatives otherwise)")
    if normalize:
        q = F.normalize(q, dim=1)
        k = F.normalize(k, dim=1)
    n = q.shape[0]

    rank, world = dist_info()
    gathered = gather and world > 1 and in_batch_negatives
    k_cand = all_gather_with_grad(k) if gathered else k
    q_cand = all_gather_with_grad(q) if gathered and symmetric else q
    if in_batch_negatives:
        # logits_ij = q_i·k_j / τ (positive at the global row index of i), then q_i·n / τ for queue items n
        logits = q @ k_cand.t() / tau
        labels = torch.arange(n, device=q.device) + (rank * n if gathered else 0)
    else:
        # logits_i = [q_i·k_i, q_i·n_1, ..., q_i·n_K] / τ (positive at column 0)
        logits = (q * k).sum(dim=1, keepdim=True) / tau
        labels = torch.zeros(n, dtype=torch.long, device=q.device)
    if queue is not None:
        logits = torch.cat([logits, q @ queue.t() / tau], dim=1)
    # L_{q->k} = mean_i [ LSE_c logits_ic - logits_i,label_i ]
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        # L_{k->q} = -(1/N) sum_i log e^{k_i·q_i/τ} / sum_j e^{k_i·q_j/τ};  L = (L_{q->k} + L_{k->q}) / 2
        loss = 0.5 * (loss + F.cross_entropy(k @ q_cand.t() / tau, labels))
    return loss


def multi_positive_nce(
    q: Tensor,
    positives: Tensor,
    negatives: Tensor,
    *,
    tau: float,
    mode: str = "sum_numerator",
    negative_mask: Tensor | None = None,
    normalize: bool = False,
) -> Tensor:
    """NCE with ``P`` positives per query.

    Args:
        q: ``(N, D)`` queries.
        positives: ``(N, P, D)``; ``positives[i]`` are the positives of ``q_i``.
        negatives: ``(N, K, D)`` per-query negatives, or ``(1, K, D)`` shared by all queries
            (e.g. a queue).
        tau: temperature.
        mode: ``"sum_numerator"`` (AVTS nearest-neighbour positives)::

                L_i = -log Σ_p e^{q·p/τ} / (Σ_p e^{q·p/τ} + Σ_n e^{q·n/τ})

            or ``"separate_rows"`` (VCLR inter): one InfoNCE row per positive, averaged::

                L_i = (1/P) Σ_p -log e^{q·p/τ} / (e^{q·p/τ} + Σ_n e^{q·n/τ})
        negative_mask: optional bool ``(N, K)`` or ``(1, K)``; ``False`` drops that negative
            for that query (AVTS: ``Q minus NN_k(k+, Q)``).
        normalize: L2-normalise ``q``, positives and negatives over ``D`` first. Off by
            default: VCLR / AVTS feed already-normalised embeddings and the queue as stored.

    Returns:
        0-dim tensor: mean of ``L_i`` over the ``N`` queries (for ``separate_rows`` this equals
        the mean over the ``N * P`` rows).
    """
    _check_tau(tau)
    if mode not in MULTI_POSITIVE_MODES:
        raise ValueError(f"mode must be one of {MULTI_POSITIVE_MODES}; got {mode!r}")
    if q.dim() != 2 or positives.dim() != 3 or negatives.dim() != 3:
        raise ValueError(
            f"expected q (N, D), positives (N, P, D), negatives (N or 1, K, D); got "
            f"{tuple(q.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}"
        )
    n, d = q.shape
    if positives.shape[0] != n or positives.shape[2] != d:
        raise ValueError(f"positives must be (N={n}, P, D={d}); got {tuple(positives.shape)}")
    if negatives.shape[0] not in (1, n) or negatives.shape[2] != d:
        raise ValueError(f"negatives must be (N={n} or 1, K, D={d}); got {tuple(negatives.shape)}")
    if normalize:
        q = F.normalize(q, dim=-1)
        positives = F.normalize(positives, dim=-1)
        negatives = F.normalize(negatives, dim=-1)

    # pos_ip = q_i·p_ip / τ                                               -> (N, P)
    pos = torch.einsum("nd,npd->np", q, positives) / tau
    # neg_ik = q_i·n_ik / τ                                               -> (N, K)
    if negatives.shape[0] == 1:
        neg = q @ negatives[0].t() / tau
    else:
        neg = torch.einsum("nd,nkd->nk", q, negatives) / tau
    if negative_mask is not None:
        neg = neg.masked_fill(~negative_mask.to(torch.bool).expand_as(neg), float("-inf"))

    if mode == "sum_numerator":
        # L_i = LSE(pos_i ∪ neg_i) - LSE(pos_i)
        loss = torch.logsumexp(torch.cat([pos, neg], dim=1), dim=1) - torch.logsumexp(pos, dim=1)
    else:
        # L_ip = log(e^{pos_ip} + Σ_n e^{neg_in}) - pos_ip;  L_i = mean_p L_ip
        neg_lse = torch.logsumexp(neg, dim=1, keepdim=True)
        loss = (torch.logaddexp(pos, neg_lse) - pos).mean(dim=1)
    return loss.mean()


def soft_target_nce(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy against soft targets (CtrlAug soft region contrast, spec 3.4).

    Args:
        logits: ``(N, C)`` scores (already divided by the temperature); candidates with zero
            target (e.g. other videos' embeddings) act as pure negatives.
        targets: ``(N, C)`` non-negative weights ``w_nc``, each row summing to 1.

    Returns:
        0-dim tensor ``L = -(1/N) Σ_n Σ_c w_nc log( e^{s_nc} / Σ_c' e^{s_nc'} )``.

    Raises:
        ValueError: on a shape mismatch, negative targets, or rows not summing to 1.
    """
    if logits.dim() != 2 or logits.shape != targets.shape:
        raise ValueError(
            f"logits and targets must both be (N, C); got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    targets = targets.to(logits.dtype)
    # checked on the device (no host sync per step): w_nc >= 0 and |Σ_c w_nc - 1| <= 1e-4
    check_all(~(targets < 0), "soft_target_nce: targets must be non-negative")
    check_all((targets.sum(dim=1) - 1).abs() <= 1e-4, "soft_target_nce: every row of targets must sum to 1")
    # L = -mean_n Σ_c w_nc log_softmax(s_n)_c   (0 * -inf treated as 0 for masked candidates)
    log_prob = torch.log_softmax(logits, dim=1)
    return -(torch.where(targets > 0, targets * log_prob, torch.zeros_like(log_prob))).sum(dim=1).mean()


#: Alias using the name of spec 7.6.
soft_target_contrast = soft_target_nce
