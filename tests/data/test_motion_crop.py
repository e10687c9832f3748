"""Motion-focused cropping (glocal.data.motion_crop) and its use in ClipTransform."""

from __future__ import annotations

import numpy as np
import torch

from glocal.data.config import DataConfig
from glocal.data.build import train_clip_transform
from glocal.data.motion_crop import motion_map
from glocal.data.transforms import ClipTransform, CropParams, sample_motion_crop, sample_resized_crop


def _moving_square(t: int = 8, h: int = 64, w: int = 64, top: int = 40, size: int = 8, noise: int = 0) -> torch.Tensor:
    """A still grey frame (optionally with per-frame noise) and a bright square moving one pixel right per frame."""
    g = torch.Generator().manual_seed(0)
    f = torch.full((t, h, w, 3), 100, dtype=torch.int16)
    if noise:
        f += torch.randint(-noise, noise + 1, (t, h, w, 1), generator=g, dtype=torch.int16)
    for i in range(t):
        f[i, top : top + size, 10 + i : 10 + i + size] = 250
    return f.clamp(0, 255).to(torch.uint8)


def _slow_motion_map(frames: torch.Tensor) -> np.ndarray:
    """The documented formula, loop by loop: mean over t of sum over c of |x[t+1] - x[t]|, minus the median, >= 0."""
    x = frames.numpy().astype(np.float64)
    t, h, w, _ = x.shape
    m = np.zeros((h, w))
    for i in range(t - 1):
        for y in range(h):
            for z in range(w):
                m[y, z] += sum(abs(x[i + 1, y, z, c] - x[i, y, z, c]) for c in range(3))
    m /= t - 1
    return np.maximum(m - np.median(m), 0.0)


def test_motion_map_matches_formula() -> None:
    f = _moving_square(t=4, h=12, w=20, top=3, size=3, noise=3)
    m, stride = motion_map(f)
    assert stride == 1
    np.testing.assert_allclose(m, _slow_motion_map(f), atol=1e-9)


def test_motion_map_of_float_frames_is_the_scaled_uint8_map() -> None:
    f = _moving_square(t=4, h=12, w=20, top=3, size=3, noise=3)
    np.testing.assert_allclose(motion_map(f.float() / 255)[0], motion_map(f)[0] / 255, atol=1e-12)


def test_motion_map_strides_large_frames_and_is_zero_for_stills() -> None:
    still = torch.full((5, 256, 320, 3), 7, dtype=torch.uint8)
    m, stride = motion_map(still)
    assert stride == 4 and m.shape == (64, 80) and m.sum() == 0
    one, _ = motion_map(_moving_square(t=1))
    assert one.sum() == 0
    rng = np.random.default_rng(0)
    assert sample_motion_crop(rng, (m, stride), 256, 320, (0.2, 1.0)) is None


def test_crops_centre_on_the_moving_square_and_stay_inside() -> None:
    f = _moving_square()
    m, stride = motion_map(f)
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        top, left, h, w = sample_motion_crop(rng, (m, stride), 64, 64, (0.05, 0.1))
        assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 64
        cy, cx = top + h / 2, left + w / 2
        # the square's path: rows 40-47, columns 10-25 (+ half a pixel of rounding)
        hits += 39 <= cy <= 48.5 and 9 <= cx <= 26.5
    assert hits == 200


def test_crop_area_follows_scale_and_shifts_inside_at_the_border() -> None:
    f = torch.full((6, 64, 64, 3), 50, dtype=torch.uint8)
    f[::2, 60:, 60:] = 200  # motion only in the bottom-right corner
    m, stride = motion_map(f)
    rng = np.random.default_rng(2)
    areas = []
    for _ in range(100):
        top, left, h, w = sample_motion_crop(rng, (m, stride), 64, 64, (0.25, 0.5))
        assert top + h == 64 and left + w == 64  # pushed inside, flush with the corner
        areas.append(h * w / 64**2)
    assert 0.2 <= min(areas) and max(areas) <= 0.55


def test_clip_transform_motion_crop_p() -> None:
    f = _moving_square()
    uniform = ClipTransform(size=16, scale=(0.05, 0.1), jitter_p=0.0, grayscale_p=0.0)
    focused = ClipTransform(size=16, scale=(0.05, 0.1), jitter_p=0.0, grayscale_p=0.0, motion_crop_p=1.0)

    def centres(tf: ClipTransform) -> np.ndarray:
        rng = np.random.default_rng(3)
        out = []
        for _ in range(100):
            _, crop = tf(f, rng)
            out.append(((crop.y0 + crop.y1) / 2 * 64, (crop.x0 + crop.x1) / 2 * 64))
        return np.array(out)

    on = centres(focused)
    assert np.mean((on[:, 0] >= 38) & (on[:, 0] <= 50)) >= 0.99
    off = centres(uniform)
    assert np.mean((off[:, 0] >= 38) & (off[:, 0] <= 50)) < 0.4
    # per-frame draws take every frame's crop from the whole clip's map
    per_frame = ClipTransform(size=16, scale=(0.05, 0.1), jitter_p=0.0, grayscale_p=0.0, motion_crop_p=1.0,
                              per_frame=True)
    _, crops = per_frame(f, np.random.default_rng(4))
    assert np.mean([38 <= (c.y0 + c.y1) / 2 * 64 <= 50 for c in crops]) >= 0.99


def test_motion_crop_off_draws_as_before() -> None:
    """motion_crop_p=0 draws exactly the uniform RandomResizedCrop + flip sequence, nothing extra."""
    f = _moving_square(noise=2)
    tf = ClipTransform(size=16, scale=(0.1, 0.5), motion_crop_p=0.0)
    for seed in range(20):
        _, crop = tf(f, np.random.default_rng(seed))
        ref = np.random.default_rng(seed)
        top, left, h, w = sample_resized_crop(ref, 64, 64, (0.1, 0.5), tf.ratio)
        flip = bool(ref.random() < tf.flip_p)
        assert crop == CropParams(left / 64, top / 64, (left + w) / 64, (top + h) / 64, flip)


def test_eval_transform_ignores_motion() -> None:
    """With train=False the crop is the centred square even where all the motion is at the side."""
    f = torch.full((6, 64, 96, 3), 50, dtype=torch.uint8)
    f[::2, :, :8] = 200  # motion only in the left-most columns
    _, crop = ClipTransform(size=16, train=False, motion_crop_p=1.0)(f, np.random.default_rng(0))
    assert crop == CropParams(16 / 96, 0.0, 80 / 96, 1.0, False)
    _, train_crop = ClipTransform(size=16, scale=(0.1, 0.1), motion_crop_p=1.0)(f, np.random.default_rng(0))
    assert train_crop.x0 == 0.0  # the training crop goes to the motion


def test_data_config_carries_motion_crop_p() -> None:
    assert train_clip_transform(DataConfig(motion_crop_p=0.5)).motion_crop_p == 0.5
    assert train_clip_transform(DataConfig()).motion_crop_p == 0.0
