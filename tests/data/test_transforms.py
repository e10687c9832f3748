"""Clip transforms: shapes, determinism for a seed, temporal consistency, returned geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, sample_resized_crop


def _clip(t=4, h=32, w=48):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (t, h, w, 3), generator=g, dtype=torch.uint8)


def test_shape_and_determinism():
    tf = ClipTransform(size=16)
    clip = _clip()
    a, ca = tf(clip, np.random.default_rng(3))
    b, cb = tf(clip, np.random.default_rng(3))
    c, _ = tf(clip, np.random.default_rng(4))
    assert a.shape == (3, 4, 16, 16)
    assert torch.equal(a, b) and ca == cb
    assert not torch.equal(a, c)


def test_same_transform_for_every_frame():
    frame = _clip(t=1)
    clip = frame.expand(5, -1, -1, -1).contiguous()
    out, _ = ClipTransform(size=16)(clip, np.random.default_rng(0))
    for t in range(1, 5):
        assert torch.equal(out[:, 0], out[:, t])


def test_eval_is_centre_crop_and_normalised():
    clip = torch.full((2, 20, 40, 3), 128, dtype=torch.uint8)
    clip[:, :, :10] = 0  # left strip outside the centre square
    out, crop = ClipTransform(size=20, train=False)(clip, np.random.default_rng(0))
    assert (crop.x0, crop.x1, crop.y0, crop.y1, crop.flip) == (0.25, 0.75, 0.0, 1.0, False)
    expected = (128 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert torch.allclose(out[0], torch.full_like(out[0], expected), atol=1e-5)


def test_crop_geometry_matches_pixels():
    # A clip whose pixel value encodes x: the crop box must select the right columns.
    w = 64
    ramp = torch.arange(w, dtype=torch.uint8).view(1, 1, w, 1).expand(1, 8, w, 3).contiguous()
    tf = ClipTransform(size=8, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, scale=(0.3, 0.5))
    out, crop = tf(ramp, np.random.default_rng(1))
    x = out[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # back to [0, 1]
    left, right = x[:, 0].mean() * 255, x[:, -1].mean() * 255
    assert abs(left - crop.x0 * w) < 3 and abs(right - crop.x1 * w) < 3


def test_resized_crop_respects_scale():
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left, h, w = sample_resized_crop(rng, 100, 100, (0.25, 0.5))
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 100
        assert 0.2 * 1e4 <= h * w <= 0.55 * 1e4


def test_compose_crop_follows_parent_flip():
    from glocal.data.transforms import CropParams, compose_crop

    parent = CropParams(0.2, 0.1, 0.6, 0.9, flip=False)
    c = compose_crop(parent, (0.25, 0.5, 0.75, 1.0))
    assert (c.x0, c.y0, c.x1, c.y1, c.flip) == pytest.approx((0.3, 0.5, 0.5, 0.9, False))
    flipped = compose_crop(CropParams(0.2, 0.1, 0.6, 0.9, flip=True), (0.0, 0.0, 0.25, 1.0))
    # the left quarter of a flipped view is the right quarter of its source box
    assert (flipped.x0, flipped.x1, flipped.flip) == pytest.approx((0.5, 0.6, True))


def test_subpixel_crop_is_exact():
    from glocal.data.transforms import CropParams, crop_resize

    w = 40
    ramp = torch.arange(w, dtype=torch.float32).add(0.5).view(1, 1, w, 1).expand(2, 10, w, 3).contiguous()
    crop = CropParams(0.1234, 0.0, 0.6789, 1.0)
    out = crop_resize(ramp, crop, 16)  # float input: values stay in pixel-centre units
    centres = (crop.x0 + (torch.arange(16) + 0.5) / 16 * (crop.x1 - crop.x0)) * w
    assert torch.allclose(out[0, 0, 5], centres, atol=1e-4)
    flipped = crop_resize(ramp, CropParams(0.1234, 0.0, 0.6789, 1.0, flip=True), 16)
    assert torch.allclose(flipped[0, 0, 5], centres.flip(0), atol=1e-4)
    shrink = crop_resize(ramp, CropParams(0.0101, 0.0, 0.9899, 1.0), 4)  # > 2x reduction path
    want = (0.0101 + (torch.arange(4) + 0.5) / 4 * 0.9798) * w
    assert torch.allclose(shrink[0, 0, 2], want, atol=0.6)


def test_fixed_crop_draws_only_photometric():
    from glocal.data.transforms import CropParams

    clip = _clip()
    crop = CropParams(0.1, 0.2, 0.7, 0.9, flip=True)
    tf = ClipTransform(size=16, jitter_p=1.0)
    a, ca = tf(clip, np.random.default_rng(0), crop=crop)
    b, cb = tf(clip, np.random.default_rng(1), crop=crop)
    plain, _ = ClipTransform(size=16, jitter_p=0.0, grayscale_p=0.0)(clip, np.random.default_rng(0), crop=crop)
    assert ca == cb == crop and not torch.equal(a, b)
    ref = ClipTransform(size=16).apply(clip, crop, {"grayscale": False})
    assert torch.equal(plain, ref)


def test_per_frame_mode_draws_each_frame():
    frame = _clip(t=1)
    clip = frame.expand(6, -1, -1, -1).contiguous()
    out, crops = ClipTransform(size=16, per_frame=True)(clip, np.random.default_rng(0))
    assert out.shape == (3, 6, 16, 16) and len(crops) == 6 and len(set(crops)) > 1
    assert not torch.equal(out[:, 0], out[:, 1])
    same, _ = ClipTransform(size=16, per_frame=True, train=False)(clip, np.random.default_rng(0))
    assert all(torch.equal(same[:, 0], same[:, t]) for t in range(6))


def test_gaussian_blur_drawn_and_smooths():
    from glocal.data.transforms import gaussian_blur

    noise = torch.rand(3, 2, 32, 32)
    blurred = gaussian_blur(noise, 2.0)
    assert blurred.shape == noise.shape and blurred.std() < 0.4 * noise.std()
    assert torch.allclose(blurred.mean(), noise.mean(), atol=0.02)
    tf = ClipTransform(size=16, blur_p=1.0, blur_sigma=(0.5, 1.5), jitter_p=0.0, grayscale_p=0.0)
    _, photo = tf.sample(np.random.default_rng(0), 32, 48)
    assert 0.5 <= photo["blur"] <= 1.5
    assert "blur" not in ClipTransform(size=16).sample(np.random.default_rng(0), 32, 48)[1]


def _reference_jitter(x: torch.Tensor, photo: dict) -> torch.Tensor:
    """Sequential torchvision-style jitter on float (3, T, H, W) in [0, 1], clamping after each op."""
    gray_w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1, 1)
    for op in photo["order"]:
        gray = (x * gray_w).sum(0, keepdim=True)
        if op == 0:
            x = x * photo["brightness"]
        elif op == 1:
            x = gray.mean() + photo["contrast"] * (x - gray.mean())
        elif op == 2:
            x = gray + photo["saturation"] * (x - gray)
        else:
            yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
            c, s = np.cos(2 * np.pi * photo["hue"]), np.sin(2 * np.pi * photo["hue"])
            rot = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float32)
            x = torch.einsum("ij,jthw->ithw", torch.linalg.inv(yiq) @ rot @ yiq, x)
        x = x.clamp(0, 1)
    return x


def test_fused_colour_jitter_matches_sequential_ops_in_range():
    from glocal.data.transforms import CropParams

    g = torch.Generator().manual_seed(0)
    clip = torch.randint(90, 170, (3, 16, 16, 3), generator=g, dtype=torch.uint8)  # mid-range colours
    tf = ClipTransform(size=16)
    crop = CropParams(0.0, 0.0, 1.0, 1.0)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        photo = {"brightness": 1.1, "contrast": 0.85, "saturation": 1.2, "hue": 0.04, "order": order, "grayscale": False}
        out = tf.apply(clip, crop, photo)
        x = clip.permute(3, 0, 1, 2).float() / 255
        ref = _reference_jitter(x, photo)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
        assert torch.allclose(out, (ref - mean) / std, atol=1e-4), order
    # grayscale: three equal channels of the luma
    photo = {"grayscale": True}
    out = tf.apply(clip, crop, photo) * torch.tensor(IMAGENET_STD).view(3, 1, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    assert torch.allclose(out[0], out[1], atol=1e-5) and torch.allclose(out[1], out[2], atol=1e-5)


def test_channel_sums_equal_a_float64_sum() -> None:
    """The contrast jitter's channel means: exact integer sums of uint8 (int32 while 255·N fits,
    int64 beyond) equal the float64 sum they replaced; floats are summed in float64."""
    from glocal.data.transforms import channel_sums

    g = torch.Generator().manual_seed(0)
    small = torch.randint(0, 256, (3, 32 * 112 * 112), dtype=torch.uint8, generator=g)
    reference = small.double().sum(dim=1)
    assert torch.equal(channel_sums(small), reference) and channel_sums(small).dtype == torch.float64
    big = torch.full((1, 2**31 // 255 + 1), 255, dtype=torch.uint8)  # 255·N overflows int32
    assert channel_sums(big).item() == 255.0 * big.shape[1]
    floats = torch.rand(3, 1000, generator=g)
    assert torch.equal(channel_sums(floats), floats.sum(dim=1, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("flip", [False, True])
def test_channel_major_matches_flip_then_permute(dtype, flip):
    """The one-copy CPU path (numpy strides) equals torch's flip + permute + contiguous, for a
    channels-last input as the antialiased resize returns it; bfloat16 takes torch's path."""
    from glocal.data.transforms import _channel_major

    x = torch.randint(0, 256, (4, 5, 6, 3)).to(dtype).permute(0, 3, 1, 2)  # (T, C, H, W), channels-last memory
    want = (x.flip(-1) if flip else x).permute(1, 0, 2, 3).contiguous()
    got = _channel_major(x, flip)
    assert got.dtype == dtype and got.is_contiguous() and torch.equal(got, want)
