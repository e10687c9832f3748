"""Shared method pieces: frame-wise 2-D ResNet, clip / audio encoders, momentum encoder, staged queue."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glocal.config import check
from glocal.data.config import DataConfig
from glocal.errors import ConfigError
from glocal.methods.common import (
    AudioEncoder,
    MomentumEncoder,
    StagedQueue,
    VideoEncoderConfig,
    build_clip_encoder,
    residual_frames,
)
from glocal.models.pooling import motion_weights
from glocal.models.resnet2d import ResNet2D, TSNConsensus, frame_conv


def test_frame_conv_equals_conv2d_per_frame() -> None:
    torch.manual_seed(0)
    conv = frame_conv(3, 5, 3, stride=2)
    x = torch.randn(2, 3, 4, 9, 9)
    y = conv(x)
    w2d = conv.weight[:, :, 0]
    for t in range(4):
        assert torch.allclose(y[:, :, t], F.conv2d(x[:, :, t], w2d, stride=2, padding=1), atol=1e-5)


@pytest.mark.parametrize("train", [False, True])
def test_resnet2d_processes_frames_independently(train: bool) -> None:
    torch.manual_seed(0)
    net = ResNet2D(depth=18, width_mult=0.125).train(train)
    x = torch.randn(2, 3, 3, 32, 32)
    clip = net(x)  # (B, C, T, h, w)
    frames = net(x.transpose(1, 2).reshape(6, 3, 32, 32))  # (B·T, C, h, w) as an image batch
    assert torch.allclose(clip.transpose(1, 2).reshape(6, *frames.shape[1:]), frames, atol=1e-4)
    assert net.frame_features(x).shape == (2, 3, net.out_channels)


def test_resnet2d_depths_and_2d_state_dict_roundtrip() -> None:
    assert ResNet2D(depth=50, width_mult=0.125).out_channels == 256  # 2048 / 8
    assert ResNet2D(depth=18, width_mult=0.125).out_channels == 64
    torch.manual_seed(0)
    src, dst = ResNet2D(depth=18, width_mult=0.125).eval(), ResNet2D(depth=18, width_mult=0.125).eval()
    as_2d = {k: (v[:, :, 0] if v.dim() == 5 else v) for k, v in src.state_dict().items()}
    as_2d["fc.weight"] = torch.zeros(3, 64)  # a classifier of a torchvision checkpoint is ignored
    assert dst.load_2d_state_dict(as_2d) == ([], [])
    x = torch.randn(1, 3, 1, 32, 32)
    assert torch.allclose(src(x), dst(x))


def test_tsn_consensus() -> None:
    x = torch.tensor([[[1.0, 4.0], [3.0, 0.0]]])
    assert TSNConsensus("mean")(x).tolist() == [[2.0, 2.0]]
    assert TSNConsensus("max")(x).tolist() == [[3.0, 4.0]]


@pytest.mark.parametrize("backbone,depth", [("r3d", 10), ("r2plus1d", 10), ("resnet2d", 18)])
def test_clip_encoder_pools_to_vectors(backbone: str, depth: int) -> None:
    enc = build_clip_encoder(VideoEncoderConfig(backbone=backbone, depth=depth, width_mult=0.125))  # type: ignore[arg-type]
    out = enc(torch.randn(2, 3, 4, 32, 32))
    assert out.shape == (2, enc.out_channels)


def test_clip_encoder_2d_is_mean_of_frame_features() -> None:
    torch.manual_seed(0)
    enc = build_clip_encoder(VideoEncoderConfig(backbone="resnet2d", depth=18, width_mult=0.125)).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    per_frame = torch.stack([enc(x[:, :, t : t + 1]) for t in range(3)], dim=1)
    assert torch.allclose(enc(x), per_frame.mean(dim=1), atol=1e-5)


def test_residual_frames_against_a_loop_and_a_still_background() -> None:
    x = torch.randn(2, 3, 5, 8, 8)
    ref = torch.stack([x[:, :, t + 1] - x[:, :, t] for t in range(4)], dim=2)
    assert torch.equal(residual_frames(x), ref)
    still = torch.randn(1, 3, 1, 8, 8).expand(1, 3, 6, 8, 8).clone()
    still[:, :, 3:, 2:4, 2:4] += 1.0  # a square appears at frame 3: only that step is non-zero
    r = residual_frames(still)
    assert r.shape == (1, 3, 5, 8, 8)
    assert r[:, :, 2].abs().sum() > 0 and r[:, :, [0, 1, 3, 4]].abs().sum() == 0
    with pytest.raises(ValueError, match=">= 2 frames"):
        residual_frames(x[:, :, :1])


@pytest.mark.parametrize("backbone,depth", [("r3d", 10), ("resnet2d", 18)])
def test_clip_encoder_residual_input_sees_frame_differences(backbone: str, depth: int) -> None:
    torch.manual_seed(0)
    cfg = VideoEncoderConfig(backbone=backbone, depth=depth, width_mult=0.125, video_input="residual")  # type: ignore[arg-type]
    enc = build_clip_encoder(cfg).eval()
    x = torch.randn(2, 3, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc.feature_map(x), enc.trunk(residual_frames(x)))
        # adding the same still image to every frame changes nothing
        shifted = x + torch.randn(2, 3, 1, 32, 32)
        torch.testing.assert_close(enc(shifted), enc(x), rtol=1e-4, atol=1e-5)
    rgb = build_clip_encoder(VideoEncoderConfig(backbone=backbone, depth=depth, width_mult=0.125))  # type: ignore[arg-type]
    assert not rgb.residual and rgb.backbone_input(x) is x


@pytest.mark.parametrize("pool", ["max", "meanmax", "motion"])
@pytest.mark.parametrize("backbone,depth", [("r3d", 10), ("resnet2d", 18)])
def test_clip_encoder_spatial_pool_against_the_map(backbone: str, depth: int, pool: str) -> None:
    """spatial_pool=max: each channel's largest value over the positions of the backbone map;
    meanmax: that plus the channel's mean; motion: the positions weighted by the clip's motion
    weights at the map's resolution (3-D: over (T', h, w); frame-wise: over (h, w) per frame,
    then the mean over frames). Reference: one Python loop per sample and channel."""
    torch.manual_seed(0)
    cfg = VideoEncoderConfig(backbone=backbone, depth=depth, width_mult=0.125, spatial_pool=pool)  # type: ignore[arg-type]
    enc = build_clip_encoder(cfg).eval()
    x = torch.randn(2, 3, 4, 64, 64)  # resnet2d: a 2x2 map per frame (1x1 at 32 px)

    x[:, :, :, :32, :32] += torch.arange(4.0).view(1, 1, 4, 1, 1)  # the top-left quarter changes most

    with torch.no_grad():
        fmap = enc.feature_map(x)  # (B, C, T', h, w)
        b, c = fmap.shape[:2]
        assert fmap.shape[-1] > 1 and (fmap >= 0).all()  # several positions, post-ReLU: max and mean differ
        frame_wise = backbone == "resnet2d"
        weights = motion_weights(x, tuple(fmap.shape[2:]), per_frame=frame_wise)  # type: ignore[arg-type]
        assert weights[:, :, : fmap.shape[3] // 2, : fmap.shape[4] // 2].sum() > weights.sum() / 2

        def ref_pool(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # one channel, its weights
            if pool == "motion":
                return (v * w).sum()
            return v.max() + (v.mean() if pool == "meanmax" else 0.0)

        if frame_wise:
            ref = torch.stack([torch.stack([ref_pool(fmap[i, k, t], weights[i, t]) for t in range(fmap.shape[2])]).mean()
                               for i in range(b) for k in range(c)]).view(b, c)
        else:
            ref = torch.stack([ref_pool(fmap[i, k], weights[i]) for i in range(b) for k in range(c)]).view(b, c)
        torch.testing.assert_close(enc(x), ref)
    with pytest.raises(ConfigError, match="method.spatial_pool"):
        check(VideoEncoderConfig(spatial_pool="median"), prefix="method.")  # type: ignore[arg-type]


@pytest.mark.parametrize("backbone,depth", [("r3d", 10), ("r2plus1d", 10), ("resnet2d", 18)])
def test_last_stride_one_doubles_the_map_and_keeps_the_parameters(backbone: str, depth: int) -> None:
    """last_stride=1: the last stage keeps its input's resolution (map side x 2; 64 px: r3d 4 -> 8,
    resnet2d 2 -> 4), with the same parameters (names and shapes), so only the map changes."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 64, 64)
    sides, shapes = [], []
    for last in (2, 1):
        cfg = VideoEncoderConfig(backbone=backbone, depth=depth, width_mult=0.125, last_stride=last)  # type: ignore[arg-type]
        enc = build_clip_encoder(cfg).eval()
        with torch.no_grad():
            fmap = enc.feature_map(x)
            assert enc(x).shape == (2, enc.out_channels)
        sides.append(fmap.shape[-2:])
        shapes.append({k: v.shape for k, v in enc.state_dict().items()})
    expected = {"resnet2d": (2, 2)}.get(backbone, (4, 4))
    assert tuple(sides[0]) == expected and tuple(sides[1]) == (2 * expected[0], 2 * expected[1])
    assert shapes[0] == shapes[1]
    with pytest.raises(ConfigError, match="method.last_stride"):
        check(VideoEncoderConfig(last_stride=3), prefix="method.")  # type: ignore[arg-type]


