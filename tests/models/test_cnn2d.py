"""The plain frame-wise 2-D CNN (``method.backbone: cnn2d``): layout, shapes, frame independence, config."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glocal.errors import ConfigError
from glocal.methods.common import VideoEncoderConfig, build_clip_encoder
from glocal.models.cnn2d import PlainCNN2D


def _reference(net: PlainCNN2D, image: torch.Tensor) -> torch.Tensor:
    """The same weights run as an obviously 2-D network on an image batch ``(N, C, H, W)``:
    conv2d -> batch norm (eval statistics) -> relu, a 2x2 max-pool wherever the net has one."""
    x = image
    for m in net.features:
        if isinstance(m, nn.Conv3d):
            x = F.conv2d(x, m.weight[:, :, 0], padding=1)
        elif isinstance(m, nn.BatchNorm3d):
            x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
        elif isinstance(m, nn.ReLU):
            x = F.relu(x)
        else:
            x = F.max_pool2d(x, 2)
    return x


@pytest.mark.parametrize("depth,last_stride,side,channels", [(6, 2, 8, 64), (6, 1, 16, 64), (8, 2, 4, 128)])
def test_layout_matches_a_plain_2d_network_frame_by_frame(depth: int, last_stride: int, side: int,
                                                         channels: int) -> None:
    torch.manual_seed(0)
    net = PlainCNN2D(depth=depth, width_mult=0.5, last_stride=last_stride).eval()
    for m in net.modules():  # non-trivial BN statistics so that the reference checks them too
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert len(convs) == depth and all(c.kernel_size == (1, 3, 3) for c in convs)
    x = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        clip = net(x)
        ref = _reference(net, x.transpose(1, 2).reshape(6, 3, 64, 64))
    assert clip.shape == (2, channels, 3, side, side) and net.out_channels == channels
    torch.testing.assert_close(clip.transpose(1, 2).reshape(ref.shape), ref, rtol=1e-4, atol=1e-4)
    assert net(x[:, :, 0]).shape == (2, channels, side, side)  # a 4-D image batch


def test_training_mode_batch_norm_treats_frames_as_a_batch_of_images() -> None:
    torch.manual_seed(0)
    net = PlainCNN2D(depth=6, width_mult=0.25).train()
    x = torch.randn(2, 3, 4, 32, 32)
    clip = net(x)
    frames = net(x.transpose(1, 2).reshape(8, 3, 32, 32))
    torch.testing.assert_close(clip.transpose(1, 2).reshape(frames.shape), frames, rtol=1e-4, atol=1e-4)


def test_bad_depth_width_or_stride_names_the_key() -> None:
    with pytest.raises(ConfigError, match="cnn2d depth"):
        PlainCNN2D(depth=18)
    with pytest.raises(ConfigError, match="width_mult"):
        PlainCNN2D(width_mult=0)
    with pytest.raises(ConfigError, match="last_stride"):
        PlainCNN2D(last_stride=4)
    with pytest.raises(ConfigError, match=r"method.depth' = 18 is not allowed; allowed values: \[6, 8\]"):
        VideoEncoderConfig(backbone="cnn2d").validate_encoder()  # the default depth 18 is a ResNet's
    VideoEncoderConfig(backbone="cnn2d", depth=6).validate_encoder()


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_clip_encoder_pools_each_frame_then_averages_frames(pool: str) -> None:
    torch.manual_seed(0)
    enc = build_clip_encoder(VideoEncoderConfig(backbone="cnn2d", depth=6, width_mult=0.25,  # type: ignore[arg-type]
                                                spatial_pool=pool)).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        fmap = enc.feature_map(x)  # (B, C, T, 4, 4)
        per_frame = fmap.amax(dim=(3, 4)) if pool == "max" else fmap.mean(dim=(3, 4))
        torch.testing.assert_close(enc(x), per_frame.mean(dim=2))
    assert fmap.shape == (2, enc.out_channels, 3, 4, 4)


def test_frame_nets_reject_a_clip_of_the_wrong_rank_by_name() -> None:
    from glocal.models.resnet2d import ResNet2D

    for net, name in ((PlainCNN2D(width_mult=0.25), "PlainCNN2D"), (ResNet2D(depth=18, width_mult=0.125), "ResNet2D")):
        with pytest.raises(ValueError, match=f"{name} expects"):
            net(torch.randn(2, 3, 16))


@pytest.mark.parametrize("depth,last_stride", [(6, 2), (6, 1), (8, 2)])
def test_forward_with_tap_returns_the_first_conv_or_a_stage_output_and_the_final_map(depth: int,
                                                                                    last_stride: int) -> None:
    """Tap 0 = the first conv-BN-ReLU (full resolution); tap k = stage k's output after its pool
    (none after the last stage with last_stride=1), counted by hand from the layer list."""
    torch.manual_seed(0)
    net = PlainCNN2D(depth=depth, width_mult=0.25, last_stride=last_stride).eval()
    x = torch.randn(2, 3, 2, 32, 32)
    layers = list(net.features)
    stages = depth // 2
    ends, i = [3], 0
    for k in range(stages):  # two conv-BN-ReLU (6 layers) per stage, then a pool unless dropped
        i += 6 + (1 if (k < stages - 1 or last_stride == 2) else 0)
        ends.append(i)
    assert net.num_taps == stages + 1 and net.stage_channels == tuple(max(1, round(w * 0.25)) for w in
                                                                     (32, 64, 128, 256)[:stages])
    with torch.no_grad():
        final = net(x)
        for tap, end in enumerate(ends):
            early, last = net.forward_with_tap(x, tap)
            ref = x
            for m in layers[:end]:
                ref = m(ref)
            torch.testing.assert_close(early, ref)
            torch.testing.assert_close(last, final)
            assert early.shape[1] == net.tap_channels(tap) and early.shape[2] == 2  # every frame kept
    assert ends[-1] == len(layers)
    with pytest.raises(ValueError, match="tap"):
        net.forward_with_tap(x, stages + 1)
    with pytest.raises(ValueError, match="tap"):
        net.tap_channels(-1)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        net.forward_with_tap(x[:, :, 0], 1)
