"""Multiple-instance NCE (MIL-NCE) over a square, in-batch score tensor.

This is the loss GLCM (spec 1.6) uses for both its global and its local term. It works on a
precomputed score tensor so that the same function serves every grouping:

* ``scores`` has shape ``(A, A, M)``;
* ``scores[i, j, m]`` is the score between anchor ``i`` of modality X and instance ``m`` of item
  ``j`` of modality Y;
* the positives of anchor ``i`` are the ``M`` instances of item ``i`` (the diagonal ``i == j``).

Callers apply any normalisation / temperature before building ``scores``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mil_nce", "POOL_MODES"]

#: Accepted values of ``mil_nce(pool=...)``.
POOL_MODES = ("lse", "mean", "max")


def mil_nce(scores: Tensor, *, symmetric: bool = True, pool: str = "lse") -> Tensor:
    """Mean MIL-NCE loss over the ``A`` anchors of a ``(A, A, M)`` score tensor.

    Args:
        scores: ``(A, A, M)`` scores (logits, i.e. already divided by any temperature);
            ``scores[i, j, m]`` = anchor ``i`` (modality X) vs. instance ``m`` of item ``j``
            (modality Y). Positives are ``scores[i, i, :]``.
        symmetric: if True (GLCM's released semantics) the denominator of anchor ``i`` holds
            row ``i`` (anchor ``i`` vs. every instance of every item) **and** column ``i``
            (every anchor vs. every instance of item ``i``), so the ``M`` positive terms
            appear twice. If False, only row ``i``.
        pool: how the ``M`` positive scores of an anchor are pooled into its numerator:
            ``"lse"`` = ``LSE_m s_iim`` (sum of exponentials, standard MIL-NCE),
            ``"mean"`` = ``mean_m s_iim``, ``"max"`` = ``max_m s_iim``.

    Returns:
        A 0-dim tensor: the loss averaged over the ``A`` anchors.

    With ``M == 1`` and ``symmetric=False`` this is exactly the standard InfoNCE
    (cross-entropy of each row against its diagonal label).
    """
    if scores.dim() != 3 or scores.shape[0] != scores.shape[1]:
        raise ValueError(
            f"mil_nce expects scores of shape (A, A, M); got {tuple(scores.shape)}"
        )
    if pool not in POOL_MODES:
        raise ValueError(f"mil_nce: pool must be one of {POOL_MODES}; got {pool!r}")
    n_anchor, _, n_inst = scores.shape

    # Positives: pos[i, m] = s_{i i m}                                    -> (A, M)
    pos = scores.diagonal(dim1=0, dim2=1).transpose(0, 1)
    rows = scores.reshape(n_anchor, n_anchor * n_inst)
    cols = scores.transpose(0, 1).reshape(n_anchor, n_anchor * n_inst) if symmetric else None
    return mil_nce_from_parts(pos, rows, cols, pool)


def mil_nce_from_parts(pos: Tensor, rows: Tensor, cols: Tensor | None, pool: str) -> Tensor:
    """MIL-NCE from its parts, shared by :func:`mil_nce` and the distributed local-loss form.

    Args:
        pos: ``(a, M)`` positive scores ``s_iim`` of the ``a`` anchors.
        rows: ``(a, K)`` every score of anchor ``i``'s row ``{s_ijm}``.
        cols: ``(a, K)`` every score of anchor ``i``'s column ``{s_jim}``, or None (not symmetric).
        pool: how positives are pooled: ``"lse"`` | ``"mean"`` | ``"max"``.
    """
    # Numerator (log domain), per anchor i:
    #   lse:  log sum_m exp(s_iim);   mean: (1/M) sum_m s_iim;   max: max_m s_iim
    if pool == "lse":
        numer = torch.logsumexp(pos, dim=1)
    elif pool == "mean":
        numer = pos.mean(dim=1)
    else:
        numer = pos.amax(dim=1)
    # Row part of the denominator: R_i = LSE_{j,m} s_ijm
    denom = torch.logsumexp(rows, dim=1)
    if cols is not None:
        # Column part: C_i = LSE_{j,m} s_jim; the union's LSE is
        #   LSE({s_ijm} ∪ {s_jim}) = log(exp(R_i) + exp(C_i))  (multiset: positives counted twice)
        denom = torch.logaddexp(denom, torch.logsumexp(cols, dim=1))
    # L = mean_i [ denom_i - numer_i ]
    return (denom - numer).mean()