def test_video_input_is_validated() -> None:
    with pytest.raises(ConfigError, match="method.video_input"):
        check(VideoEncoderConfig(video_input="flow"), prefix="method.")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["resnet2d", "resnet1d"])
def test_audio_encoder(kind: str) -> None:
    enc = AudioEncoder(kind, sample_rate=16000, preset="glcm", n_mels=32, width_mult=0.125)
    out = enc(torch.randn(2, 4000))
    assert out.shape == (2, enc.out_channels) and torch.isfinite(out).all()


def test_audio_encoder_noise_floor_removes_steady_noise_and_gain() -> None:
    """With ``floor_quantile`` the spectrogram is the log-mel minus its per-bin floor: a gain
    (a constant dB shift of every bin) cancels; without it the gain shows."""
    torch.manual_seed(0)
    wave = torch.randn(2, 8000) * 0.05
    wave[:, 3000:4000] += torch.sin(torch.arange(1000) * 0.3)  # one loud event in steady noise
    on = AudioEncoder("resnet2d", sample_rate=16000, preset="avts", n_mels=32, width_mult=0.125,
                      floor_quantile=0.2).eval()
    off = AudioEncoder("resnet2d", sample_rate=16000, preset="avts", n_mels=32, width_mult=0.125).eval()
    assert torch.allclose(on.spectrogram(wave), on.spectrogram(4.0 * wave), atol=1e-3)
    assert not torch.allclose(off.spectrogram(wave), off.spectrogram(4.0 * wave), atol=1e-1)
    floor = on.frontend(wave)
    floor = floor - torch.quantile(floor, 0.2, dim=-1, keepdim=True)  # the reference: x - Q_0.2 over time
    assert torch.allclose(on.spectrogram(wave), on.norm(floor), atol=1e-5)


