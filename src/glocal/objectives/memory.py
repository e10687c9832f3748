"""Memory bank (FIFO feature queue) and momentum (EMA) update, spec 7.7.

Several independent :class:`FeatureQueue` instances can coexist (VCLR uses two); each owns its
own buffers, which travel with ``.to(device)`` and ``state_dict()`` (checkpointing, spec 7.8).
Cross-GPU gathering of keys is the caller's job: pass the gathered keys to :meth:`enqueue`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FeatureQueue", "momentum_update"]


class FeatureQueue(nn.Module):
    """FIFO queue of ``size`` L2-normalised ``dim``-d keys.

    Buffers:
        queue: ``(size, dim)``, initialised i.i.d. uniform in ``[-σ, σ]`` with
            ``σ = 1 / sqrt(dim / 3)`` (so each initial row has expected squared norm 1; VCLR / CMC).
        ptr: 0-dim ``long``, the row the next key is written to.

    Args:
        size: number of stored keys ``K``.
        dim: key dimension ``D``.
        stdv: override of ``σ``.
        generator: optional RNG for the initialisation.
    """

    queue: Tensor
    ptr: Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        stdv: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"FeatureQueue needs size >= 1 and dim >= 1; got size={size}, dim={dim}")
        self.size = int(size)
        self.dim = int(dim)
        # σ = 1 / sqrt(D / 3);  queue_kd ~ U[-σ, σ]
        sigma = 1.0 / math.sqrt(dim / 3.0) if stdv is None else float(stdv)
        init = torch.rand(size, dim, generator=generator) * (2.0 * sigma) - sigma
        self.register_buffer("queue", init)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (``(N, D)``, L2-normalised here, detached) FIFO with wrap-around.

        Key ``n`` goes to row ``(ptr + n) mod size`` and ``ptr`` advances by ``N`` (mod size).
        If ``N > size`` only the last ``size`` keys survive, as in a true FIFO.
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"enqueue expects keys of shape (N, {self.dim}); got {tuple(keys.shape)}")
        n = keys.shape[0]
        if n == 0:
            return
        keys = F.normalize(keys.detach().to(self.queue.dtype), dim=1)
        first = 0
        if n > self.size:
            first = n - self.size
            keys = keys[first:]
        # rows (ptr + first + m) mod size for the kept keys m = 0..min(N, size)-1 (all distinct)
        idx = (self.ptr + first + torch.arange(keys.shape[0], device=self.queue.device)) % self.size
        self.queue.index_copy_(0, idx, keys.to(self.queue.device))
        self.ptr.copy_((self.ptr + n) % self.size)

    @torch.no_grad()
    def knn(self, x: Tensor, k: int) -> Tensor:
        """Indices ``(N, k)`` of the ``k`` stored rows most cosine-similar to each row of ``x``
        (``(N, D)``), most similar first."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"knn expects x of shape (N, {self.dim}); got {tuple(x.shape)}")
        if not 1 <= k <= self.size:
            raise ValueError(f"knn: k must be in [1, {self.size}]; got {k}")
        # cos(x_n, queue_m) = <x_n/|x_n|, queue_m/|queue_m|>
        sim = F.normalize(x.to(self.queue.dtype), dim=1) @ F.normalize(self.queue, dim=1).t()
        return sim.topk(k, dim=1).indices

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """EMA update of ``target`` from ``online`` (MoCo / VCLR key encoder), in place.

    Parameters: ``θ_target ← m · θ_target + (1 − m) · θ_online``.
    Buffers (e.g. BatchNorm running stats): copied from ``online``.

    Raises:
        ValueError: if ``m`` is outside ``[0, 1]`` or the two modules' parameter / buffer
            lists do not correspond (names and shapes).
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1]; got {m}")
    on_p, tg_p = dict(online.named_parameters()), dict(target.named_parameters())
    on_b, tg_b = dict(online.named_buffers()), dict(target.named_buffers())
    if on_p.keys() != tg_p.keys() or on_b.keys() != tg_b.keys():
        raise ValueError("momentum_update: online and target modules have different parameters/buffers")
    for name, p_t in tg_p.items():
        p_o = on_p[name]
        if p_o.shape != p_t.shape:
            raise ValueError(f"momentum_update: shape mismatch for parameter {name!r}")
        # θ_t = m θ_t + (1 - m) θ_o
        p_t.mul_(m).add_(p_o.detach(), alpha=1.0 - m)
    for name, b_t in tg_b.items():
        b_t.copy_(on_b[name])
