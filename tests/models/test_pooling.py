"""Pooling over positions (glocal.models.pooling): motion weights on hand-built clips, and each
pool against a per-position Python loop."""

from __future__ import annotations

import pytest
import torch

from glocal.models.pooling import motion_weights, pool_positions


def _clip_with_a_moving_square(t: int = 6, side: int = 32) -> torch.Tensor:
    """(1, 3, t, side, side): a still grey frame, except a bright 4x4 square that moves one pixel
    right per frame inside the top-left quadrant."""
    video = torch.full((1, 3, t, side, side), 0.5)
    for k in range(t):
        video[:, :, k, 4:8, 2 + k:6 + k] = 1.0
    return video


def test_motion_weights_sit_where_the_clip_moves() -> None:
    w = motion_weights(_clip_with_a_moving_square(), (3, 4, 4))  # cells of 8x8 pixels
    assert w.shape == (1, 3, 4, 4)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    # the square's columns 2..11, rows 4..7: cells (row 0, columns 0 and 1) only
    outside = w.clone()
    outside[:, :, 0, :2] = 0
    assert outside.abs().max() == 0
    assert (w[:, :, 0, :2] > 0).any()


def test_motion_weights_uniform_without_motion_and_per_frame_sums() -> None:
    still = torch.rand(2, 3, 1, 16, 16).expand(2, 3, 5, 16, 16).contiguous()
    torch.testing.assert_close(motion_weights(still, (5, 2, 2)), torch.full((2, 5, 2, 2), 1 / 20))
    w = motion_weights(_clip_with_a_moving_square(), (6, 4, 4), per_frame=True)
    torch.testing.assert_close(w.sum(dim=(2, 3)), torch.ones(1, 6))
    # uniform change everywhere (a global brightness ramp) is not motion: every cell at the median
    ramp = torch.linspace(0, 1, 4).view(1, 1, 4, 1, 1).expand(1, 3, 4, 8, 8)
    torch.testing.assert_close(motion_weights(ramp, (4, 2, 2)), torch.full((1, 4, 2, 2), 1 / 16))
    with pytest.raises(ValueError, match="T >= 2"):
        motion_weights(torch.zeros(1, 3, 1, 8, 8), (1, 2, 2))


def _reference(fmap: torch.Tensor, pool: str, weights: torch.Tensor | None) -> torch.Tensor:
    """(B, C, T, h, w) -> (B, C), one position at a time."""
    b, c, t, h, w = fmap.shape
    out = torch.zeros(b, c)
    for i in range(b):
        for k in range(c):
            vals = [float(fmap[i, k, s, y, x]) for s in range(t) for y in range(h) for x in range(w)]
            if pool == "motion":
                assert weights is not None
                out[i, k] = sum(float(weights[i, s, y, x]) * float(fmap[i, k, s, y, x])
                                for s in range(t) for y in range(h) for x in range(w))
            else:
                out[i, k] = {"mean": sum(vals) / len(vals), "max": max(vals),
                             "meanmax": sum(vals) / len(vals) + max(vals)}[pool]
    return out


@pytest.mark.parametrize("pool", ["mean", "max", "meanmax", "motion"])
def test_pool_positions_against_a_loop(pool: str) -> None:
    torch.manual_seed(0)
    fmap = torch.rand(2, 3, 3, 4, 4)
    video = torch.cat([_clip_with_a_moving_square(), torch.rand(1, 3, 6, 32, 32)])
    weights = motion_weights(video, (3, 4, 4)) if pool == "motion" else None
    torch.testing.assert_close(pool_positions(fmap, pool, (2, 3, 4), video), _reference(fmap, pool, weights))  # type: ignore[arg-type]


def test_motion_pool_needs_the_clip_and_names_the_choices() -> None:
    with pytest.raises(ValueError, match="needs the clip"):
        pool_positions(torch.rand(1, 2, 1, 2, 2), "motion", (2, 3, 4))
    with pytest.raises(ValueError, match="median"):
        pool_positions(torch.rand(1, 2, 1, 2, 2), "median", (2, 3, 4))  # type: ignore[arg-type]
