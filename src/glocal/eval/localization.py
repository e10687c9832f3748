"""Sound-source localisation: the method's audio-visual heat maps against per-frame boxes.

For each test video (centre clip, centre crop) the method returns one heat map per slow frame;
the ground truth is the sound source's box at the frame shown at that time, mapped into the
crop. Metrics (methods.md §8): heat map upsampled to the crop size, binarised at its median,
cIoU per map, then cIoU@0.5 and the AUC of the success curve over thresholds 0…1.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..errors import DataError
from ..methods import Method
from .context import EvalContext
from .features import make_loader
from .metrics import box_mask, localization_metrics

__all__ = ["clip_box", "run"]


def clip_box(box: list[float], crop: list[float]) -> list[float]:
    """Map a normalised source-frame box ``[x0, y0, x1, y1]`` into crop coordinates (with flip)."""
    cx0, cy0, cx1, cy1, flip = crop
    w, h = max(cx1 - cx0, 1e-9), max(cy1 - cy0, 1e-9)
    x0, x1 = (box[0] - cx0) / w, (box[2] - cx0) / w
    y0, y1 = (box[1] - cy0) / h, (box[3] - cy0) / h
    if flip >= 0.5:
        x0, x1 = 1 - x1, 1 - x0
    return [float(np.clip(v, 0, 1)) for v in (x0, y0, x1, y1)]


@torch.no_grad()
def collect_maps(method: Method, ctx: EvalContext, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Heat maps ``(N, h, w)`` and ground-truth masks ``(N, S, S)`` over all maps of a split."""
    manifest = ctx.split(split)
    loader = make_loader(manifest, ctx.data, with_audio=True)
    size = ctx.data.crop_size
    heat, gts = [], []
    method.eval()
    for batch in tqdm(loader, desc="localisation maps", disable=not ctx.progress, leave=False):
        maps, frames = method.localization_maps(batch["video"].to(ctx.device), batch["audio"].to(ctx.device))
        maps = maps.float().cpu().numpy()
        for row, vid in enumerate(batch["index"].tolist()):
            ann = ctx.video_annotation(str(manifest.paths[vid]))
            boxes = ann.get("source_boxes")
            if not boxes:
                raise DataError(f"annotation of {manifest.paths[vid]} has no 'source_boxes'")
            native_fps = float(ann.get("fps", ctx.data.fps))
            start = float(batch["start"][row])
            crop = batch["crop"][row].tolist()
            for k, frame in enumerate(frames.tolist()):
                t = start + frame / ctx.data.fps
                idx = min(len(boxes) - 1, max(0, int(np.floor(t * native_fps + 1e-6))))
                heat.append(maps[row, k])
                gts.append(box_mask(np.array([clip_box(boxes[idx], crop)]), size, size))
    return np.stack(heat), np.stack(gts)


def run(method: Method, ctx: EvalContext) -> dict[str, float]:
    """cIoU@0.5, AUC and mean cIoU of the sound-source heat maps on the test split."""
    heat, gts = collect_maps(method, ctx)
    return localization_metrics(heat, gts, resize_to=None)
