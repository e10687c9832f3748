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
