"""Background swap: paste a clip's moving foreground onto another clip's static background.

On a small set of videos an instance-discrimination objective (SimCLR, MoCo) can tell videos
apart by their backgrounds alone: both clips of one video share it, and nothing else has to be
learned (docs/methods_results.md, "Video-only methods: the background is the shortcut").
Swapping the background of one of the two clips for another video's makes the background
useless to the positive pair and a trap among the negatives, so the encoder has to match what
moves. This is the idea of foreground-background merging (FAME, Ding et al., CVPR 2022);
glocal's version, for a clip ``x`` ``(3, T, H, W)`` and a partner clip ``y`` from the same batch:

    bg(y)[c, h, w]  = median_t y[c, t, h, w]                   static background estimate
    e(x)[h, w]      = avgpool_k( mean_{c,t} |x[c, t, h, w] - bg(x)[c, h, w]| )   motion energy
    m(x)[h, w]      = 1[e(x)[h, w] >= quantile_{1-area}(e(x)) and e(x)[h, w] > 0]
                                                     foreground: the top ``area`` that moved
    fill[c, h, w]   = (1 - m(y)[h, w]) bg(y)[c, h, w] + m(y)[h, w] bg(x)[c, h, w]
    x'[c, t, h, w]  = m(x)[h, w] x[c, t, h, w] + (1 - m(x)[h, w]) fill[c, h, w]

Where the partner's own foreground was, the clip keeps its own background: an object that
barely moves stays in its clip's median, and pasting it would put the partner's objects (the
very thing the partner's positive pair matches on) into this clip. The mask is one per clip
(the union of where things moved over the clip), so the foreground keeps its own surroundings
in every frame and nothing flickers. ``k`` is about an eighth of the frame (odd, >= 3): the
mask follows objects, not single edges. Partners are the next clip
of the batch (``i -> i + 1 mod B``; the batch order is already a random draw of the dataset).
The clips may be normalised or not: the formula is per channel and affine normalisation
commutes with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["static_background", "motion_mask", "swap_backgrounds"]


def static_background(video: torch.Tensor) -> torch.Tensor:
    """Per-pixel temporal median ``(B, 3, 1, H, W)`` of clips ``(B, 3, T, H, W)``."""
    return video.median(dim=2, keepdim=True).values


def motion_mask(video: torch.Tensor, area: float, background: torch.Tensor | None = None) -> torch.Tensor:
    """Binary foreground masks ``(B, 1, 1, H, W)`` (float, 1 = foreground) of clips ``(B, 3, T, H, W)``.

    The ``area`` share of pixels (rounded, at least one) with the highest smoothed motion energy
    (module formula; ties at the threshold are all kept), less the pixels where nothing moved
    at all (zero energy: when under ``area`` of the frame moves, only what moved is foreground).
    A clip where nothing moves is all foreground: the swap leaves it unchanged.
    """
    if not 0.0 < area <= 1.0:
        raise ValueError(f"area must be in (0, 1], got {area}")
    b, _, _, h, w = video.shape
    bg = static_background(video) if background is None else background
    energy = (video - bg).abs().mean(dim=(1, 2))  # (B, H, W)
    k = max(3, (min(h, w) // 8) | 1)
    energy = F.avg_pool2d(energy[:, None], k, stride=1, padding=k // 2, count_include_pad=False)[:, 0]
    flat = energy.reshape(b, h * w)
    keep = max(1, round(area * h * w))
    thresh = flat.topk(keep, dim=1).values[:, -1:]  # (B, 1): the keep-th largest energy
    still = flat.amax(dim=1, keepdim=True) <= 0  # (B, 1): nothing moved
    fg = ((flat >= thresh) & (flat > 0)) | still
    return fg.to(video.dtype).reshape(b, 1, 1, h, w)


def swap_backgrounds(video: torch.Tensor, area: float, apply: torch.Tensor) -> torch.Tensor:
    """Clips ``(B, 3, T, H, W)`` where ``apply`` ``(B,)`` bool is set get the static background
    of clip ``i + 1 mod B`` (outside that clip's foreground) behind their own foreground
    (module formula); the others, and a batch of one (no partner), are returned unchanged."""
    if video.dim() != 5:
        raise ValueError(f"swap_backgrounds needs clips (B, 3, T, H, W), got {tuple(video.shape)}")
    if apply.shape != video.shape[:1]:
        raise ValueError(f"apply must be ({video.shape[0]},), got {tuple(apply.shape)}")
    if video.shape[0] < 2 or not bool(apply.any()):
        return video
    with torch.no_grad():
        bg = static_background(video)
        mask = motion_mask(video, area, background=bg)
        partner_bg, partner_mask = bg.roll(-1, dims=0), mask.roll(-1, dims=0)  # row i: clip i+1's
        fill = (1 - partner_mask) * partner_bg + partner_mask * bg
        swapped = mask * video + (1 - mask) * fill
        return torch.where(apply.to(video.device).reshape(-1, 1, 1, 1, 1), swapped, video)
