"""VCLR recipe: four terms wired as in the release (slow references on the method's own
embeddings), gradients only to the online network, EMA + both queues after on_step_end, hooks."""

from __future__ import annotations

import math

import pytest
import torch

from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES
import torch.nn.functional as F

from glocal.methods import build_method
from glocal.methods.vclr import VCLR, VCLRConfig, other_segments

TINY = dict(depth=18, width_mult=0.0625, proj_hidden=32, proj_dim=16, queue_size=8, momentum=0.9)
K = 3
DATA = DataConfig(clip_frames=4, fps=8.0, crop_size=32, crop_scale=(0.2, 1.0), flip_p=0.5, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8,
                       grayscale_p=0.2)


def _batch(b: int = 4, t: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    batch = {f"{p}{i}/video": torch.randn(b, 3, t, 16, 16, generator=g) for p in "kq" for i in range(K)}
    anchor = torch.tensor([0, 2, 2, 0])[:b]
    batch["x1/video"] = torch.randn(b, 3, t, 16, 16, generator=g)
    batch["target/anchor"] = anchor
    batch["target/q_perm"] = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 2, 0], [0, 1, 2]])[:b]
    batch["target/k_perm"] = torch.tensor([[2, 0, 1], [0, 1, 2], [1, 0, 2], [0, 1, 2]])[:b]
    batch["target/order"] = torch.tensor([2, 1, 3, 0])[:b]
    return batch


def _method(**kw):
    torch.manual_seed(0)
    return build_method(VCLRConfig(**{**TINY, **kw}), DataConfig(sample_rate=16000, fps=8.0))


def _nce(q: torch.Tensor, pos: torch.Tensor, negs: list[torch.Tensor], tau: float) -> float:
    """``-log e^{q·p/τ} / (e^{q·p/τ} + Σ_n e^{q·n/τ})`` for one row."""
    p = math.exp(float(q @ pos) / tau)
    return -math.log(p / (p + sum(math.exp(float(q @ n) / tau) for n in negs)))


def test_losses_finite_and_gradients_reach_online_not_ema() -> None:
    m = _method()
    losses = m.training_losses(_batch())
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", "loss_inter", "loss_intra", "loss_order", "loss_segment"}
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    total = sum(losses[k].item() for k in ("loss_inter", "loss_intra", "loss_order", "loss_segment"))
    assert losses["loss"].item() == pytest.approx(total, rel=1e-5)
    losses["loss"].backward()
    for name in ("encoder", "inter", "intra", "order", "segment"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(m.online, name).parameters()), name
    assert all(p.grad is not None for p in m.order_head.parameters())
    assert all(p.grad is None and not p.requires_grad for p in m.target.parameters())


def test_terms_match_slow_reference_on_the_method_embeddings() -> None:
    m = _method(order_norm_axis="features").eval()
    batch = _batch()
    with torch.no_grad():
        losses = m.training_losses(batch)
        on, ema = m.online, m.target.module
        tau = m.cfg.tau
        # eval mode: backbone features of one view batch equal the per-item ones
        fq = [on.encoder(batch[f"q{s}/video"]) for s in range(K)]  # online, query items
        gq = [ema.encoder(batch[f"q{s}/video"]) for s in range(K)]  # EMA, query items
        gk = [ema.encoder(batch[f"k{s}/video"]) for s in range(K)]  # EMA, key items
        gx1 = ema.encoder(batch["x1/video"])
        inter = intra = seg = order = 0.0
        for i in range(4):
            a = int(batch["target/anchor"][i])
            f_anchor = fq[a][i : i + 1]
            f_keys = [gx1[i : i + 1]] + [gq[s][i : i + 1] for s in range(K) if s != a]
            q_inter, q_intra = on.inter(f_anchor)[0], on.intra(f_anchor)[0]
            k_inter = [ema.inter(f)[0] for f in f_keys]
            k_intra = [ema.intra(f)[0] for f in f_keys]
            inter += sum(_nce(q_inter, kp, list(m.seco_queue.queue), tau) for kp in k_inter) / K
            intra += sum(_nce(q_intra, k_intra[0], [n], m.cfg.tau_intra) for n in k_intra[1:]) / (K - 1)
            q_seg = on.segment(sum(fq[s][i] for s in range(K))[None] / K)[0]
            p_seg = ema.segment(sum(gk[s][i] for s in range(K))[None] / K)[0]
            seg += _nce(q_seg, p_seg, list(m.vclr_queue.queue), tau)
            o_q = [F.normalize(on.order(fq[int(s)][i : i + 1])[0], dim=0) for s in batch["target/q_perm"][i]]
            o_k = [F.normalize(ema.order(gk[int(s)][i : i + 1])[0], dim=0) for s in batch["target/k_perm"][i]]
            logits = m.order_head(torch.cat(o_q + o_k))
            order += float(F.cross_entropy(logits[None], batch["target/order"][i : i + 1]))
    assert losses["loss_inter"].item() == pytest.approx(inter / 4, rel=1e-4)
    assert losses["loss_intra"].item() == pytest.approx(intra / 4, rel=1e-4)
    assert losses["loss_segment"].item() == pytest.approx(seg / 4, rel=1e-4)
    assert losses["loss_order"].item() == pytest.approx(order / 4, rel=1e-4)


