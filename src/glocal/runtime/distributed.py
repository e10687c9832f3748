"""Data-parallel training on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``glocal pretrain`` runs unchanged under ``torchrun --nproc_per_node N``: :func:`init_distributed`
reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (set by torchrun), joins the process group
(``nccl`` on CUDA, ``gloo`` on CPU) and pins each rank to ``cuda:LOCAL_RANK``. Without those
variables (or with ``WORLD_SIZE=1``) everything here degrades to the single-process case.

Pieces:

* :class:`DistributedBatchSampler` — exact epochs: one seeded permutation per epoch shared by all
  ranks; global batch ``s`` is ``perm[s·W·B : (s+1)·W·B]`` and rank ``r`` takes the ``r``-th block
  of ``B`` of it. So ``W`` ranks × ``B`` see exactly the batches one process with ``W·B`` would
  (what makes gathered negatives and SyncBN reproduce single-process training), every sample is
  used at most once per epoch, and the ``N mod W·B`` left-over samples of the permutation are
  dropped (``drop_last``; a different remainder each epoch). Resuming mid-epoch skips the batches
  already done.
* :class:`SyncBatchNorm` — batch statistics over the global batch on **any** device (torch's own
  ``nn.SyncBatchNorm`` only runs on GPUs; :func:`convert_sync_batchnorm` uses it on CUDA).
"""

from __future__ import annotations

import datetime
import itertools
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Sampler

from ..errors import ConfigError, GlocalError
from .gather import all_gather_with_grad, dist_info
from .precision import resolve_device

__all__ = [
    "DistContext",
    "init_distributed",
    "shutdown_distributed",
    "DistributedBatchSampler",
    "SyncBatchNorm",
    "convert_sync_batchnorm",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size, its device, whether it created the group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that logs, prints and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, x: Tensor) -> Tensor:
        """Sum of ``x`` over ranks (in place; returned for convenience)."""
        if self.enabled:
            dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a picklable value)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device_setting: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join the process group described by torchrun's environment (or reuse an existing one).

    Args:
        device_setting: ``train.device`` (``auto`` | ``cpu`` | ``cuda``).
        timeout_s: collective timeout (a rank that waits longer for the others fails).

    Returns:
        The :class:`DistContext`; ``owns_group`` tells whether :func:`shutdown_distributed` should
        destroy the group at the end.
    """
    device = resolve_device(device_setting)
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        backend = str(dist.get_backend())
        local_rank = _env_int("LOCAL_RANK", rank)
        if backend == "nccl":
            device = torch.device("cuda", local_rank)
        return DistContext(rank, world, local_rank, device, backend, owns_group=False)
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistContext(device=device)
    if not dist.is_available():
        raise GlocalError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support")
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are visible; "
                "use --nproc_per_node <= the number of GPUs"
            )
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, backend, owns_group=True)


def shutdown_distributed(ctx: DistContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


class DistributedBatchSampler(Sampler[list[Any]]):
    """Per-rank batches of a seeded per-epoch permutation (exact epochs, ``drop_last``).

    Args:
        size: dataset length ``N``.
        batch_size: per-rank batch ``B`` (``train.batch_size``).
        seed: permutation seed (same on every rank).
        rank, world_size: this rank and ``W``.
        with_epoch: yield ``(epoch, index)`` pairs instead of indices, so the epoch travels with
            each index to the dataset (persistent DataLoader workers hold their own copy of the
            dataset and never see a ``set_epoch`` made in the main process).

    Epoch ``e`` uses ``perm = randperm(N, seed·100003 + e)``; batch ``s`` of rank ``r`` is
    ``perm[s·W·B + r·B : s·W·B + (r+1)·B]`` for ``s < N // (W·B)`` (:attr:`batches_per_epoch`).
    With ``W = 1`` this is exactly a ``DataLoader(batch_size=B, drop_last=True)`` over the
    permutation.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, with_epoch: bool = False
    ) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad sampler arguments: batch_size={batch_size}, rank={rank}, world_size={world_size}")
        if size < batch_size * world_size:
            raise GlocalError(
                f"the training split has {size} samples, fewer than one global batch "
                f"(train.batch_size={batch_size} per rank x {world_size} ranks)"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.with_epoch = bool(with_epoch)
        self.epoch, self.start_batch = 0, 0

    @property
    def global_batch(self) -> int:
        """``W·B`` clips per step over all ranks."""
        return self.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> int:
        """Full global batches per epoch (the remainder is dropped)."""
        return self.size // self.global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's permutation; skip its first ``start_batch`` batches (exact resume)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} not in [0, {self.batches_per_epoch}]")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def permutation(self, epoch: int) -> list[int]:
        """The permutation of ``epoch`` shared by all ranks."""
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[list[Any]]:
        epoch = self.epoch
        perm = self.permutation(epoch)
        gb, b = self.global_batch, self.batch_size
        for s in range(self.start_batch, self.batches_per_epoch):
            base = s * gb + self.rank * b
            batch = perm[base : base + b]
            yield [(epoch, i) for i in batch] if self.with_epoch else batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics cover the batches of every rank.

    Works on any device and backend (CPU + gloo included). Each rank computes its per-channel
    mean, biased variance and count in fp32, gathers them from all ranks with gradients and
    combines them (parallel variance formula), so the forward *and* backward equal a plain
    ``BatchNorm`` over the concatenated global batch. In eval mode, or with one process, it is a
    plain BatchNorm. State-dict keys are those of ``nn.BatchNorm*d`` (checkpoints interchange).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects at least 2-D input (N, C, ...); got {input.dim()}-D")

    def forward(self, input: Tensor) -> Tensor:
        _, world = dist_info()
        if not (self.training and world > 1):
            return super().forward(input)
        self._check_input_dim(input)
        c = input.shape[1]
        dims = [0, *range(2, input.dim())]
        x = input.float()
        count = x.numel() // c
        mean_l = x.mean(dim=dims)
        var_l = x.var(dim=dims, unbiased=False)
        stats = torch.cat([mean_l, var_l, torch.full((1,), float(count), device=x.device)])
        every = all_gather_with_grad(stats.unsqueeze(0))  # (W, 2C + 1)
        means, variances, counts = every[:, :c], every[:, c : 2 * c], every[:, 2 * c :]
        total = counts.sum()
        # mean = Σ n_r μ_r / N;  var = Σ n_r (σ²_r + (μ_r − mean)²) / N
        mean = (counts * means).sum(dim=0) / total
        var = (counts * (variances + (means - mean) ** 2)).sum(dim=0) / total
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                momentum = (
                    1.0 / float(self.num_batches_tracked) if self.momentum is None else float(self.momentum)
                )
                unbiased = var.detach() * total.detach() / (total.detach() - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = [1, c] + [1] * (input.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape).float() + self.bias.view(shape).float()
        return y.to(input.dtype)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, (SyncBatchNorm, nn.SyncBatchNorm)):
        new = SyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        ref = next(itertools.chain(module.parameters(), module.buffers()), None)
        if ref is not None:
            new = new.to(ref.device)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        if module.affine:
            new.weight.requires_grad_(module.weight.requires_grad)
            new.bias.requires_grad_(module.bias.requires_grad)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm by a synchronised one: torch's on CUDA, :class:`SyncBatchNorm` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)
