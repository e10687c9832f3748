"""``joint_video`` / ``joint_audio``: the audio-visual methods embed a clip and its sound into one
L2-normalised space, the one their video-audio loss compares (checked against the ``pair/``
embeddings ``training_losses`` reports); video-only methods have none and say so."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from glocal.config import build
from glocal.data.config import DataConfig
from glocal.methods import METHODS, build_method

TINY_VIDEO = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)
AUDIO = dict(audio_width_mult=0.125, logmel_preset="glcm", n_mels=32)
AV: dict[str, dict[str, Any]] = {
    "glcm": {"width_mult": 0.125, "fast_width_mult": 0.5, "audio_width_mult": 0.125, "slow_stride": 4,
             "n_mels": 32, "proj_dim_global": 24},
    "avid": {**TINY_VIDEO, **AUDIO, "audio_seconds": None},
    "avid_max_position": {**TINY_VIDEO, **AUDIO, "audio_seconds": None, "av_score": "max_position"},
    "avts": {**TINY_VIDEO, **AUDIO},
}
VIDEO_ONLY: dict[str, dict[str, Any]] = {
    "simclr": TINY_VIDEO,
    "moco": {**TINY_VIDEO, "queue_size": 8},
    "vclr": {"depth": 18, "width_mult": 0.0625, "proj_hidden": 32, "proj_dim": 16, "queue_size": 8},
    "ctrlaug": {**TINY_VIDEO, "global_frames": 8, "global_stride": 2, "local_frames": 4, "n_local": 3,
                "critic_hidden": 16, "order_hidden": 16},
}
DATA = DataConfig(sample_rate=8000, fps=8.0, clip_frames=8)


def _method(key: str, configs: dict[str, dict[str, Any]]):
    name = key.split("_")[0]
    torch.manual_seed(0)
    cfg = build(METHODS[name].config_class, {**configs[key], "name": name})
    return build_method(cfg, DATA).eval()


def _inputs(b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(b, 3, 8, 32, 32, generator=g), torch.randn(b, 8000, generator=g) * 0.1  # 1 s = 8 frames


@pytest.mark.parametrize("key", sorted(AV))
def test_one_normalised_space(key: str) -> None:
    m = _method(key, AV)
    video, audio = _inputs()
    with torch.no_grad():
        v, a = m.joint_video(video), m.joint_audio(audio)
        v1, a1 = m.joint_video(video[:1]), m.joint_audio(audio[:1])
    assert v.shape == a.shape and v.shape[0] == 3 and v.dtype == a.dtype == torch.float32
    torch.testing.assert_close(v.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(v1, v[:1], rtol=1e-4, atol=1e-5)  # eval mode: a row does not depend on its batch
    torch.testing.assert_close(a1, a[:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key, pair", [("glcm", "pair/loss_global"), ("avid", "pair/loss_v2a"),
                                       ("avid_max_position", "pair/loss_v2a")])
def test_the_space_the_loss_compares(key: str, pair: str) -> None:
    m = _method(key, AV)
    video, audio = _inputs()
    with torch.no_grad():
        out = m.training_losses({"clip/video": video, "clip/audio": audio})
        first, second = out[pair]
        joint_v, joint_a = m.joint_video(video), m.joint_audio(audio)
    # GLCM reports (audio, video), AVID (video, audio)
    video_side, audio_side = (second, first) if key == "glcm" else (first, second)
    torch.testing.assert_close(joint_v, F.normalize(video_side, dim=1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(joint_a, F.normalize(audio_side, dim=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", sorted(VIDEO_ONLY))
def test_video_only_methods_have_no_joint_space(key: str) -> None:
    m = _method(key, VIDEO_ONLY)
    video, audio = _inputs(1)
    with pytest.raises(NotImplementedError, match="no joint audio-visual embedding space"):
        m.joint_video(video)
    with pytest.raises(NotImplementedError, match="no joint audio-visual embedding space"):
        m.joint_audio(audio)