def test_on_step_end_updates_ema_and_both_queues() -> None:
    m = _method()
    losses = m.training_losses(_batch())
    losses["loss"].backward()
    with torch.no_grad():
        for p in m.online.parameters():
            p.add_(0.25)
    before = [p.clone() for p in m.target.parameters()]
    seco0, vclr0 = m.seco_queue.queue.clone(), m.vclr_queue.queue.clone()
    assert m.seco_queue.num_staged == K * 4 and m.vclr_queue.num_staged == 4
    m.on_step_end()
    for p_t, p_0, p_o in zip(m.target.parameters(), before, m.online.parameters()):
        assert torch.allclose(p_t, 0.9 * p_0 + 0.1 * p_o, atol=1e-6)
    assert int(m.seco_queue.ptr) == (K * 4) % 8 and int(m.vclr_queue.ptr) == 4
    assert not torch.equal(m.seco_queue.queue, seco0) and not torch.equal(m.vclr_queue.queue, vclr0)
    assert torch.equal(m.vclr_queue.queue[4:], vclr0[4:])  # independent queues, FIFO


def test_order_norm_axis_changes_the_order_term() -> None:
    batch = _batch()
    frames = _method(order_norm_axis="frames").eval()
    feats = _method(order_norm_axis="features").eval()
    with torch.no_grad():
        a = frames.training_losses(batch)
        b = feats.training_losses(batch)
    assert a["loss_inter"].item() == pytest.approx(b["loss_inter"].item(), rel=1e-6)
    assert a["loss_order"].item() != pytest.approx(b["loss_order"].item(), rel=1e-6)


def test_3d_encoder_and_hooks() -> None:
    m = _method(encoder="3d", depth=10)
    losses = m.training_losses(_batch(t=4))
    assert torch.isfinite(losses["loss"])
    with torch.no_grad():
        assert m.eval().video_features(torch.randn(2, 3, 4, 16, 16)).shape == (2, m.online.encoder.out_channels)
    hooks3 = build_method(VCLRConfig(encoder="3d", depth=18), DATA)
    assert hooks3.build_sampler().clip_frames == 4 and not hooks3.transforms()["frame"].per_frame
    hooks2 = build_method(VCLRConfig(), DATA)
    assert hooks2.build_sampler().clip_frames == 1 and hooks2.transforms()["frame"].per_frame
    assert hooks2.transforms()["frame"].blur_p == 0.5


def test_cnn2d_frame_backbone_with_max_pooling() -> None:
    """backbone_2d=cnn2d builds the plain frame CNN (depth 6 by default) and pools each item's map
    by the configured spatial_pool; the four terms still train it."""
    from glocal.models.cnn2d import PlainCNN2D

    m = _method(backbone_2d="cnn2d", depth=None, spatial_pool="max")
    trunk = m.online.encoder.trunk
    assert isinstance(trunk, PlainCNN2D) and trunk.depth == 6 and m.online.encoder.pool == "max"
    losses = m.training_losses(_batch())
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trunk.parameters())
    video = torch.randn(2, 3, 1, 16, 16)
    with torch.no_grad():
        m.eval()
        fmap = trunk(video)  # (B, C, 1, 2, 2)
        torch.testing.assert_close(m.video_features(video), fmap.amax(dim=(3, 4)).mean(dim=2))
    assert _method().online.encoder.trunk.depth == 18  # TINY's depth; the default backbone_2d is resnet2d


@pytest.mark.parametrize("k", [3, 4, 7])
def test_other_segments_equals_the_boolean_mask_without_one(k: int) -> None:
    """The non-anchor segments without a boolean mask (whose size would be a host sync per step)."""
    anchor = torch.tensor([0, k - 1, 1, k // 2, 0])
    seg = torch.arange(k).expand(len(anchor), k)
    ref = seg[seg != anchor[:, None]].reshape(len(anchor), k - 1)
    got = other_segments(anchor, k)
    assert got.dtype == ref.dtype and torch.equal(got, ref)
