"""AVID recipe: cross-modal NCE both directions = slow reference, memories, gradients, eval hooks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glocal.config import check
from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES
import torch.nn.functional as F

from glocal.errors import ConfigError
from glocal.methods import build_method
from glocal.methods.avid import AVID, AVIDConfig

TINY = dict(depth=10, width_mult=0.125, audio_width_mult=0.125, proj_hidden=32, proj_dim=16, logmel_preset="glcm",
            n_mels=32, queue_size=8)
SR = 8000


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {"clip/video": torch.randn(b, 3, 4, 32, 32, generator=g), "clip/audio": torch.randn(b, SR // 2, generator=g)}


def _method(**kw):
    torch.manual_seed(0)
    return build_method(AVIDConfig(**{**TINY, **kw}), DataConfig(sample_rate=SR, fps=8.0))


def _nce_reference(x: torch.Tensor, y: torch.Tensor, memory: torch.Tensor, tau: float) -> float:
    """``-log e^{x_i·y_i/τ} / (Σ_j e^{x_i·y_j/τ} + Σ_n e^{x_i·n/τ})`` row by row."""
    total = 0.0
    for i in range(x.shape[0]):
        denom = sum(math.exp(float(x[i] @ y[j]) / tau) for j in range(y.shape[0]))
        denom += sum(math.exp(float(x[i] @ n) / tau) for n in memory)
        total += -math.log(math.exp(float(x[i] @ y[i]) / tau) / denom)
    return total / x.shape[0]


@pytest.mark.parametrize("audio_encoder", ["resnet2d", "resnet1d"])
def test_losses_finite_and_gradients_reach_both_encoders(audio_encoder: str) -> None:
    m = _method(audio_encoder=audio_encoder)
    losses = m.training_losses(_batch())
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", "loss_v2a", "loss_a2v"} and torch.isfinite(losses["loss"])
    assert losses["loss"].item() == pytest.approx(0.5 * (losses["loss_v2a"].item() + losses["loss_a2v"].item()), rel=1e-5)
    losses["loss"].backward()
    for part in (m.video, m.audio.trunk, m.video_head, m.audio_head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_both_directions_match_reference_and_memories_fill_on_step_end() -> None:
    m = _method().eval()
    batch = _batch()
    with torch.no_grad():
        losses = m.training_losses(batch)
        v = F.normalize(m.video_head(m.video(batch["clip/video"])), dim=1)
        a = F.normalize(m.audio_head(m.audio(batch["clip/audio"])), dim=1)
    assert m.audio_queue is not None and m.video_queue is not None
    assert abs(losses["loss_v2a"].item() - _nce_reference(v, a, m.audio_queue.queue, m.cfg.tau)) < 1e-3
    assert abs(losses["loss_a2v"].item() - _nce_reference(a, v, m.video_queue.queue, m.cfg.tau)) < 1e-3
    assert int(m.audio_queue.ptr) == 0
    m.on_step_end()
    assert int(m.audio_queue.ptr) == 4 and int(m.video_queue.ptr) == 4
    assert torch.allclose(m.audio_queue.queue[:4], a, atol=1e-5)
    assert torch.allclose(m.video_queue.queue[:4], v, atol=1e-5)


def test_in_batch_only_and_config_checks() -> None:
    m = _method(queue_size=0)
    assert m.video_queue is None and torch.isfinite(m.training_losses(_batch())["loss"])
    with pytest.raises(ConfigError, match="in_batch_negatives"):
        AVIDConfig(queue_size=0, in_batch_negatives=False).validate()


def test_max_position_score_matches_a_per_position_reference_and_trains_the_heads() -> None:
    m = _method(queue_size=0, av_score="max_position").eval()
    batch = _batch()
    with torch.no_grad():
        losses = m.training_losses(batch)
        fmap = m.video.feature_map(batch["clip/video"])  # (B, C, T', h, w)
        b, c, t, h, w = fmap.shape
        a = m.audio_head(m.audio(batch["clip/audio"]))
    # reference: the video head at each position separately, the best cosine per (audio, video) pair
    s = torch.empty(b, b)
    for j in range(b):
        per_pos = torch.stack([m.video_head(fmap[j : j + 1, :, k, y, x]) for k in range(t) for y in range(h)
                               for x in range(w)])[:, 0]  # (P, D)
        for i in range(b):
            s[i, j] = (per_pos @ a[i]).max() / m.cfg.tau
    ref_a2v = sum(torch.logsumexp(s[i], 0) - s[i, i] for i in range(b)) / b
    ref_v2a = sum(torch.logsumexp(s[:, j], 0) - s[j, j] for j in range(b)) / b
    assert losses["loss_a2v"].item() == pytest.approx(ref_a2v.item(), abs=1e-4)
    assert losses["loss_v2a"].item() == pytest.approx(ref_v2a.item(), abs=1e-4)
    m.train()
    out = m.training_losses(batch)
    out["loss"].backward()
    for part in (m.video, m.audio.trunk, m.video_head, m.audio_head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert "feat/video" in out and out["feat/video"].shape == (4, m.video.out_channels)
    with pytest.raises(ConfigError, match="method.av_score=max_position"):
        AVIDConfig(queue_size=8, av_score="max_position").validate()
    with pytest.raises(ConfigError, match="method.av_score"):
        check(AVIDConfig(av_score="mean"), prefix="method.")  # type: ignore[arg-type]


def test_data_and_eval_hooks() -> None:
    data = DataConfig(clip_frames=4, fps=8.0, crop_size=32, crop_scale=(0.2, 1.0), flip_p=0.5, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8,
                           grayscale_p=0.2)
    hooks = build_method(AVIDConfig(**TINY), data)
    plan = hooks.build_sampler().plan(np.random.default_rng(0), 0.0, 6.0, 8.0)
    (view,) = plan.views
    start, dur = view.audio  # type: ignore[misc]
    assert dur == 2.0 and start + dur / 2 == pytest.approx(view.times[0] + 0.25)  # 2 s centred on the 0.5 s clip
    assert set(hooks.audio_transforms()) == {"clip"}
    m = _method().eval()
    with torch.no_grad():
        assert m.video_features(torch.randn(2, 3, 4, 32, 32)).shape == (2, m.video.out_channels)
        assert m.audio_features(torch.randn(2, SR)).shape == (2, m.audio.out_channels)


def test_localization_maps_cover_the_clip_and_follow_the_audio() -> None:
    m = _method().eval()
    batch = _batch()
    with torch.no_grad():
        maps, frames = m.localization_maps(batch["clip/video"], batch["clip/audio"])
        other, _ = m.localization_maps(batch["clip/video"], batch["clip/audio"].flip(0))
    assert maps.shape[:2] == (4, frames.numel()) and maps.dim() == 4
    assert torch.allclose(maps.flatten(2).sum(dim=2), torch.ones(maps.shape[:2]), atol=1e-5)
    assert int(frames.min()) >= 0 and int(frames.max()) < batch["clip/video"].shape[2]
    assert not torch.allclose(maps, other)  # another clip's sound moves the map


def test_last_stride_reaches_the_localization_maps() -> None:
    """method.last_stride=1 gives AVID's sound-source maps twice the side (32 px: 2x2 -> 4x4)."""
    batch = _batch()
    sides = []
    for last in (2, 1):
        m = _method(last_stride=last).eval()
        with torch.no_grad():
            maps, _ = m.localization_maps(batch["clip/video"], batch["clip/audio"])
        sides.append(tuple(maps.shape[-2:]))
    assert sides == [(2, 2), (4, 4)]


def test_localization_maps_leave_the_heads_batchnorm_alone_in_train_mode() -> None:
    """Regression: BatchNorm re-estimation for the random-init twin runs every hook in train mode,
    with batches of one; the heads (trained on pooled features) must use their running statistics
    there, not fail on one sample nor learn per-position statistics."""
    m = _method(proj_bn=True).train()
    bns = [x for x in (*m.video_head.modules(), *m.audio_head.modules()) if isinstance(x, torch.nn.BatchNorm1d)]
    assert bns
    before = [x.running_mean.clone() for x in bns]
    batch = _batch(1)
    with torch.no_grad():
        maps, _ = m.localization_maps(batch["clip/video"], batch["clip/audio"])
    assert torch.isfinite(maps).all()
    assert all(torch.equal(b, x.running_mean) for b, x in zip(before, bns))
    assert all(x.training for x in bns)  # modes restored
