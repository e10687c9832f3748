"""GLCM recipe: shapes, gradients to every encoder, release_exact semantics, eval hooks."""

from __future__ import annotations

import pytest
import torch

from glocal.config import check
from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES

from glocal.errors import ConfigError
from glocal.methods import build_method
from glocal.methods.glcm import GLCMConfig
from glocal.objectives import glcm_global_loss

TINY = dict(width_mult=0.125, fast_width_mult=0.5, audio_width_mult=0.125, stem_pool=False, slow_stride=4,
            proj_dim_global=16, proj_dim_local=8, n_mels=32)


def _batch(b=3, t=8, s=32, sr=8000, fps=8.0):
    g = torch.Generator().manual_seed(0)
    return {"clip/video": torch.randn(b, 3, t, s, s, generator=g),
            "clip/audio": torch.randn(b, int(sr * t / fps), generator=g)}


def _method(**kw):
    torch.manual_seed(0)
    return build_method(GLCMConfig(**{**TINY, **kw}), DataConfig(sample_rate=8000, fps=8.0))


def test_losses_and_gradients_reach_every_encoder():
    m = _method()
    losses = m.training_losses(_batch())
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", "loss_global", "loss_local"}
    assert torch.isfinite(losses["loss"])
    assert losses["loss"].item() == pytest.approx(losses["loss_global"].item() + losses["loss_local"].item(), rel=1e-5)
    losses["loss"].backward()
    for name in ("slow", "fast", "audio", "v_proj_global", "v_proj_local", "a_proj_global", "a_proj_local"):
        grads = [p.grad for p in getattr(m, name).parameters()]
        assert all(g is not None for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name


def test_release_exact_uses_raw_dot_products():
    m = _method(release_exact=True)
    assert m.cfg.loss_normalize is False and m.cfg.loss_tau == 1.0
    m_norm = _method(release_exact=False)
    batch = _batch()
    with torch.no_grad():
        m.eval(), m_norm.eval()
        raw = m.training_losses(batch)["loss_global"]
        norm = m_norm.training_losses(batch)["loss_global"]
    assert not torch.isclose(raw, norm)
    # The global term equals the objective evaluated on the method's own features.
    with torch.no_grad():
        slow = m.v_proj_global(m.slow(batch["clip/video"][:, :, ::4]))
        v_bar = slow.mean(2).flatten(2)
        a_bar = m.a_proj_global(m._audio_trunk(batch["clip/audio"], 3 * 8)).mean(2)
        assert torch.allclose(glcm_global_loss(a_bar, v_bar, normalize=False, tau=1.0), raw, rtol=1e-4)


def test_eval_hooks_shapes():
    m = _method().eval()
    batch = _batch(b=2)
    with torch.no_grad():
        feats = m.video_features(batch["clip/video"])
        assert feats.shape == (2, m.slow.out_channels + m.fast.out_channels)
        assert m.audio_features(batch["clip/audio"]).shape == (2, m.audio.out_channels)
        maps, frames = m.localization_maps(batch["clip/video"], batch["clip/audio"])
        assert maps.shape[:2] == (2, 2) and frames.tolist() == [0, 4]
        assert torch.allclose(maps.flatten(2).sum(-1), torch.ones(2, 2), atol=1e-5)
        assert m.local_video_features(batch["clip/video"]).shape == (2, m.fast.out_channels, 8)
        assert m.local_audio_features(batch["clip/audio"], 8).shape == (2, m.audio.out_channels, 8)


def test_clip_length_must_divide_slow_stride():
    m = _method(slow_stride=3)
    with pytest.raises(ConfigError, match="multiple of method.slow_stride"):
        m.training_losses(_batch(t=8))


def test_bf16_autocast_close_to_fp32():
    m = _method().eval()
    batch = _batch()
    with torch.no_grad():
        ref = m.training_losses(batch)["loss"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m.training_losses(batch)["loss"]
    assert abs(low.item() - ref.item()) < 0.05 * abs(ref.item())


def test_audio_pool_max_and_proj_bn():
    """method.audio_pool=max: the global audio embedding is the max of the projected steps;
    method.proj_bn adds a BatchNorm (no affine) to each of the four projections."""
    torch.manual_seed(0)
    m = _method(audio_pool="max", proj_bn=True)
    trunk = torch.randn(3, m.audio.out_channels, 12)
    m.train()
    steps = m.a_proj_global(trunk).float()
    torch.testing.assert_close(m._audio_global(trunk), steps.amax(dim=2))
    assert isinstance(m.v_proj_global.norm, torch.nn.BatchNorm3d)
    assert isinstance(m.a_proj_local.norm, torch.nn.BatchNorm1d)
    assert isinstance(_method().a_proj_global.norm, torch.nn.Identity)
    mean_model = _method()
    torch.testing.assert_close(mean_model._audio_global(trunk[:, : mean_model.audio.out_channels]),
                               mean_model.a_proj_global(trunk[:, : mean_model.audio.out_channels]).mean(dim=2))


def test_audio_floor_quantile_removes_stationary_noise():
    """subtract_noise_floor: a constant (stationary) spectrogram maps to 0 whatever its level,
    an event above the floor keeps its height above it; GLCM applies it before the trunk."""
    from glocal.data.logmel import subtract_noise_floor

    floor = torch.full((2, 4, 10), -3.0)
    floor[1] += 5.0  # another noise level
    torch.testing.assert_close(subtract_noise_floor(floor, 0.2), torch.zeros(2, 4, 10))
    x = floor.clone()
    x[0, 2, 6:8] += 4.0  # an event in bin 2
    y = subtract_noise_floor(x, 0.2)
    assert y[0, 2, 6:8].eq(4.0).all() and y[0, 2, :6].eq(0).all()
    ref = x - torch.stack([torch.stack([torch.quantile(x[b, f], 0.2) for f in range(4)]) for b in range(2)])[..., None]
    torch.testing.assert_close(y, ref)
    with pytest.raises(ValueError):
        subtract_noise_floor(x, 1.5)
    with pytest.raises(ConfigError, match="audio_floor_quantile"):
        check(GLCMConfig(**{**TINY, "audio_floor_quantile": 2.0}))
    m = _method(audio_floor_quantile=0.2)
    losses = m.training_losses(_batch())
    assert torch.isfinite(losses["loss"])
