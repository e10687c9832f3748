"""MoCo recipe: queue loss = slow reference, gradients only to the online encoder, EMA + enqueue."""

from __future__ import annotations

import math

import torch

from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES
import torch.nn.functional as F

from glocal.methods import build_method
from glocal.methods.moco import MoCoConfig

TINY = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16, queue_size=16, momentum=0.9)


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"a/video": torch.randn(b, 3, 4, 32, 32, generator=g), "b/video": torch.randn(b, 3, 4, 32, 32, generator=g)}


def _method(**kw):
    torch.manual_seed(0)
    return build_method(MoCoConfig(**{**TINY, **kw}), DataConfig(sample_rate=16000, fps=8.0))


def _moco_reference(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> float:
    """``-log e^{q·k+/τ} / (e^{q·k+/τ} + Σ_n e^{q·n/τ})`` row by row."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    total = 0.0
    for i in range(q.shape[0]):
        pos = math.exp(float(q[i] @ k[i]) / tau)
        neg = sum(math.exp(float(q[i] @ n) / tau) for n in queue)
        total += -math.log(pos / (pos + neg))
    return total / q.shape[0]


def test_gradients_reach_online_not_target() -> None:
    m = _method()
    losses = m.training_losses(_batch())
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", "loss_nce"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert all(p.grad is not None for p in m.online.parameters())
    assert any(p.grad.abs().sum() > 0 for p in m.online.encoder.parameters())
    assert all(p.grad is None and not p.requires_grad for p in m.target.parameters())


def test_loss_matches_reference() -> None:
    m = _method().eval()
    batch = _batch()
    with torch.no_grad():
        value = m.training_losses(batch)["loss"].item()
        q = m.online(batch["a/video"])[1]
        k = m.target(batch["b/video"])[1]
    assert abs(value - _moco_reference(q, k, m.queue.queue, m.cfg.tau)) < 1e-4


def test_on_step_end_updates_ema_and_enqueues_keys() -> None:
    m = _method(symmetric=True)
    batch = _batch()
    losses = m.training_losses(batch)
    assert m.queue.num_staged == 8 and int(m.queue.ptr) == 0  # both directions staged, nothing enqueued yet
    losses["loss"].backward()
    with torch.no_grad():
        for p in m.online.parameters():
            p.add_(0.5)
    before = [p.clone() for p in m.target.parameters()]
    m.target.eval()
    with torch.no_grad():
        k_b = m.target(batch["b/video"])[1]
    m.target.train()
    m.on_step_end()
    for p_t, p_0, p_o in zip(m.target.parameters(), before, m.online.parameters()):
        assert torch.allclose(p_t, 0.9 * p_0 + 0.1 * p_o, atol=1e-6)
    assert int(m.queue.ptr) == 8 and m.queue.num_staged == 0
    assert torch.allclose(m.queue.queue[:8].norm(dim=1), torch.ones(8), atol=1e-5)
    assert k_b.shape == (4, 16)
