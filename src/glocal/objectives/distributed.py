"""Contrastive negatives from every rank: autograd-aware all-gather and the "local loss" pattern.

With data-parallel training each rank holds ``B`` of the ``W·B`` clips of a global batch. To
contrast against the negatives of *all* ranks, a loss

1. gathers the embeddings of every rank with :func:`all_gather_with_grad` (rank-major order: rank
   ``r`` owns rows ``[r·B, (r+1)·B)``, which the engine's sampler makes the same order as the
   single-process batch), and
2. computes only **its own rows** of the score matrix — its local anchors against all candidates
   (and, for symmetric losses, all anchors against its local candidates) — and returns the mean
   over its local anchors ("local loss", as in open_clip's ``ClipLoss(local_loss=True,
   gather_with_grad=True)``). Memory is linear in the global batch instead of quadratic.

Gradients: the backward of the gather sums the gradients that *every* rank's loss sends to this
rank's embeddings. DistributedDataParallel then **averages** parameter gradients over the ``W``
ranks, so the update equals the one of the single-process loss on the whole ``W·B`` batch
(``mean_r L_r`` = mean over all anchors). ``tests/train/test_distributed.py`` checks this: 2 ranks
× ``B/2`` give the same loss (mean over ranks) and gradients as 1 rank × ``B``.

Without an initialised process group (or with one rank) every function here is the identity /
the plain single-process computation.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from .mil_nce import POOL_MODES, mil_nce_from_parts

__all__ = ["dist_info", "all_gather_with_grad", "all_gather_no_grad", "mil_nce_local"]


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate ``x`` of every rank along dim 0; backward = sum over ranks, own slice."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:  # type: ignore[override]
        rank, world = dist_info()
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x)
        ctx.rank, ctx.rows = rank, x.shape[0]  # type: ignore[attr-defined]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:  # type: ignore[override]
        rank, rows = ctx.rank, ctx.rows  # type: ignore[attr-defined]
        grad = grad.contiguous()
        if dist.get_backend() == dist.Backend.NCCL:
            # d(sum_r' L_r')/dx_rank = sum over ranks of each rank's gradient for this slice
            out = torch.empty_like(grad[:rows])
            dist.reduce_scatter_tensor(out, grad, op=dist.ReduceOp.SUM)
            return out
        # gloo has no reduce-scatter: all-reduce the whole gradient, keep this rank's slice
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[rank * rows : (rank + 1) * rows]


def all_gather_with_grad(x: Tensor) -> Tensor:
    """``(B, ...)`` on each rank → ``(W·B, ...)`` in rank order, differentiable.

    Every rank must call it with the same shape (the engine's sampler gives every rank the same
    batch size). The gradient flowing back to ``x`` is the sum, over all ranks, of the gradients
    their losses send to these rows. Identity when not distributed.
    """
    _, world = dist_info()
    if world == 1:
        return x
    return _AllGatherWithGrad.apply(x)


@torch.no_grad()
def all_gather_no_grad(x: Tensor) -> Tensor:
    """``(B, ...)`` on each rank → ``(W·B, ...)`` in rank order, detached (e.g. keys for a queue:
    every rank enqueues the same gathered keys, so queues stay identical across ranks)."""
    _, world = dist_info()
    if world == 1:
        return x.detach()
    x = x.detach().contiguous()
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x)
    return torch.cat(parts, dim=0)


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
