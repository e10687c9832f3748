"""Deferred photometric transform: ``finish_clips(split(x))`` must equal ``ClipTransform(x)``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal.data.photometric import PHOTO_DIM, finish_batch, finish_clips
from glocal.data.transforms import ClipTransform, CropParams, colour_and_normalise


def _frames(seed: int, t: int = 4, h: int = 40, w: int = 52) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), generator=g, dtype=torch.uint8)


TRANSFORMS = {
    "jitter": ClipTransform(size=24, jitter_p=1.0, grayscale_p=0.0),
    "gray": ClipTransform(size=24, jitter_p=1.0, grayscale_p=1.0),
    "blur": ClipTransform(size=24, jitter_p=0.5, grayscale_p=0.5, blur_p=1.0),
    "defaults": ClipTransform(size=24),
    "eval": ClipTransform(size=24, train=False),
    "per_frame": ClipTransform(size=24, per_frame=True, blur_p=0.5, grayscale_p=0.5),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_split_then_finish_equals_transform(name: str) -> None:
    tf = TRANSFORMS[name]
    for seed in range(6):
        frames = _frames(seed)
        ref, ref_crop = tf(frames, np.random.default_rng(seed))
        u8, crop, photo = tf.split(frames, np.random.default_rng(seed))
        assert u8.dtype == torch.uint8 and u8.shape == ref.shape
        assert crop == ref_crop  # same draws from the generator
        assert photo.shape == ((frames.shape[0], PHOTO_DIM) if tf.per_frame else (PHOTO_DIM,))
        out = finish_clips(u8[None], photo[None])[0]
        torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-5)


def test_subpixel_crop_differs_only_by_uint8_rounding() -> None:
    tf = ClipTransform(size=20, jitter_p=1.0)
    frames = _frames(3)
    crop = CropParams(0.113, 0.071, 0.777, 0.913, flip=True)
    ref, _ = tf(frames, np.random.default_rng(0), crop=crop)
    u8, _, photo = tf.split(frames, np.random.default_rng(0), crop=crop)
    out = finish_clips(u8[None], photo[None])[0]
    # half a grey level, through the jitter matrix and 1/std (< 5): well under 0.05
    assert (out - ref).abs().max() < 0.05 and not torch.equal(out, ref)


def test_finish_batch_mixes_clip_level_and_per_frame_views() -> None:
    a, b = TRANSFORMS["jitter"], TRANSFORMS["per_frame"]
    refs, batch = {"g": [], "l": []}, {"g/video": [], "g/photo": [], "l/video": [], "l/photo": []}
    for seed in range(3):
        for key, tf in (("g", a), ("l", b)):
            refs[key].append(tf(_frames(seed), np.random.default_rng(seed))[0])
            u8, _, photo = tf.split(_frames(seed), np.random.default_rng(seed))
            batch[f"{key}/video"].append(u8)
            batch[f"{key}/photo"].append(photo)
    stacked = {k: torch.stack(v) for k, v in batch.items()}
    stacked["label"] = torch.arange(3)
    out = finish_batch(stacked)
    assert set(out) == {"g/video", "l/video", "label"}
    for key in ("g", "l"):
        torch.testing.assert_close(out[f"{key}/video"], torch.stack(refs[key]), atol=2e-5, rtol=1e-5)


def test_finish_rejects_float_clips_and_mismatched_parameters() -> None:
    with pytest.raises(ValueError, match="uint8"):
        finish_clips(torch.zeros(1, 3, 2, 4, 4), torch.zeros(1, PHOTO_DIM))
    with pytest.raises(ValueError, match="do not match"):
        finish_clips(torch.zeros(2, 3, 2, 4, 4, dtype=torch.uint8), torch.zeros(3, PHOTO_DIM))
    with pytest.raises(ValueError, match="uint8 frames"):
        ClipTransform(size=8).split(torch.zeros(2, 8, 8, 3), np.random.default_rng(0))


def _clip_by_clip(video: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The reference: :func:`colour_and_normalise` clip by clip (frame by frame for per-frame
    parameters), the arithmetic :meth:`ClipTransform.apply` uses."""
    out = torch.empty(video.shape, dtype=torch.float32)
    params = photo.double()
    for i in range(video.shape[0]):
        for k in range(video.shape[2]) if params.dim() == 3 else [None]:
            p = params[i, k] if k is not None else params[i]
            sel = slice(None) if k is None else slice(k, k + 1)
            out[i, :, sel] = colour_and_normalise(video[i, :, sel], p[:9].view(3, 3), p[9:12], bool(p[12] > 0.5),
                                                  float(p[13]))
    return out


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_batched_finish_is_bit_identical_to_clip_by_clip(name: str) -> None:
    """One batched multiply for the batch, mixed folded / grayscale / blurred clips: the same bits."""
    tf = TRANSFORMS[name]
    rng = np.random.default_rng(7)
    parts = [tf.split(_frames(seed, t=3), rng) for seed in range(7)]
    video, photo = torch.stack([u8 for u8, _, _ in parts]), torch.stack([p for _, _, p in parts])
    out = finish_clips(video, photo)
    assert out.dtype == torch.float32 and out.is_contiguous() and out.shape == video.shape
    assert torch.equal(out, _clip_by_clip(video, photo))


def test_transforms_does_not_import_photometric() -> None:
    """photometric -> transforms only (the worker-side ``photo_vector`` lives in transforms)."""
    import ast
    import inspect

    import glocal.data.transforms as transforms

    tree = ast.parse(inspect.getsource(transforms))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "photometric" in m]


def test_blur_kernel_is_built_on_the_clips_device(monkeypatch) -> None:
    """Regression: the kernel was built on the host, so a blurred clip finished on a GPU
    (``data.augment_on_device``) failed with a device mismatch. Checked CUDA-free on the meta device."""
    import torch.nn.functional as F

    from glocal.data.transforms import gaussian_blur

    seen = []
    real = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda x, k, *a, **kw: seen.append((x.device, k.device)) or real(x, k, *a, **kw))
    out = gaussian_blur(torch.empty(3, 2, 8, 8, device="meta"), 1.0)
    assert out.device.type == "meta" and seen and all(x == k for x, k in seen)
