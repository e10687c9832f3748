"""Clip transforms: shapes, determinism for a seed, temporal consistency, returned geometry."""

from __future__ import annotations

import numpy as np
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
