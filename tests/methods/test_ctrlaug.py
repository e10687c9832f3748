"""CtrlAug recipe: every term finite and wired as specified (recomputed from the method's own
per-view embeddings), gradient reversal on the MI term, knob variants, config checks, data hooks
and a tiny `glocal pretrain` of configs/ctrlaug.yaml on a generated world."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES
import torch.nn.functional as F

from glocal.config import build
from glocal.data.samplers import GlobalLocalSampler
from glocal.errors import ConfigError
from glocal.methods import METHODS, build_method
from glocal.methods.ctrlaug import CtrlAug, CtrlAugConfig
from glocal.models.roi import roi_align_3d
from glocal.objectives import (
    grid_cell_boxes,
    jsd_mi_lower_bound,
    local_global_nce,
    order_permutations,
    region_soft_targets,
    soft_region_contrast,
)

N = 3
TINY: dict[str, Any] = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16, global_frames=8, global_stride=2,
                            local_frames=4, n_local=N, critic_hidden=16, order_hidden=16)
DATA = DataConfig(clip_frames=4, fps=16.0, crop_size=32, crop_scale=(0.2, 1.0), flip_p=0.5, jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8,
                       grayscale_p=0.2)
TERMS = ("loss_inst", "loss_region", "loss_mi", "loss_order")


def _cfg(**kw: Any) -> CtrlAugConfig:
    return build(CtrlAugConfig, {**TINY, **kw})


def _method(**kw: Any) -> CtrlAug:
    torch.manual_seed(0)
    m = build_method(_cfg(**kw), DataConfig(sample_rate=16000, fps=16.0))
    assert isinstance(m, CtrlAug)
    return m


def _batch(b: int = 3, **kw: Any) -> dict[str, torch.Tensor]:
    """Random pixels; boxes and order drawn by the method's own sampler on a 2 s, 16 fps video."""
    sampler = build_method(_cfg(**kw), DATA).build_sampler()
    plans = [sampler.plan(np.random.default_rng(i), 0.0, 2.0, 16.0) for i in range(b)]
    g = torch.Generator().manual_seed(1)
    colour = 2 * torch.randn(b, 3, 1, 1, 1, generator=g)  # per-video colour: a low-level cue shared by its views
    batch = {"global/video": torch.randn(b, 3, 8, 32, 32, generator=g) + colour}
    for i in range(N):
        batch[f"local{i}/video"] = torch.randn(b, 3, 4, 16, 16, generator=g) + colour
    batch["target/boxes"] = torch.tensor(np.stack([p.targets["boxes"] for p in plans]), dtype=torch.float32)
    batch["target/order"] = torch.tensor(np.stack([p.targets["order"] for p in plans]))
    return batch


def test_registered_losses_finite_and_gradients_reach_every_module() -> None:
    assert METHODS["ctrlaug"] is CtrlAug
    m = _method()
    losses = m.training_losses(_batch())
    assert {k for k in losses if not k.startswith(DIAG_PREFIXES)} == {"loss", *TERMS}
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    w = m.cfg
    total = (w.weight_inst * losses["loss_inst"] + w.weight_region * losses["loss_region"]
             + w.weight_mi * losses["loss_mi"] + w.weight_order * losses["loss_order"])
    assert losses["loss"].item() == pytest.approx(total.item(), rel=1e-5)
    losses["loss"].backward()
    for name in ("encoder", "head", "critic", "order_head"):
        assert all(p.grad is not None for p in getattr(m, name).parameters()), name
        assert any(p.grad.abs().sum() > 0 for p in getattr(m, name).parameters()), name


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_terms_match_recomputation_from_per_view_embeddings(pool: str) -> None:
    """Each term recomputed from per-view passes; the clip features pooled as video_features pools
    them (spatial_pool=max: regression, training used to mean-pool the global clip whatever the key)."""
    m = _method(spatial_pool=pool).eval()  # eval: BatchNorm uses running statistics, so per-view passes are comparable
    batch = _batch()
    boxes = batch["target/boxes"]
    with torch.no_grad():
        m.critic.net[-1].weight.mul_(100.0)  # a decisive critic: the MI term then depends on the pairing
        losses = m.training_losses(batch)
        trunk = m.encoder.trunk
        fmap_g = trunk(batch["global/video"])  # (B, C, T', H', W')
        z_g = m.head(m.video_features(batch["global/video"]))
        z_l = torch.stack([m.head(m.encoder(batch[f"local{i}/video"])) for i in range(N)], dim=1)
        t, h, w = fmap_g.shape[2:]
        z_c = torch.stack([m.head(fmap_g[:, :, i, j, k]) for i in range(t) for j in range(h) for k in range(w)], 1)
        targets = region_soft_targets(boxes, grid_cell_boxes(t, h, w))
        region = soft_region_contrast(z_l, z_c, targets, tau=m.cfg.tau_region, negatives="cells")
        inst = local_global_nce(z_l, z_g, tau=m.cfg.tau)
        perms = order_permutations(N, exclude_identity_and_reverse=False)
        labels = torch.tensor([perms.index(tuple(o)) for o in batch["target/order"].tolist()])
        order = F.cross_entropy(m.order_head(torch.cat([z_g, z_l.flatten(1)], dim=1)), labels)

        def early(x: torch.Tensor) -> torch.Tensor:  # after residual stage 1 (mi_layer = 1)
            return trunk.stages[0](trunk.stem_pool(trunk.stem(x)))

        e_l = torch.stack([early(batch[f"local{i}/video"]).mean(dim=(2, 3, 4)) for i in range(N)], 1).flatten(0, 1)
        e_g = roi_align_3d(early(batch["global/video"]), boxes, m.cfg.roi_samples).flatten(0, 1)
        pos = m.critic(torch.cat([e_l, e_g], dim=1))
        neg = m.critic(torch.cat([e_l, e_g.roll(N, dims=0)], dim=1))  # another video's region
        mi = -jsd_mi_lower_bound(pos, neg)
    for key, ref in (("loss_region", region), ("loss_inst", inst), ("loss_order", order), ("loss_mi", mi)):
        assert losses[key].item() == pytest.approx(ref.item(), rel=1e-4, abs=1e-6), key
    assert len(perms) == math.factorial(N)


