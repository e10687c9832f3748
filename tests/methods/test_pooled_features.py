"""``video_feature_maps`` / ``pooled_video_features`` of every method: the maps are the ones
``video_features`` pools (their means, concatenated, equal it), and max pooling is the per-channel
maximum over all positions (a loop reference)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from glocal.data.config import DataConfig
from glocal.config import build
from glocal.methods import METHODS, build_method

TINY_VIDEO = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)
AUDIO = dict(audio_width_mult=0.125, logmel_preset="glcm", n_mels=32)
CONFIGS: dict[str, dict[str, Any]] = {
    "simclr": TINY_VIDEO,
    "moco": {**TINY_VIDEO, "queue_size": 8},
    "avid": {**TINY_VIDEO, **AUDIO, "queue_size": 8},
    "avts": {**TINY_VIDEO, **AUDIO},
    "ctrlaug": {**TINY_VIDEO, "global_frames": 8, "global_stride": 2, "local_frames": 4, "n_local": 3,
                "critic_hidden": 16, "order_hidden": 16},
    "vclr": {"depth": 18, "width_mult": 0.0625, "proj_hidden": 32, "proj_dim": 16, "queue_size": 8},
    "vclr_3d": {"encoder": "3d", "depth": 10, "width_mult": 0.125, "proj_hidden": 32, "proj_dim": 16, "queue_size": 8},
    "simclr_residual": {**TINY_VIDEO, "video_input": "residual"},
    "moco_cnn2d": {"backbone": "cnn2d", "depth": 6, "width_mult": 0.25, "proj_hidden": 32, "proj_dim": 16,
                   "queue_size": 8},
    "vclr_cnn2d": {"backbone_2d": "cnn2d", "width_mult": 0.25, "proj_hidden": 32, "proj_dim": 16, "queue_size": 8},
    "ctrlaug_residual": {**TINY_VIDEO, "video_input": "residual", "global_frames": 8, "global_stride": 2,
                         "local_frames": 4, "n_local": 3, "critic_hidden": 16, "order_hidden": 16},
    "glcm": {"width_mult": 0.125, "fast_width_mult": 0.5, "audio_width_mult": 0.125, "stem_pool": False,
             "slow_stride": 4, "n_mels": 32},
}


def _method(key: str):
    name = key.split("_")[0]
    torch.manual_seed(0)
    cfg = build(METHODS[name].config_class, {**CONFIGS[key], "name": name})
    return build_method(cfg, DataConfig(sample_rate=8000, fps=8.0)).eval()


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_maps_are_what_video_features_pools(key: str) -> None:
    m = _method(key)
    video = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        maps = m.video_feature_maps(video)
        assert all(t.dim() == 5 and t.shape[0] == 2 for t in maps)
        mean = torch.cat([t.float().mean(dim=(2, 3, 4)) for t in maps], dim=1)
        torch.testing.assert_close(mean, m.video_features(video), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.pooled_video_features(video, "mean"), m.video_features(video))
        pooled = m.pooled_video_features(video, "max")
    parts = []
    for t in maps:  # loop reference: the largest activation of each channel, position by position
        best = t[:, :, 0, 0, 0].float()
        for k in range(t.shape[2]):
            for y in range(t.shape[3]):
                for x in range(t.shape[4]):
                    best = torch.maximum(best, t[:, :, k, y, x].float())
        parts.append(best)
    torch.testing.assert_close(pooled, torch.cat(parts, dim=1))
    with pytest.raises(ValueError, match="pool"):
        m.pooled_video_features(video, "median")


def test_sound_weighted_pool_hand_computed() -> None:
    """``sound_weighted_pool``: weights = heat (time-averaged, resized) minus its minimum, normalised;
    a flat map gives mean pooling."""
    from glocal.methods.base import sound_weighted_pool

    # (B=1, C=2, T=2, h=1, w=2): position 0 has features (1, 2) then (3, 4) -> time mean (2, 3);
    # position 1 has (10, 20) then (30, 40) -> (20, 30)
    fmap = torch.tensor([[[[[1.0, 10.0]], [[3.0, 30.0]]], [[[2.0, 20.0]], [[4.0, 40.0]]]]])
    assert fmap.shape == (1, 2, 2, 1, 2)
    # heat over 2 maps: position 0 scores 0.5 then 0.1 (mean 0.3), position 1 0.1 then 0.1 (mean 0.1)
    heat = torch.tensor([[[[0.5, 0.1]], [[0.1, 0.1]]]])
    # weights: (0.3 - 0.1, 0.1 - 0.1) / 0.2 = (1, 0): position 0 alone
    torch.testing.assert_close(sound_weighted_pool(fmap, heat), torch.tensor([[2.0, 3.0]]))
    # heat 3:1 after the minimum is taken off: (0.7, 0.1, 0.4) over 3 positions
    fmap3 = torch.tensor([[[[[1.0, 4.0, 7.0]]], [[[2.0, 5.0, 8.0]]]]])  # (1, 2, 1, 1, 3)
    heat3 = torch.tensor([[[[0.7, 0.1, 0.4]]]])
    w = [0.6 / 0.9, 0.0, 0.3 / 0.9]
    expected = torch.tensor([[w[0] * 1 + w[2] * 7, w[0] * 2 + w[2] * 8]])
    torch.testing.assert_close(sound_weighted_pool(fmap3, heat3), expected)
    # flat map: the mean over positions and time
    torch.testing.assert_close(sound_weighted_pool(fmap, torch.full((1, 2, 1, 2), 0.25)),
                               fmap.mean(dim=(2, 3, 4)))
    # a coarser map is resized to the feature map: a 1x1 map is flat
    torch.testing.assert_close(sound_weighted_pool(fmap, torch.ones(1, 1, 1, 1)), fmap.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize("key", ["glcm", "avid", "avts"])
def test_sound_pool_weights_the_maps_by_the_methods_own_heat_map(key: str) -> None:
    from glocal.methods.base import sound_weighted_pool

    m = _method(key)
    g = torch.Generator().manual_seed(5)
    video, audio = torch.randn(2, 3, 8, 32, 32, generator=g), torch.randn(2, 8000, generator=g)
    with torch.no_grad():
        heat, frames = m.localization_maps(video, audio)
        maps = m.video_feature_maps(video)
        from_maps, frames_from_maps = m.heat_maps_from(maps, audio, video.shape[2])
        ref = torch.cat([sound_weighted_pool(t, heat) for t in maps], dim=1)
        out = m.pooled_video_features(video, "sound", audio)
    torch.testing.assert_close(from_maps, heat)  # the one-pass hook is the localisation map
    assert torch.equal(frames_from_maps, frames)
    torch.testing.assert_close(out, ref)
    assert out.shape == m.video_features(video).shape
    with pytest.raises(ValueError, match="audio"):
        m.pooled_video_features(video, "sound")


def test_sound_pool_needs_a_sound_source_map() -> None:
    m = _method("simclr")
    with pytest.raises(NotImplementedError, match="video_pool=sound.*'simclr'.*glcm, avid and avts"):
        m.pooled_video_features(torch.randn(1, 3, 8, 32, 32), "sound", torch.randn(1, 8000))