def test_audio_floor_quantile_reaches_avid_and_avts() -> None:
    from glocal.errors import ConfigError
    from glocal.methods.avid import AVID, AVIDConfig
    from glocal.methods.avts import AVTSConfig

    cfg = AVIDConfig(depth=10, width_mult=0.125, audio_width_mult=0.125, proj_hidden=16, proj_dim=8,
                     logmel_preset="avts", n_mels=32, audio_floor_quantile=0.2)
    cfg.validate()
    assert AVID(cfg, DataConfig()).audio.floor_quantile == 0.2
    for bad in (AVIDConfig(audio_floor_quantile=1.5), AVTSConfig(audio_floor_quantile=-0.1)):
        with pytest.raises(ConfigError, match="audio_floor_quantile"):
            check(bad)


def test_momentum_encoder_modes_grads_and_update() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    ema = MomentumEncoder(online, momentum=0.9, bn_train=True)
    assert all(not p.requires_grad for p in ema.parameters())
    ema.train()
    assert ema.module[1].training and not ema.module[2].training and not ema.module[0].training
    ema.eval()
    assert not any(m.training for m in ema.module.modules())
    assert not MomentumEncoder(online, bn_train=False).train().module[1].training
    out = ema(torch.randn(3, 4))
    assert not out.requires_grad
    before = ema.module[0].weight.clone()
    with torch.no_grad():
        online[0].weight.add_(1.0)
    online[1].running_mean.fill_(2.0)
    ema.update(online)
    # θ_k = m θ_k + (1 - m) θ_q; buffers copied
    assert torch.allclose(ema.module[0].weight, 0.9 * before + 0.1 * online[0].weight)
    assert torch.equal(ema.module[1].running_mean, online[1].running_mean)


def test_staged_queue_enqueues_only_on_flush() -> None:
    q = StagedQueue(5, 3, generator=torch.Generator().manual_seed(0))
    init = q.queue.clone()
    keys1, keys2 = torch.randn(2, 3), torch.randn(2, 3)
    q.stage(keys1)
    q.stage(keys2)
    assert torch.equal(q.queue, init) and q.num_staged == 4
    q.flush()
    assert q.num_staged == 0 and int(q.ptr) == 4
    assert torch.allclose(q.queue[:4], F.normalize(torch.cat([keys1, keys2]), dim=1))
    assert torch.equal(q.queue[4], init[4])
    assert set(q.state_dict()) == {"queue", "ptr"}
    with pytest.raises(ValueError):
        q.stage(torch.randn(2, 4))


def test_embedding_heat_maps_match_a_per_position_reference() -> None:
    """``M[b, t, p] = softmax_p(<a_b, head(f[b, :, t, p])> / tau)``, computed position by position."""
    from glocal.methods.common import embedding_heat_maps
    from glocal.models import MLPHead

    torch.manual_seed(0)
    head = MLPHead(6, 8, 4, bn=True, l2=True).eval()
    audio_head = MLPHead(3, 8, 4, bn=True, l2=True).eval()
    fmap = torch.randn(2, 6, 3, 2, 5)  # (B, C, T', h, w)
    audio_feat = torch.randn(2, 3)
    with torch.no_grad():
        maps, frames = embedding_heat_maps(fmap, head, audio_feat, audio_head, tau=0.1, clip_frames=12)
        a = audio_head(audio_feat)
    assert maps.shape == (2, 3, 2, 5) and frames.tolist() == [2, 6, 10]  # centres of 4-frame spans
    for b in range(2):
        for t in range(3):
            with torch.no_grad():
                scores = torch.tensor([[float(head(fmap[b, :, t, y, x][None])[0] @ a[b]) / 0.1 for x in range(5)]
                                       for y in range(2)])
            ref = torch.exp(scores) / torch.exp(scores).sum()
            assert torch.allclose(maps[b, t], ref, atol=1e-5)
