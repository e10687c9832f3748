"""Shapes, parameter counts, gradients and bf16/channels_last numerics of the 3-D ResNets."""

from __future__ import annotations

import pytest
import torch

from glocal.errors import ConfigError
from glocal.models import (
    BasicBlock2Plus1D,
    Conv2Plus1D,
    Conv3d,
    ResNet3D,
    build_video_backbone,
    r2plus1d_mid_channels,
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_glcm_slow_shape_keeps_t_and_gives_7x7() -> None:
    torch.manual_seed(0)
    m = build_video_backbone("glcm_slow", width_mult=0.125)
    out = m(torch.randn(2, 3, 4, 112, 112))
    assert m.out_channels == 64
    assert out.shape == (2, 64, 4, 7, 7)


def test_glcm_fast_shape_keeps_t_and_gives_7x7() -> None:
    torch.manual_seed(0)
    m = build_video_backbone("glcm_fast", width_mult=0.25)
    out = m(torch.randn(2, 3, 32, 112, 112))
    assert out.shape == (2, 16, 32, 7, 7)


def test_glcm_stage_kernels_follow_spec() -> None:
    slow = build_video_backbone("glcm_slow", width_mult=0.125)
    fast = build_video_backbone("glcm_fast")
    assert slow.stem[0].kernel_size == (1, 7, 7) and slow.stem[0].out_channels == 8
    assert [s[-1].conv2.out_channels for s in slow.stages] == [8, 16, 32, 64]
    assert fast.stem[0].kernel_size == (5, 7, 7) and fast.stem[0].out_channels == 8
    # ksize 1 stages: 1x1x1 first (carrying the stride), then 3x3x3; ksize 3 stages: the reverse.
    first = [stage[0].conv1.kernel_size for stage in slow.stages]
    assert first == [(1, 1, 1), (1, 1, 1), (3, 3, 3), (3, 3, 3)]
    assert slow.stages[1][0].conv1.stride == (1, 2, 2)
    assert slow.stages[3][0].conv1.stride == (1, 1, 1)
    assert [s[-1].conv2.out_channels for s in fast.stages] == [8, 16, 32, 64]
    assert all(s[0].conv1.kernel_size == (3, 3, 3) for s in fast.stages)


@pytest.mark.parametrize("name", ["r3d", "r2plus1d"])
def test_r3d_r2plus1d_shapes(name: str) -> None:
    torch.manual_seed(0)
    m = build_video_backbone(name, depth=18, width_mult=0.25)
    out = m(torch.randn(1, 3, 4, 32, 32))
    assert out.shape == (1, 128, 4, 2, 2)  # spatial /16 (stem 2, stages 1,2,2,2), T kept
    mt = build_video_backbone(name, depth=10, width_mult=0.125, temporal_stride=True)
    assert mt(torch.randn(1, 3, 8, 32, 32)).shape == (1, 64, 1, 2, 2)  # T /8


def test_r2plus1d_mid_channel_formula() -> None:
    # M = floor(t d^2 Cin Cout / (d^2 Cin + t Cout)), t = d = 3
    assert r2plus1d_mid_channels(64, 64) == 144
    assert r2plus1d_mid_channels(64, 128) == 230  # 221184 / 960 = 230.4
    assert r2plus1d_mid_channels(3, 64, t=3, d=7) == 83  # 28224 / 339 = 83.26
    assert r2plus1d_mid_channels(1, 1) == 2  # 27 / 12 = 2.25
    block = BasicBlock2Plus1D(64, 128, stride=(1, 2, 2))
    assert block.conv1.mid_channels == 230
    assert block.conv2.mid_channels == 288  # per-conv (128 -> 128)
    # the factorised pair never has more weights than the full 3x3x3 conv
    for cin, cout in [(64, 64), (64, 128), (128, 256), (7, 13)]:
        conv = Conv2Plus1D(cin, cout)
        weights = conv[0].weight.numel() + conv[3].weight.numel()
        assert weights <= 27 * cin * cout
        assert weights > 27 * cin * cout - (9 * cin + 3 * cout)  # floor loses < one mid channel


def _r3d18_expected_params() -> int:
    """Closed form for R3D-18 without fc: stem conv+BN, 3x3x3 convs, BNs, 1x1x1 shortcuts."""
    total = 3 * 64 * 3 * 7 * 7 + 2 * 64
    cin = 64
    for w in (64, 128, 256, 512):
        for j in range(2):
            total += 27 * cin * w + 27 * w * w + 4 * w
            if j == 0 and cin != w:
                total += cin * w + 2 * w
            cin = w
    return total


def test_r3d18_full_width_parameter_count() -> None:
    m = build_video_backbone("r3d", depth=18)
    count = n_params(m)
    assert count == _r3d18_expected_params() == 33_166_272
    # published: torchvision r3d_18 has 33,371,472 incl. a 512x400 fc (205,200) -> 33.17M
    assert abs(count - 33.2e6) / 33.2e6 < 0.01


def test_r2plus1d18_parameter_count_matches_r3d18() -> None:
    # Tran et al. choose M so that R(2+1)D-18 has ~ the parameters of R3D-18 (33.3M vs 33.4M).
    r21 = build_video_backbone("r2plus1d", depth=18, stem_factorised=True, stem_mid_channels=45)
    assert abs(n_params(r21) - 33_166_272) / 33_166_272 < 0.005


@pytest.mark.parametrize("name", ["glcm_slow", "glcm_fast", "r2plus1d"])
def test_gradient_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    m = build_video_backbone(name, depth=10, width_mult=0.125)
    t = 4 if name == "glcm_slow" else 8
    out = m(torch.randn(2, 3, t, 16, 16))
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_init_kaiming_fan_out_and_bn() -> None:
    torch.manual_seed(0)
    m = build_video_backbone("r3d", depth=10, width_mult=0.5)
    conv = m.stages[3][0].conv1  # 128 -> 256, 3x3x3: fan_out = 256 * 27
    expected_std = (2.0 / (256 * 27)) ** 0.5
    assert abs(conv.weight.std().item() / expected_std - 1) < 0.05
    bn = m.stages[3][0].bn1
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("name", ["glcm_slow", "glcm_fast", "r3d", "r2plus1d"])
def test_channels_last_bf16_autocast_close_to_fp32(name: str) -> None:
    """Tolerances: channels_last fp32 vs fp32 rel. L2 error < 1e-4; bf16 autocast (+ channels_last)
    vs fp32 rel. L2 error < 5e-2 on the output map (bf16 has an 8-bit mantissa, ~4e-3 per op)."""
    torch.manual_seed(0)
    m = build_video_backbone(name, depth=10, width_mult=0.125).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        ref = m(x)
        m_cl = m.to(memory_format=torch.channels_last_3d)
        x_cl = x.to(memory_format=torch.channels_last_3d)
        out_cl = m_cl(x_cl)
        assert _rel_err(out_cl, ref) < 1e-4
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf = m_cl(x_cl)
    assert out_bf.dtype == torch.bfloat16
    assert out_bf.shape == ref.shape
    assert _rel_err(out_bf, ref) < 5e-2


@pytest.mark.parametrize("name", ["glcm_fast", "glcm_slow", "r2plus1d"])
def test_bf16_channels_last_training_gradients_agree(name: str) -> None:
    """Whole-model weight gradients (train-mode BN, random projection loss) under bf16 autocast +
    channels_last_3d vs fp32: all finite and global cosine similarity > 0.85. (Per-tensor relative
    errors of 10-40 % are expected here: bf16 flips a few ReLU masks, and random-sign gradient sums
    amplify that; a broken kernel gives NaN or cosine ~ 0.)"""
    torch.manual_seed(0)
    m = build_video_backbone(name, depth=10, width_mult=0.125)
    x = torch.randn(2, 3, 4, 16, 16)
    out = m(x)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    ref = torch.cat([p.grad.flatten() for p in m.parameters()])
    m.zero_grad()
    m = m.to(memory_format=torch.channels_last_3d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_bf = m(x.to(memory_format=torch.channels_last_3d))
    (out_bf.float() * w).sum().backward()
    got = torch.cat([p.grad.flatten() for p in m.parameters()])
    assert torch.isfinite(got).all()
    assert torch.nn.functional.cosine_similarity(got, ref, dim=0) > 0.85


@pytest.mark.parametrize("kernel, t", [((5, 3, 3), 4), ((3, 3, 3), 2), ((3, 1, 1), 2), ((5, 3, 3), 1)])
def test_short_clip_conv_weight_grad_bf16(kernel: tuple[int, int, int], t: int) -> None:
    """Regression for the torch-2.13 CPU bf16 Conv3d weight-gradient bug when 1 < T < kernel_t:
    our Conv3d must give weight gradients within 2 % (rel. L2) of fp32 there."""
    torch.manual_seed(0)
    conv = Conv3d(8, 8, kernel, padding=tuple(k // 2 for k in kernel), bias=False)
    x = torch.randn(2, 8, t, 8, 8)
    out = conv(x)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    ref = conv.weight.grad.clone()
    conv.weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_bf = conv(x.to(memory_format=torch.channels_last_3d))
    assert out_bf.shape == out.shape
    (out_bf.float() * w).sum().backward()
    assert _rel_err(conv.weight.grad, ref) < 0.02


def test_forward_features_pools_map() -> None:
    m = build_video_backbone("glcm_fast", depth=10, width_mult=0.125)
    fmap, pooled = m.forward_features(torch.randn(2, 3, 4, 16, 16))
    assert pooled.shape == (2, m.out_channels)
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(name="resnet50"), "name"),
        (dict(name="r3d", depth=50), "depth"),
        (dict(name="r3d", width_mult=0), "width_mult"),
        (dict(name="r3d", foo=1), "foo"),
        (dict(name="r3d", temporal_stride="yes"), "temporal_stride"),
        (dict(name="r3d", stage_ksizes=(1, 1, 3, 3)), "stage_ksizes"),
        (dict(name="glcm_slow", stage_ksizes=(1, 2, 3, 3)), "stage_ksizes"),
        (dict(name="glcm_slow", stage_strides=(1, 2)), "stage_strides"),
    ],
)
def test_bad_config_raises(kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        build_video_backbone(**kwargs)


def test_bad_block_raises() -> None:
    with pytest.raises(ConfigError, match="block"):
        ResNet3D(block="bottleneck")


def test_forward_with_tap_returns_the_stage_map_and_the_final_map():
    net = build_video_backbone("r3d", depth=10, width_mult=0.125).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        stem, final = net.forward_with_tap(x, 0)
        s2, final2 = net.forward_with_tap(x, 2)
        ref2 = net.stages[1](net.stages[0](net.stem_pool(net.stem(x))))
        ref0 = net.stem_pool(net.stem(x))
    assert torch.allclose(stem, ref0)
    assert torch.equal(final, net(x)) and torch.equal(final2, final)
    assert torch.allclose(s2, ref2)
    assert (net.tap_channels(0), net.tap_channels(2)) == (stem.shape[1], s2.shape[1])
    with pytest.raises(ValueError, match="tap"):
        net.forward_with_tap(x, len(net.stages) + 1)
    with pytest.raises(ValueError, match="tap"):
        net.tap_channels(len(net.stages) + 1)


def test_last_stride_sets_only_the_last_stage_of_a_named_backbone() -> None:
    """``last_stride`` replaces the last stage's spatial stride and keeps the name's others:
    r3d (1, 2, 2, 2) -> (1, 2, 2, 1), a map twice as fine; a bad value is refused by name."""
    x = torch.randn(1, 3, 2, 64, 64)
    coarse = build_video_backbone("r3d", depth=10, width_mult=0.125)
    fine = build_video_backbone("r3d", depth=10, width_mult=0.125, last_stride=1)
    assert tuple(coarse(x).shape[-2:]) == (4, 4) and tuple(fine(x).shape[-2:]) == (8, 8)
    assert build_video_backbone("r3d", depth=10, width_mult=0.125, last_stride=2)(x).shape == coarse(x).shape
    with pytest.raises(ConfigError, match="last_stride must be 1 or 2"):
        build_video_backbone("r3d", depth=10, last_stride=4)
