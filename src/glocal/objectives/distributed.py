"""MIL-NCE over every rank's negatives with the "local loss" pattern of
:mod:`glocal.runtime.gather`: this rank's anchors against all ranks' candidates, memory linear in
the global batch."""

from __future__ import annotations

import torch
from torch import Tensor

from ..runtime.gather import all_gather_with_grad, dist_info
from .mil_nce import POOL_MODES, mil_nce_from_parts

__all__ = ["mil_nce_local"]


def mil_nce_local(
    rows: Tensor, cols: Tensor, offset: int, *, symmetric: bool = True, pool: str = "lse"
) -> Tensor:
    """MIL-NCE of this rank's anchors given its rows (and columns) of the global score tensor.

    With the global ``(A, A, M)`` score tensor ``s`` of :func:`~glocal.objectives.mil_nce` and
    this rank's anchors ``i ∈ [offset, offset + a)``:

    Args:
        rows: ``(a, A, M)``, ``rows[i', j, m] = s[offset + i', j, m]`` (local anchors vs every
            item).
        cols: ``(A, a, M)``, ``cols[j, i', m] = s[j, offset + i', m]`` (every anchor vs the local
            items); only read when ``symmetric``.
        offset: global index of the first local anchor.
        symmetric, pool: as in :func:`~glocal.objectives.mil_nce`.

    Returns:
        0-dim tensor: the mean over the ``a`` local anchors of
        ``LSE(row_i ∪ col_i) - pool_m s[i, i, m]``. With ``a == A``, ``offset == 0`` and
        ``rows == cols == s`` this equals ``mil_nce(s)``; the mean over ranks of the per-rank
        values equals ``mil_nce`` of the global tensor.
    """
    if pool not in POOL_MODES:
        raise ValueError(f"mil_nce_local: pool must be one of {POOL_MODES}; got {pool!r}")
    if rows.dim() != 3:
        raise ValueError(f"rows must have shape (a, A, M); got {tuple(rows.shape)}")
    a, n_all, m = rows.shape
    if not 0 <= offset <= n_all - a:
        raise ValueError(f"offset {offset} with {a} local anchors does not fit {n_all} items")
    if symmetric and tuple(cols.shape) != (n_all, a, m):
        raise ValueError(f"cols must have shape (A, a, M) = {(n_all, a, m)}; got {tuple(cols.shape)}")
    local = torch.arange(a, device=rows.device)
    # Positives: pos[i', m] = s[offset + i', offset + i', m]                    -> (a, M)
    pos = rows[local, offset + local]
    col_scores = cols.transpose(0, 1).reshape(a, n_all * m) if symmetric else None
    return mil_nce_from_parts(pos, rows.reshape(a, n_all * m), col_scores, pool)
