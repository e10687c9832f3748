"""AVTS loss pieces (methods.md 4.4, reconstruction ``[INF]``), pure functions on embeddings.

* :func:`nn_augmented_nce` — MoCo-style InfoNCE whose positives are supplemented with the
  query's nearest neighbours in a feature queue ("sample-dependent positives and negatives
  from the evolving feature space"): ``P(q) = {k+} ∪ NN_k``, ``N(q) = candidates \\ P(q)``,
  written on :func:`~glocal.objectives.multi_positive_nce` (``sum_numerator``). With no
  neighbours it is :func:`~glocal.objectives.info_nce` (``normalize=False``). The neighbour
  indices come from :meth:`~glocal.objectives.FeatureQueue.knn` (the caller picks whose
  neighbours and in which queue).
* :func:`order_pair_batch` — the rows and labels of the pairwise temporal-order task (intra-modal
  V–V / A–A, inter-modal V–A with an optional "synchronous" class); the two order classes are
  the two permutations of :func:`~glocal.objectives.order_permutations` ``(2)``.
* :func:`speed_direction_labels` — the joint speed × direction class of a clip.

Speed / direction / order terms are plain cross-entropies of classifier logits on these labels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..runtime.gather import all_gather_with_grad, dist_info
from .checks import check_all
from .info_nce import multi_positive_nce
from .pretext import order_permutations

__all__ = ["nn_augmented_nce", "order_pair_batch", "order_overlap_class", "speed_direction_labels", "ORDER_SYNC_CLASS"]

#: Class of a synchronous (same clip) pair in :func:`order_pair_batch` with ``sync=True``.
ORDER_SYNC_CLASS = 2


def nn_augmented_nce(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    nn_idx: Tensor | None = None,
    *,
    tau: float,
    nn_positives: bool = True,
    in_batch_negatives: bool = False,
    gather: bool = False,
) -> Tensor:
    """InfoNCE of queries ``q`` against their keys ``k`` and a queue, with queue neighbours.

    Args:
        q: ``(N, D)`` queries (L2-normalised; not re-normalised here).
        k: ``(N, D)`` keys; ``k_i`` is the positive of ``q_i``.
        queue: ``(K, D)`` stored keys, used as stored.
        nn_idx: ``(N, m)`` distinct queue row indices per query (its neighbours ``NN_i``), or
            ``None`` / ``m = 0`` for none.
        tau: temperature.
        nn_positives: the neighbours are extra positives (AVTS); ``False``: they are only
            removed from the negatives (false-negative elimination).
        in_batch_negatives: the other rows of ``k`` are negatives too (MoCo: ``False``).
        gather: under ``torch.distributed`` the in-batch candidates are the keys of every rank
            (gathered with gradients, this rank's rows only, as in
            :func:`~glocal.objectives.info_nce`); no-op without in-batch negatives.

    Returns:
        0-dim tensor, the mean over the ``N`` queries of::

            P_i = {k_i} ∪ {queue[j] : j ∈ NN_i}        (only {k_i} if not nn_positives)
            C_i = {k_j : j ≠ i} ∪ queue  (in-batch)  or  queue
            S_i = Σ_{p ∈ P_i} e^{q_i·p/τ}
            L_i = -log S_i / (S_i + Σ_{n ∈ C_i \\ NN_i} e^{q_i·n/τ})
    """
    if q.dim() != 2 or q.shape != k.shape:
        raise ValueError(f"q and k must both be (N, D); got {tuple(q.shape)} and {tuple(k.shape)}")
    if queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue must be (K, D) with D={q.shape[1]}; got {tuple(queue.shape)}")
    n, size = q.shape[0], queue.shape[0]
    if nn_idx is None:
        nn_idx = torch.zeros(n, 0, dtype=torch.long, device=q.device)
    if nn_idx.dim() != 2 or nn_idx.shape[0] != n:
        raise ValueError(f"nn_idx must be (N={n}, m); got {tuple(nn_idx.shape)}")
    nn_idx = nn_idx.long()
    check_all((nn_idx >= 0) & (nn_idx < size), f"nn_idx must index the {size} queue rows")  # on the device

    rank, world = dist_info()
    gathered = gather and world > 1 and in_batch_negatives
    # candidates c = [k_1 .. k_B (all ranks if gathered) | queue_1 .. queue_K]; own key at column own_i
    k_cand = (all_gather_with_grad(k) if gathered else k) if in_batch_negatives else k[:0]
    offset = k_cand.shape[0]
    candidates = torch.cat([k_cand, queue.to(q.dtype)], dim=0)  # (C, D)
    keep = torch.ones(n, candidates.shape[0], dtype=torch.bool, device=q.device)  # (N, C): negatives of q_i
    rows = torch.arange(n, device=q.device)
    if in_batch_negatives:
        keep[rows, rows + (rank * n if gathered else 0)] = False  # k_i is the positive, not a negative
    keep.scatter_(1, nn_idx + offset, False)  # neighbours are never negatives
    positives = k[:, None]  # (N, 1, D)
    if nn_positives and nn_idx.shape[1]:
        positives = torch.cat([positives, queue.to(q.dtype)[nn_idx]], dim=1)  # (N, 1 + m, D)
    # L_i = LSE_{p ∈ P_i ∪ N_i} q_i·c/τ - LSE_{p ∈ P_i} q_i·p/τ
    return multi_positive_nce(q, positives, candidates[None], tau=tau, mode="sum_numerator", negative_mask=keep)


def order_pair_batch(
    first_a: Tensor,
    first_b: Tensor,
    second_a: Tensor,
    second_b: Tensor,
    a_before_b: Tensor,
    *,
    sync: bool = False,
    overlap: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Rows and labels of the pairwise temporal-order task.

    Each sample has two clips ``a``, ``b``; ``first_*`` ``(N, C1)`` and ``second_*`` ``(N, C2)``
    are their features in the modality shown first / second in a pair (both video for V–V, both
    audio for A–A, video then audio for V–A). Rows (``M = 2N``, or ``4N`` with ``sync``)::

        [first_a ‖ second_b]  label = class(a before b)
        [first_b ‖ second_a]  label = class(b before a)
        [first_a ‖ second_a], [first_b ‖ second_b]  label = 2  (sync only: same time window)

    With ``overlap`` the a/b rows of samples whose two spans overlap get the extra class
    ``order_overlap_class(sync)`` (2, or 3 with ``sync``) instead of an order (spec 4.2: "or add
    an 'overlap' class").

    where ``class`` is the index in ``order_permutations(2, exclude_identity_and_reverse=False)``
    of the pair's temporal ranks: ``0`` = ``(0, 1)`` the first-shown clip starts earlier,
    ``1`` = ``(1, 0)`` it starts later. Every sample contributes both orders, so the classes are
    balanced whatever the sampler's start distribution.

    Args:
        a_before_b: ``(N,)`` bool / int, 1 where clip ``a`` starts before clip ``b``.
        sync: add the synchronous pairs (only meaningful across modalities).
        overlap: ``(N,)`` bool / int, 1 where the spans of clips ``a`` and ``b`` overlap.

    Returns:
        ``(pairs (M, C1 + C2), labels (M,) int64)``.
    """
    n = first_a.shape[0]
    for x in (first_b, second_a, second_b, a_before_b, *([] if overlap is None else [overlap])):
        if x.shape[0] != n:
            raise ValueError("order_pair_batch: all inputs need the same batch size N")
    if first_a.shape != first_b.shape or second_a.shape != second_b.shape or first_a.dim() != 2 or second_a.dim() != 2:
        raise ValueError("order_pair_batch: first_* must be (N, C1) and second_* (N, C2)")
    classes = order_permutations(2, exclude_identity_and_reverse=False)  # [(0, 1), (1, 0)]
    earlier, later = classes.index((0, 1)), classes.index((1, 0))
    ab = a_before_b.to(torch.bool)
    earlier_t = torch.full((n,), earlier, dtype=torch.long, device=first_a.device)
    later_t = torch.full((n,), later, dtype=torch.long, device=first_a.device)
    label_ab = torch.where(ab, earlier_t, later_t)  # the first-shown clip a: earlier iff a before b
    label_ba = torch.where(ab, later_t, earlier_t)
    if overlap is not None:
        ov = overlap.to(torch.bool)
        both = torch.full((n,), order_overlap_class(sync), dtype=torch.long, device=first_a.device)
        label_ab, label_ba = torch.where(ov, both, label_ab), torch.where(ov, both, label_ba)
    pairs = [torch.cat([first_a, second_b], dim=1), torch.cat([first_b, second_a], dim=1)]
    labels = [label_ab, label_ba]
    if sync:
        pairs += [torch.cat([first_a, second_a], dim=1), torch.cat([first_b, second_b], dim=1)]
        labels += [torch.full((n,), ORDER_SYNC_CLASS, dtype=torch.long, device=first_a.device)] * 2
    return torch.cat(pairs, dim=0), torch.cat(labels, dim=0)


def order_overlap_class(sync: bool) -> int:
    """Index of the "overlapping spans" order class: after earlier / later (and synchronous)."""
    return ORDER_SYNC_CLASS + 1 if sync else 2


def speed_direction_labels(speed: Tensor, backward: Tensor) -> Tensor:
    """Joint class ``2 · s + d`` of speed class ``s`` and direction ``d`` (1 = backward), for a
    single ``2 · n_speeds``-way head; ``speed``, ``backward``: ``(N,)`` -> ``(N,)`` int64."""
    if speed.shape != backward.shape:
        raise ValueError(f"speed and backward must have one shape; got {tuple(speed.shape)}, {tuple(backward.shape)}")
    # c = 2 s + d
    return 2 * speed.long() + backward.long()
