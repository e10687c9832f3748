"""Cross-rank gathers for contrastive losses: autograd-aware all-gather, the "local loss"
pattern and Shuffle-BN.

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

Shuffle-BN (He et al., MoCo): :func:`batch_shuffle` / :func:`batch_unshuffle` /
:func:`shuffled_forward` run a no-gradient network (a momentum key encoder) on a random
cross-rank shard of the global batch, so that its BatchNorm statistics are not computed over the
same samples as the query encoder's on this rank (which would let the queries "cheat" through
the per-rank BN statistics). With one process they are the identity: BatchNorm already sees the
whole batch.

Without an initialised process group (or with one rank) every function here is the identity /
the plain single-process computation.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "dist_info",
    "all_gather_with_grad",
    "all_gather_no_grad",
    "batch_shuffle",
    "batch_unshuffle",
    "shuffled_forward",
]


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


@torch.no_grad()
def _gather_rows(x: Tensor) -> Tensor:
    """:func:`all_gather_no_grad` that also works for fp16 / bf16 on gloo (gathered in fp32: exact)."""
    if x.dtype in (torch.float16, torch.bfloat16) and dist.get_backend() == dist.Backend.GLOO:
        return all_gather_no_grad(x.float()).to(x.dtype)
    return all_gather_no_grad(x)


@torch.no_grad()
def batch_shuffle(x: Tensor) -> tuple[Tensor, Tensor | None]:
    """This rank's shard of a random permutation of the global batch (shuffle-BN, step 1).

    Gathers ``x`` ``(B, ...)`` of every rank (rank order: global rows ``[r·B, (r+1)·B)`` belong to
    rank ``r``), draws a permutation ``perm`` of the ``W·B`` rows on rank 0 (``torch.randperm``
    with rank 0's default generator on ``x.device``) and broadcasts it, and returns
    ``(x_all[perm[rank·B : (rank+1)·B]], unshuffle)`` with ``unshuffle = argsort(perm)`` for
    :func:`batch_unshuffle`. Every rank must call it with the same ``B`` (a clear error
    otherwise). Detached. With one process: ``(x, None)``, no random draw.
    """
    rank, world = dist_info()
    if world == 1:
        return x, None
    b = x.shape[0]
    sizes = all_gather_no_grad(torch.tensor([b], device=x.device))
    if bool((sizes != b).any()):
        raise ValueError(f"shuffle-BN needs the same batch size on every rank; got {sizes.tolist()}")
    x_all = _gather_rows(x)
    n = x_all.shape[0]
    if rank == 0:
        perm = torch.randperm(n, device=x.device)
    else:
        perm = torch.empty(n, dtype=torch.long, device=x.device)
    dist.broadcast(perm, src=0)
    shard = x_all[perm[rank * b : (rank + 1) * b]]
    if x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d):
        shard = shard.contiguous(memory_format=torch.channels_last_3d)  # keep the caller's layout
    return shard, torch.argsort(perm)


@torch.no_grad()
def batch_unshuffle(y: Tensor, unshuffle: Tensor | None) -> Tensor:
    """Undo :func:`batch_shuffle` on an output ``y`` ``(B, ...)`` of the shard (shuffle-BN, step 2).

    Gathers ``y`` of every rank (``y_all[j]`` belongs to global row ``perm[j]``) and returns this
    rank's original rows in their original order, ``y_all[unshuffle[rank·B : (rank+1)·B]]``.
    Detached. Identity when ``unshuffle`` is None (one process).
    """
    if unshuffle is None:
        return y
    rank, world = dist_info()
    b = y.shape[0]
    if b * world != unshuffle.shape[0]:
        raise ValueError(f"batch_unshuffle: {b} rows x {world} ranks do not match a shuffle of {unshuffle.shape[0]}")
    return _gather_rows(y)[unshuffle[rank * b : (rank + 1) * b]]


def _map_tensors(fn: Callable[[Tensor], Tensor], out: Any) -> Any:
    if isinstance(out, Tensor):
        return fn(out)
    if isinstance(out, (tuple, list)):
        return type(out)(_map_tensors(fn, o) for o in out)
    if isinstance(out, dict):
        return {k: _map_tensors(fn, v) for k, v in out.items()}
    raise TypeError(f"shuffle-BN: cannot un-shuffle an output of type {type(out).__name__}")


@torch.no_grad()
def shuffled_forward(fn: Callable[[Tensor], Any], x: Tensor) -> Any:
    """``fn(x)`` computed with shuffle-BN: ``fn`` runs on a random cross-rank shard of the global
    batch (:func:`batch_shuffle`) and every tensor of its output (a tensor, or a tuple / list /
    dict of them, each with ``B`` rows) is returned in this rank's original order
    (:func:`batch_unshuffle`). Row ``i`` of the result is ``fn``'s output for ``x[i]``, with the
    BatchNorm statistics (train mode) of the shard it was processed in. No gradients. With one
    process: plain ``fn(x)``.
    """
    shard, unshuffle = batch_shuffle(x)
    out = fn(shard)
    if unshuffle is None:
        return out
    return _map_tensors(lambda y: batch_unshuffle(y, unshuffle), out)
