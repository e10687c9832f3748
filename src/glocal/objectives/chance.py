"""Chance levels of the objectives: each loss evaluated on all-equal scores (uniform softmax).

A contrastive or classification loss whose value stays at its chance level has learned nothing:
the scores of its positives are no higher than those of its negatives. Every function here is
derived from the formula of the objective named in its docstring and tested by evaluating that
objective on constant scores (``tests/objectives/test_chance.py``).

With all scores equal to ``s``, ``LSE`` over ``n`` items is ``s + ln n``, so every
``LSE(candidates) - LSE(positives)`` loss becomes ``ln(#candidates / #positives)``.
"""

from __future__ import annotations

import math

__all__ = [
    "cross_entropy_chance",
    "info_nce_chance",
    "mil_nce_chance",
    "multi_positive_chance",
    "nn_augmented_chance",
    "seco_intra_chance",
]


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")


def cross_entropy_chance(num_classes: int) -> float:
    """Cross-entropy (hard or soft targets summing to 1) of uniform logits over ``C`` classes:
    ``-Σ_c w_c log(1/C) = ln C``. Order / speed / direction heads, CtrlAug region contrast
    (``C`` = own cells + negatives)."""
    _positive("num_classes", num_classes)
    return math.log(num_classes)


def mil_nce_chance(num_items: int, num_instances: int, *, symmetric: bool = True, pool: str = "lse") -> float:
    """:func:`~glocal.objectives.mil_nce.mil_nce` on a constant ``(A, A, M)`` score tensor.

    Denominator ``LSE`` over ``A·M`` row scores (plus ``A·M`` column scores if symmetric):
    ``s + ln(c·A·M)`` with ``c = 2`` (symmetric) or 1. Numerator: ``lse`` pool ``s + ln M``;
    ``mean`` / ``max`` pool ``s``. So chance ``= ln(c·A)`` (lse) or ``ln(c·A·M)`` (mean, max).
    GLCM global: ``A = B``, ``M = P`` -> ``ln 2B``; local: ``A = B·T``, ``M = r`` -> ``ln 2BT``.
    """
    _positive("num_items", num_items)
    _positive("num_instances", num_instances)
    c = 2 if symmetric else 1
    if pool == "lse":
        return math.log(c * num_items)
    return math.log(c * num_items * num_instances)


def info_nce_chance(num_keys: int, queue_size: int = 0, *, symmetric: bool = False,
                    in_batch_negatives: bool = True) -> float:
    """:func:`~glocal.objectives.info_nce.info_nce` on constant scores.

    ``q -> k`` row: ``(N_k if in-batch else 1) + K`` candidates, one positive -> ``ln(N_k + K)``;
    the symmetric ``k -> q`` row has ``N_k`` candidates (no queue) and the two are averaged:
    ``(ln(N_k + K) + ln N_k) / 2``. ``N_k`` = keys in the batch (all ranks' with ``gather``).
    """
    _positive("num_keys", num_keys)
    first = math.log((num_keys if in_batch_negatives else 1) + queue_size)
    if not symmetric:
        return first
    return 0.5 * (first + math.log(num_keys))


def multi_positive_chance(num_positives: int, num_negatives: int, *, mode: str = "sum_numerator") -> float:
    """:func:`~glocal.objectives.info_nce.multi_positive_nce` on constant scores.

    ``sum_numerator``: ``LSE(P ∪ N) - LSE(P) = ln((P + K)/P)``; ``separate_rows``: each row
    ``log(e^s + Σ_n e^s) - s = ln(1 + K)`` (VCLR inter: ``K`` = queue size).
    """
    _positive("num_positives", num_positives)
    if mode == "sum_numerator":
        return math.log((num_positives + num_negatives) / num_positives)
    return math.log(1 + num_negatives)


def seco_intra_chance(num_negatives: int, *, mode: str = "pairwise") -> float:
    """:func:`~glocal.objectives.vclr.seco_intra_loss` on constant scores: ``pairwise`` rows are
    2-way (``ln 2``), the ``joint`` row has ``1 + J`` candidates (``ln(1 + J)``)."""
    _positive("num_negatives", num_negatives)
    return math.log(2) if mode == "pairwise" else math.log(1 + num_negatives)


def nn_augmented_chance(num_keys: int, queue_size: int, num_neighbours: int, *, nn_positives: bool = True,
                        in_batch_negatives: bool = False) -> float:
    """:func:`~glocal.objectives.avts.nn_augmented_nce` on constant scores.

    Positives ``P = 1 + m`` (``m`` queue neighbours, only if ``nn_positives``, else ``P = 1``);
    negatives = the other in-batch keys (``N_k - 1`` if in-batch) + the queue minus its ``m``
    neighbours. Chance ``= ln((P + #negatives) / P)``.
    """
    _positive("num_keys", num_keys)
    m = num_neighbours
    pos = 1 + (m if nn_positives else 0)
    neg = (num_keys - 1 if in_batch_negatives else 0) + queue_size - m
    return math.log((pos + neg) / pos)
