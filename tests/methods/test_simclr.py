"""SimCLR recipe: data hooks, loss = slow symmetric NT-Xent reference, gradients, eval hook."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glocal.config import check
from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES

from glocal.methods import build_method
from glocal.methods.simclr import SimCLR, SimCLRConfig

TINY = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)
DATA = DataConfig(clip_frames=4, fps=8.0, crop_size=32, crop_scale=(0.2, 1.0), flip_p=0.5, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8,
                       grayscale_p=0.2)


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"a/video": torch.randn(b, 3, 4, 32, 32, generator=g), "b/video": torch.randn(b, 3, 4, 32, 32, generator=g)}


def _method(**kw):
    torch.manual_seed(0)
    return build_method(SimCLRConfig(**{**TINY, **kw}), DataConfig(sample_rate=16000, fps=8.0))


def _nt_xent_reference(za: torch.Tensor, zb: torch.Tensor, tau: float) -> float:
    """Loop form of the symmetric InfoNCE with cross-view in-batch negatives."""
    za, zb = torch.nn.functional.normalize(za, dim=1), torch.nn.functional.normalize(zb, dim=1)
    n, total = za.shape[0], 0.0
    for x, y in ((za, zb), (zb, za)):
        for i in range(n):
            denom = sum(math.exp(float(x[i] @ y[j]) / tau) for j in range(n))
            total += -math.log(math.exp(float(x[i] @ y[i]) / tau) / denom)
    return total / (2 * n)


def test_data_hooks() -> None:
    m = build_method(SimCLRConfig(**TINY), DATA)
    plan = m.build_sampler().plan(np.random.default_rng(0), 0.0, 4.0, 8.0)
    assert [v.name for v in plan.views] == ["a", "b"]
    assert all(v.audio is None and len(v.times) == 4 for v in plan.views)
    assert set(m.transforms()) == {"clip"} and not m.transforms()["clip"].per_frame


def test_loss_matches_reference_and_gradients_reach_encoder() -> None:
    m = _method()
    batch = _batch()
    losses = m.training_losses(batch)
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", "loss_nce"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    for part in (m.online.encoder, m.online.head):
        assert all(p.grad is not None for p in part.parameters())
        assert any(p.grad.abs().sum() > 0 for p in part.parameters())
    m.eval()
    with torch.no_grad():
        value = m.training_losses(batch)["loss"].item()
        za = m.online(batch["a/video"])[1]
        zb = m.online(batch["b/video"])[1]
    assert abs(value - _nt_xent_reference(za, zb, m.cfg.tau)) < 1e-4


def test_video_features_and_2d_backbone() -> None:
    m = _method(backbone="resnet2d", depth=18).eval()
    with torch.no_grad():
        feats = m.video_features(torch.randn(2, 3, 4, 32, 32))
    assert feats.shape == (2, m.online.encoder.out_channels)
    m.train()
    assert torch.isfinite(m.training_losses(_batch(2))["loss"])


def test_background_swap_only_on_b_in_training_and_validated() -> None:
    from glocal.errors import ConfigError

    batch = {k: v.repeat(1, 1, 2, 1, 1) for k, v in _batch().items()}  # 8 frames: a median to swap
    m = _method(background_swap_p=1.0, background_swap_area=0.3)
    a, b = m.pair(batch)
    assert a is batch["a/video"] and not torch.equal(b, batch["b/video"])
    m.eval()
    a, b = m.pair(batch)
    assert b is batch["b/video"]  # evaluation never swaps
    off = _method()
    assert off.pair(batch)[1] is batch["b/video"]  # off by default
    for bad in ({"background_swap_p": 1.5}, {"background_swap_area": 0.0}):
        with pytest.raises(ConfigError, match="method.background_swap"):
            check(SimCLRConfig(**{**TINY, **bad}), prefix="method.")


def test_nn_support_plain_until_full_then_neighbours_and_checkpointed() -> None:
    """NNCLR option: plain SimCLR while the support set fills, the NNCLR loss once full; the set
    and its fill count travel in the state dict (exact resume)."""
    from glocal.objectives import info_nce, nnclr_loss

    assert _method().support is None  # off by default
    m = _method(nn_support=6).eval()
    batch = _batch(4)
    with torch.no_grad():
        za = m.online(batch["a/video"])[1].float()
        zb = m.online(batch["b/video"])[1].float()
        first = m.training_losses(batch)["loss"]
        assert torch.allclose(first, info_nce(za, zb, tau=m.cfg.tau, symmetric=True), atol=1e-5)
        m.on_step_end()
        assert m.support.keys_written == 4 and not m.support.full
        m.training_losses(batch)
        m.on_step_end()  # 8 >= 6 keys: full; FIFO rows 4, 5, 0, 1 took the second step's clips
        assert m.support.full and int(m.support.written) == 8
        assert torch.allclose(m.support.queue, torch.nn.functional.normalize(za, dim=1)[[2, 3, 2, 3, 0, 1]], atol=1e-6)
        loss = m.training_losses(batch)["loss"]
        assert torch.allclose(loss, nnclr_loss(za, zb, m.support.queue, tau=m.cfg.tau), atol=1e-5)
    state = m.state_dict()
    fresh = _method(nn_support=6)
    assert not fresh.support.full
    fresh.load_state_dict(state)
    assert fresh.support.full and torch.equal(fresh.support.queue, m.support.queue)
