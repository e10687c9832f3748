"""1-D (GLCM) and 2-D (AVTS) audio ResNets."""

from __future__ import annotations

import pytest
import torch

from glocal.errors import ConfigError
from glocal.models import ResNet1DAudio, ResNet2DAudio


def test_resnet1d_keeps_time_length() -> None:
    torch.manual_seed(0)
    m = ResNet1DAudio(in_channels=80, width_mult=0.125)
    out = m(torch.randn(2, 80, 96))
    assert m.out_channels == 64
    assert out.shape == (2, 64, 96)


def test_resnet1d_full_width_structure() -> None:
    m = ResNet1DAudio()
    assert m.out_channels == 512
    assert m.conv1.kernel_size == (7,) and m.conv1.padding == (3,) and m.conv1.bias is not None
    assert isinstance(m.act, torch.nn.LeakyReLU)
    assert [len(s) for s in m.stages] == [2, 2, 2, 2]
    assert m.stages[0][0].downsample is not None  # release projects stage-1 shortcut too
    assert m.stages[0][1].downsample is None
    # all convs k3 stride 1 inside blocks -> time preserved
    for s in m.stages:
        for b in s:
            assert b.conv1.stride == (1,) and b.conv1.kernel_size == (3,)
    assert ResNet1DAudio(release_shortcut=False).stages[0][0].downsample is None


def test_resnet1d_stride_and_relu_knobs() -> None:
    m = ResNet1DAudio(in_channels=8, width_mult=0.0625, stride=2, act="relu")
    assert m(torch.randn(1, 8, 96)).shape == (1, 32, 12)  # 96 / 2^3


def test_resnet1d_xavier_init_and_grads() -> None:
    torch.manual_seed(0)
    m = ResNet1DAudio(in_channels=16, widths=(32, 32), blocks=(1, 1))
    w = m.stages[1][0].conv1.weight  # 32 -> 32, k3: std = sqrt(2 / (fan_in + fan_out))
    expected = (2.0 / (32 * 3 + 32 * 3)) ** 0.5
    assert abs(w.std().item() / expected - 1) < 0.1
    assert torch.all(m.stages[1][0].conv1.bias == 0)
    out = m(torch.randn(2, 16, 12))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs, word",
    [(dict(act="gelu"), "act"), (dict(width_mult=-1), "width_mult"), (dict(stride=0), "stride"),
     (dict(blocks=(2, 2)), "blocks")],
)
def test_resnet1d_bad_config(kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        ResNet1DAudio(**kwargs)


def test_resnet2d_audio_shape() -> None:
    torch.manual_seed(0)
    m = ResNet2DAudio(depth=18, width_mult=0.125)
    out = m(torch.randn(2, 1, 80, 200))
    assert m.out_channels == 64
    assert out.shape == (2, 64, 3, 7)  # ceil(80 / 32), ceil(200 / 32)
    fmap, pooled = m.forward_features(torch.randn(1, 1, 64, 64))
    assert fmap.shape == (1, 64, 2, 2) and pooled.shape == (1, 64)


def test_resnet2d_audio_param_count() -> None:
    # torchvision resnet18: 11,689,512 incl. fc (513,000); 1-channel stem: -2 * 64 * 49
    m = ResNet2DAudio(depth=18)
    assert sum(p.numel() for p in m.parameters()) == 11_689_512 - 513_000 - 2 * 64 * 49


def test_resnet2d_audio_bad_depth() -> None:
    with pytest.raises(ConfigError, match="depth"):
        ResNet2DAudio(depth=50)