def test_grl_lambda_scales_and_reverses_only_the_encoder_gradient_of_the_mi_term() -> None:
    weights = dict(weight_inst=0.0, weight_region=0.0, weight_order=0.0, weight_mi=1.0)
    batch = _batch()

    def grads(lambd: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        m = _method(grl_lambda=lambd, **weights)
        m.training_losses(batch)["loss"].backward()
        enc = [p.grad.clone() for p in m.encoder.parameters()]
        return enc, [p.grad.clone() for p in m.critic.parameters()]

    enc0, crit0 = grads(0.0)
    enc1, crit1 = grads(1.0)
    enc2, crit2 = grads(2.0)
    assert all(g.abs().max() == 0 for g in enc0)  # λ = 0: the encoder gets nothing from the critic
    for a, b in zip(crit0, crit2):
        assert torch.allclose(a, b) and a.abs().sum() > 0  # the critic's own gradient ignores λ
    assert any(g.abs().sum() > 0 for g in enc1)
    for a, b in zip(enc1, enc2):
        assert torch.allclose(2 * a, b, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("kw", [
    dict(region_grid=(2, 1, 1), region_head="separate", region_targets="iou", region_negatives="pooled",
         target_temperature=0.5),
    dict(mi_shortcut="cues", order_task="bin", order_bins=3, region_negatives="none"),
    dict(mi_bound="dv", mi_negatives="other_region", mi_layer=0, backbone="r2plus1d"),
    dict(backbone="cnn2d", depth=6, width_mult=0.25, spatial_pool="max", mi_layer=0),
    dict(backbone="cnn2d", depth=6, width_mult=0.25, mi_layer=3, region_grid=(2, 2, 2)),
])
def test_knob_variants_run(kw: dict[str, Any]) -> None:
    m = _method(**kw)
    losses = m.training_losses(_batch(b=2, **kw))
    assert all(torch.isfinite(losses[k]) for k in ("loss", *TERMS))
    losses["loss"].backward()
    assert (m.cell_head is not None) == (kw.get("region_head") == "separate")


@pytest.mark.parametrize("bad", [
    dict(backbone="resnet2d"), dict(n_local=7), dict(n_local=1), dict(local_span=(0.5, 0.2)),
    dict(local_area=(0.2, 1.5)), dict(tau=0.0), dict(region_grid=(0, 1, 1)), dict(mi_layer=5),
    dict(weight_inst=0.0, weight_region=0.0, weight_mi=0.0, weight_order=0.0), dict(weight_mi=-0.1),
    dict(region_negatives="queue"), dict(global_crop_scale=(0.0, 1.0)), dict(order_bins=1), dict(grl_lambda=-1.0),
    dict(region_radius=2), dict(local_iou=(0.6, 0.2)), dict(local_iou=(0.1, 0.2), local_iou_final=(0.0, 1.5),
                                                             local_iou_epochs=3),
    dict(local_iou_final=(0.0, 0.1), local_iou_epochs=3), dict(local_iou=(0.1, 0.2), local_iou_final=(0.0, 0.1)),
    dict(local_iou_grid=(0, 2, 2)), dict(backbone="cnn2d", depth=6, mi_layer=4), dict(backbone="cnn2d", depth=10),
])
def test_config_validation_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        _cfg(**bad)


def test_mi_negatives_need_two_videos_and_hooks() -> None:
    m = _method()
    with pytest.raises(ValueError, match="no negatives"):
        m.training_losses(_batch(b=1))  # other_video negatives with one video
    hooks = build_method(_cfg(global_size=40, local_size=24), DATA)
    sampler = hooks.build_sampler()
    assert isinstance(sampler, GlobalLocalSampler) and not sampler.with_audio
    assert (sampler.global_frames, sampler.global_stride, sampler.local_frames, sampler.n_local) == (8, 2, 4, N)
    tfs = hooks.transforms()
    assert (tfs["global"].size, tfs["local"].size) == (40, 24)
    assert (tfs["global"].scale, tfs["global"].blur_p, tfs["local"].blur_p) == ((0.4, 1.0), 0.5, 0.5)
    assert build_method(_cfg(global_crop_scale=None), DATA).transforms()["global"].size == 32
    assert sampler.iou_range is None  # uniform placement unless asked
    controlled = build_method(_cfg(local_iou=(0.3, 0.5), local_iou_final=(0.0, 0.1), local_iou_epochs=4,
                                   region_grid=(2, 3, 3)), DATA).build_sampler()
    assert (controlled.iou_range, controlled.iou_range_final, controlled.iou_epochs) == ((0.3, 0.5), (0.0, 0.1), 4)
    assert controlled.iou_grid == (2, 3, 3)  # region_grid by default
    with torch.no_grad():
        assert m.eval().video_features(torch.randn(2, 3, 4, 16, 16)).shape == (2, m.encoder.out_channels)


def test_cnn2d_mi_pairs_read_the_frame_net_after_its_first_stage() -> None:
    """With the frame-wise cnn2d the early map of mi_layer=1 is its first stage (two conv-BN-ReLU
    and a pool, full time), the critic's width is that stage's; the MI term recomputed from it."""
    m = _method(backbone="cnn2d", depth=6, width_mult=0.25, spatial_pool="max").eval()
    batch = _batch()
    boxes = batch["target/boxes"]
    trunk = m.encoder.trunk
    assert m.critic.net[0].in_features == 2 * 8  # 2 x stage 1's 32 x 0.25 channels
    with torch.no_grad():
        m.critic.net[-1].weight.mul_(100.0)
        losses = m.training_losses(batch)
        early = trunk.features[:7]  # conv-BN-ReLU x 2, max-pool
        e_l = torch.stack([early(batch[f"local{i}/video"]).mean(dim=(2, 3, 4)) for i in range(N)], 1).flatten(0, 1)
        g = early(batch["global/video"])
        assert g.shape[2:] == (8, 16, 16)
        e_g = roi_align_3d(g, boxes, m.cfg.roi_samples).flatten(0, 1)
        pos = m.critic(torch.cat([e_l, e_g], dim=1))
        neg = m.critic(torch.cat([e_l, e_g.roll(N, dims=0)], dim=1))
        mi = -jsd_mi_lower_bound(pos, neg)
    assert losses["loss_mi"].item() == pytest.approx(mi.item(), rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_tiny_pretrain_of_the_shipped_config(tmp_path: Path) -> None:
    from fixtures.worlds import small_world
    from glocal.train.config import load_pretrain_config
    from glocal.train.engine import pretrain

    world = small_world(tmp_path / "world", 8, 1.0, num_classes=2, fps=16)
    config = Path(__file__).resolve().parents[2] / "configs" / "ctrlaug.yaml"
    overrides = [f"data.root={world}", f"train.out_dir={tmp_path / 'run'}", "train.epochs=1", "train.batch_size=2",
                 "train.num_threads=1", "train.progress=false", "train.log_every=1", "train.precision=fp32",
                 "data.num_workers=0", "data.crop_size=32", "method.depth=10", "method.width_mult=0.125",
                 "method.proj_hidden=32", "method.proj_dim=16", "method.critic_hidden=16", "method.order_hidden=16",
                 "method.global_frames=8", "method.global_stride=2", "method.local_frames=4",
                 "method.global_size=32", "method.local_size=16", "method.region_grid=null"]
    summary = pretrain(load_pretrain_config(config, overrides))
    assert summary["last_losses"] and all(math.isfinite(v) for v in summary["last_losses"].values())
    with open(tmp_path / "run" / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(math.isfinite(float(rows[-1][k])) for k in ("loss", *TERMS))
    assert list((tmp_path / "run").glob("ckpt_epoch0001.pt"))
