"""Background swap (glocal.data.background_swap) against loop references and hand-made clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal.data.background_swap import motion_mask, static_background, swap_backgrounds


def _moving_square(b: int = 3, t: int = 5, size: int = 32, side: int = 8,
                   seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Clips ``(B, 3, T, S, S)``: a textured static background per clip and a bright square that
    moves one pixel right per frame from a per-clip start; also the union of the square's
    pixels over the clip ``(B, S, S)`` bool."""
    g = np.random.default_rng(seed)
    video = np.empty((b, 3, t, size, size), np.float32)
    union = np.zeros((b, size, size), bool)
    for i in range(b):
        bg = g.uniform(0.0, 0.5, (3, size, size)).astype(np.float32)
        y0, x0 = 4 + 6 * i, 2 + 3 * i
        for k in range(t):
            video[i, :, k] = bg
            video[i, :, k, y0:y0 + side, x0 + k:x0 + k + side] = 1.0
            union[i, y0:y0 + side, x0 + k:x0 + k + side] = True
    return torch.from_numpy(video), union


def test_static_background_is_the_temporal_median() -> None:
    x = torch.randn(2, 3, 5, 6, 7, generator=torch.Generator().manual_seed(1))
    ref = np.sort(x.numpy(), axis=2)[:, :, 2:3]  # odd T: the middle value
    assert torch.equal(static_background(x), torch.from_numpy(ref))


def test_motion_mask_keeps_the_requested_share_and_covers_the_mover() -> None:
    video, union = _moving_square()
    area = 0.2
    mask = motion_mask(video, area)
    assert mask.shape == (3, 1, 1, 32, 32)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    share = mask.mean(dim=(1, 2, 3, 4))
    assert torch.all((share > 0.1) & (share <= area + 1e-6))  # only what moved (the trail, smoothed)
    for i in range(3):
        fg = mask[i, 0, 0].numpy().astype(bool)
        # the square's trail moves the median most: its pixels are inside the mask
        assert (fg & union[i]).sum() >= 0.9 * union[i].sum(), i


def test_motion_mask_without_motion_is_all_foreground() -> None:
    still = torch.rand(2, 3, 1, 16, 16).expand(2, 3, 4, 16, 16).clone()  # every frame the same
    assert torch.equal(motion_mask(still, 0.3), torch.ones(2, 1, 1, 16, 16))
    assert torch.equal(swap_backgrounds(still, 0.3, torch.ones(2, dtype=torch.bool)), still)


def test_motion_mask_takes_the_top_share_when_everything_moves() -> None:
    x = torch.rand(2, 3, 6, 16, 16, generator=torch.Generator().manual_seed(3))  # noise: every pixel moves
    share = motion_mask(x, 0.3).mean(dim=(1, 2, 3, 4))
    assert torch.allclose(share, torch.full((2,), round(0.3 * 256) / 256))


def test_motion_mask_rejects_bad_area() -> None:
    with pytest.raises(ValueError, match="area"):
        motion_mask(torch.zeros(1, 3, 2, 8, 8), 0.0)


def test_swap_matches_a_pixel_loop_reference() -> None:
    video, _ = _moving_square(b=3)
    area = 0.25
    apply = torch.tensor([True, False, True])
    out = swap_backgrounds(video, area, apply)
    bg = static_background(video).numpy()[:, :, 0]  # (B, 3, S, S)
    m = motion_mask(video, area).numpy()[:, 0, 0].astype(bool)  # (B, S, S)
    v = video.numpy()
    ref = v.copy()
    b, _, t, s, _ = v.shape
    for i in range(b):
        if not apply[i]:
            continue
        j = (i + 1) % b
        for y in range(s):
            for x in range(s):
                if m[i, y, x]:
                    continue  # own foreground
                pixel = bg[j, :, y, x] if not m[j, y, x] else bg[i, :, y, x]  # partner's background, never its objects
                ref[i, :, :, y, x] = pixel[:, None]
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-6)
    assert torch.equal(out[1], video[1])
    assert not torch.equal(out[0], video[0])


def test_swap_replaces_the_background_and_keeps_the_mover() -> None:
    video, union = _moving_square(b=2)
    out = swap_backgrounds(video, 0.25, torch.tensor([True, True]))
    for i in range(2):
        j = 1 - i
        assert torch.equal(out[i][:, :, torch.from_numpy(union[i])], video[i][:, :, torch.from_numpy(union[i])])
        # far from both squares the pixels are the partner's static background
        far = ~(np.asarray(motion_mask(video, 0.25)[:, 0, 0].bool()).any(axis=0))
        far_t = torch.from_numpy(far)
        assert far.sum() > 100
        assert torch.equal(out[i][:, 0][:, far_t], video[j][:, 0][:, far_t])


def test_swap_batch_of_one_and_shape_checks() -> None:
    x = torch.rand(1, 3, 4, 8, 8)
    assert swap_backgrounds(x, 0.5, torch.tensor([True])) is x
    with pytest.raises(ValueError, match="apply"):
        swap_backgrounds(torch.rand(2, 3, 4, 8, 8), 0.5, torch.tensor([True]))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        swap_backgrounds(torch.rand(2, 3, 8, 8), 0.5, torch.tensor([True, True]))
