"""Sound-source localisation: the method's audio-visual heat maps against per-frame boxes.

For each test video (centre clip, centre crop) the method returns one heat map per slow frame;
the ground truth is the sound source's box(es) at the frame shown at that time, mapped into the
crop. Metrics (methods.md §8): heat map upsampled to the crop size, binarised at its median,
cIoU per map, then cIoU@0.5 and the AUC of the success curve over thresholds 0…1.

Ground truth per frame (``source_boxes[k]`` in annotations.json):

* one box ``[x0, y0, x1, y1]`` → its binary mask;
* several boxes ``[[x0, y0, x1, y1], ...]`` → one box per annotator, merged as the Flickr-SoundNet
  **consensus** ``clip(sum of masks / 2, 0, 1)`` (default) or the VGG-SS binary **union**
  (``--box-merge union``);
* per annotator a list of boxes ``[[[...], ...], ...]`` → each annotator's union, then merged as above.

Maps whose ground truth is empty after cropping (object outside the centre crop) are skipped and
counted in ``meta.skipped_maps``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..errors import DataError
from ..methods import Method
from .context import EvalContext
from .features import make_loader
from .metrics import box_mask, consensus_mask, localization_metrics

__all__ = ["clip_box", "frame_gt", "collect_maps", "requires", "run"]


def clip_box(box: list[float], crop: list[float]) -> list[float]:
    """Map a normalised source-frame box ``[x0, y0, x1, y1]`` into crop coordinates (with flip)."""
    cx0, cy0, cx1, cy1, flip = crop
    w, h = max(cx1 - cx0, 1e-9), max(cy1 - cy0, 1e-9)
    x0, x1 = (box[0] - cx0) / w, (box[2] - cx0) / w
    y0, y1 = (box[1] - cy0) / h, (box[3] - cy0) / h
    if flip >= 0.5:
        x0, x1 = 1 - x1, 1 - x0
    return [float(np.clip(v, 0, 1)) for v in (x0, y0, x1, y1)]


def _depth(entry: Any) -> int:
    d = 0
    while isinstance(entry, (list, tuple)) and entry:
        entry = entry[0]
        d += 1
    return d


def frame_gt(entry: Any, crop: list[float], size: int, merge: str = "consensus") -> np.ndarray:
    """Ground-truth map ``(size, size)`` in crop coordinates of one frame's box entry (see module doc).

    Args:
        entry: a box, a list of boxes (one per annotator) or a list of box lists (per annotator).
        crop: ``(x0, y0, x1, y1, flip)`` of the clip's crop in source coordinates.
        size: output side; merge: ``"consensus"`` or ``"union"``.

    Returns:
        float64 map with values in ``[0, 1]`` (all zero when no box falls inside the crop).
    """
    depth = _depth(entry)
    if depth == 1:
        return box_mask(np.array([clip_box(entry, crop)]), size, size)
    if depth == 2:
        annotators = [[b] for b in entry]
    elif depth == 3:
        annotators = list(entry)
    else:
        raise DataError(f"a frame's boxes must be a box, a list of boxes or per-annotator box lists; got {entry!r:.80}")
    per_annotator = [np.array([clip_box(b, crop) for b in boxes]) for boxes in annotators if boxes]
    if merge == "union":
        return np.max([box_mask(b, size, size) for b in per_annotator], axis=0)
    if merge == "consensus":
        return consensus_mask(per_annotator, size, size)
    raise ValueError(f"merge must be 'consensus' or 'union'; got {merge!r}")


@torch.no_grad()
def collect_maps(method: Method, ctx: EvalContext, split: str = "test") -> tuple[np.ndarray, np.ndarray, int]:
    """Heat maps ``(N, h, w)``, ground-truth maps ``(N, S, S)`` of a split, and the skipped count."""
    manifest = ctx.split(split)
    loader = make_loader(manifest, ctx.data, with_audio=True)
    size = ctx.data.crop_size
    heat, gts, skipped = [], [], 0
    method.eval()
    for batch in tqdm(loader, desc="localisation maps", disable=not ctx.progress, leave=False):
        maps, frames = method.localization_maps(batch["video"].to(ctx.device), batch["audio"].to(ctx.device))
        maps = maps.float().cpu().numpy()
        for row, vid in enumerate(batch["index"].tolist()):
            ann = ctx.video_annotation(str(manifest.paths[vid]))
            boxes = ann.get("source_boxes")
            if not boxes:
                raise DataError(f"task 'localization': annotation of {manifest.paths[vid]} has no 'source_boxes'")
            native_fps = float(ann.get("fps", ctx.data.fps))
            start = float(batch["start"][row])
            crop = batch["crop"][row].tolist()
            for k, frame in enumerate(frames.tolist()):
                t = start + frame / ctx.data.fps
                idx = min(len(boxes) - 1, max(0, int(np.floor(t * native_fps + 1e-6))))
                gt = frame_gt(boxes[idx], crop, size, ctx.options.box_merge)
                if gt.sum() <= 0:
                    skipped += 1
                    continue
                heat.append(maps[row, k])
                gts.append(gt)
    if not heat:
        raise DataError(f"task 'localization': no test frame has a source box inside the crop ({skipped} skipped)")
    return np.stack(heat), np.stack(gts), skipped


def requires(ctx: EvalContext) -> None:
    if not ctx.has_split("test"):
        raise DataError(f"task 'localization': split 'test' is empty in {ctx.manifest.source}")
    ctx.require_annotation_field("localization", "source_boxes", split="test")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """cIoU@0.5, AUC and mean cIoU of the sound-source heat maps on the test split."""
    heat, gts, skipped = collect_maps(method, ctx)
    res: dict[str, Any] = dict(localization_metrics(heat, gts, resize_to=None))
    res["meta"] = {"maps": int(heat.shape[0]), "skipped_maps": skipped, "box_merge": ctx.options.box_merge,
                   "map_size": list(heat.shape[1:]), "gt_size": list(gts.shape[1:])}
    return res
