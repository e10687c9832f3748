"""Sound-source localisation: the method's audio-visual heat maps against per-frame boxes or masks.

For each test video (centre clip, centre crop) the method returns one heat map per slow frame;
the ground truth is the sound source's mask or box(es) at the frame shown at that time, mapped
into the crop (:mod:`glocal.eval.localization_gt`; masks take precedence over boxes). Maps are
upsampled bilinearly to the crop size and scored (:mod:`glocal.eval.localization_scores`):

* the reference rule (methods.md §8, LVS code): binarised at the median, ``cIoU@0.5``, ``AUC``,
  ``mean_cIoU`` — structurally 0 when the source covers under 25 % of the frame;
* ``pointing`` (peak on the source), ``mass_share`` (map mass on the source), cIoU at fixed
  thresholds of the normalised map (``cIoU@0.5_t0.3`` ...), ``pointing_distractor`` (peak on a
  silent distractor, when the annotations have distractors) and ``gt_area`` (mean area fraction);
* the same scores of the **oracle** (the ground truth as the map) and of a **centre prior**, under
  ``oracle_*`` / ``centre_*`` (headline keys) and in ``meta.oracle`` / ``meta.centre_prior`` (all).

A warning is printed (and kept in ``meta.warnings``) when the ground truth covers under 25 % of
the frame on average. Maps whose ground truth is empty after cropping (object outside the centre
crop) are skipped and counted in ``meta.skipped_maps``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..errors import DataError
from ..methods import Method
from .context import EvalContext
from .features import make_loader
from .localization_gt import VideoGroundTruth, clip_box, frame_gt
from .localization_scores import (
    centre_prior_maps,
    gt_area,
    localization_scores,
    oracle_maps,
    pointing_hits,
    upsample,
)

__all__ = ["clip_box", "frame_gt", "LocalizationMaps", "collect_maps", "requires", "run", "centre_prior_warning",
           "SMALL_GT_AREA", "ORACLE_KEYS", "CENTRE_KEYS", "SUMMARY_KEYS"]

#: below this mean ground-truth area fraction the median rule cannot reach cIoU 0.5 (cIoU <= 2 x area)
SMALL_GT_AREA = 0.25
#: oracle / centre-prior scores copied into the metrics (all of them are in meta)
ORACLE_KEYS = ("pointing", "mass_share", "cIoU@0.5", "AUC", "cIoU@0.5_t0.5")
CENTRE_KEYS = ("pointing", "mass_share", "cIoU@0.5")
#: the localisation rows of short tables (the demo's results.md)
SUMMARY_KEYS = ("cIoU@0.5", "AUC", "pointing", "pointing_distractor", "mass_share", "cIoU@0.5_t0.5", "gt_area",
                "oracle_pointing", "oracle_cIoU@0.5", "oracle_cIoU@0.5_t0.5", "centre_pointing")


@dataclass
class LocalizationMaps:
    """What :func:`collect_maps` gathers from one split.

    ``heat`` ``(N, h, w)`` model maps; ``gts`` ``(N, S, S)`` source ground truth in ``[0, 1]``
    (non-empty); ``distractors`` ``(N, S, S)`` union of the distractors' ground truth (zeros where a
    frame has none); ``skipped`` maps whose source lies outside the crop; ``mask_maps`` how many of
    the ``N`` took their ground truth from masks.
    """

    heat: np.ndarray
    gts: np.ndarray
    distractors: np.ndarray
    skipped: int
    mask_maps: int


@torch.no_grad()
def collect_maps(method: Method, ctx: EvalContext, split: str = "test") -> LocalizationMaps:
    """Heat maps of a split's centre clips and their ground truth in crop coordinates."""
    manifest = ctx.split(split)
    loader = make_loader(manifest, ctx.data, with_audio=True)
    size = ctx.data.crop_size
    root = ctx.annotations_path.parent
    heat, gts, dis, skipped, mask_maps = [], [], [], 0, 0
    method.eval()
    for batch in tqdm(loader, desc="localisation maps", disable=not ctx.progress, leave=False):
        maps, frames = method.localization_maps(batch["clip/video"].to(ctx.device), batch["clip/audio"].to(ctx.device))
        maps = maps.float().cpu().numpy()
        for row, vid in enumerate(batch["index"].tolist()):
            name = str(manifest.paths[vid])
            truth = VideoGroundTruth(ctx.video_annotation(name), root, ctx.data.fps, ctx.options.box_merge, name)
            start = float(batch["clip/times"][row, 0])
            crop = batch["clip/crop"][row].tolist()
            for k, frame in enumerate(frames.tolist()):
                t = start + frame / ctx.data.fps
                gt = truth.source(t, crop, size)
                if gt.sum() <= 0:
                    skipped += 1
                    continue
                heat.append(maps[row, k])
                gts.append(gt)
                dis.append(truth.distractors(t, crop, size).astype(np.float32))
                mask_maps += int(truth.uses_masks)
    if not heat:
        raise DataError(f"task 'localization': no test frame has its sound source inside the crop ({skipped} skipped)")
    return LocalizationMaps(np.stack(heat), np.stack(gts), np.stack(dis), skipped, mask_maps)


def requires(ctx: EvalContext) -> None:
    if not ctx.has_split("test"):
        raise DataError(f"task 'localization': split 'test' is empty in {ctx.manifest.source}")
    path = ctx.annotations_path
    if not path.is_file():
        raise DataError(f"task 'localization' needs {path} with per-video 'source_boxes' or 'source_masks' "
                        "(see docs/world_format.md)")
    videos = ctx.annotations.get("videos", {})
    for p in ctx.split("test").paths.tolist():
        entry = videos.get(ctx.annotation_key(p), {})
        if not (entry.get("source_masks") or entry.get("source_boxes")):
            raise DataError(f"task 'localization' needs 'source_boxes' or 'source_masks' for every test video in "
                            f"{path}; '{ctx.annotation_key(p)}' has neither")


def small_object_warning(area: float, small_share: float, oracle_ciou: float) -> str:
    """The warning line printed when the mean ground-truth area fraction is under :data:`SMALL_GT_AREA`."""
    return (f"[glocal] warning: localization: the ground truth covers {area:.1%} of the frame on average "
            f"({small_share:.0%} of the maps under {SMALL_GT_AREA:.0%}); the median rule keeps the top 50 % of a map, "
            f"so cIoU <= 2 x the area fraction and median-thresholded cIoU@0.5 cannot exceed 0 on those maps "
            f"(oracle cIoU@0.5 = {oracle_ciou:.3f}): pointing accuracy and mass share are the meaningful figures")


def centre_prior_warning(pointing: float, centre: float) -> str:
    """The warning line printed when a model's pointing accuracy is below a fixed centre point's."""
    return (f"[glocal] warning: localization: the map's peak lies on the source in {pointing:.1%} of the maps, a "
            f"fixed point at the frame centre in {centre:.1%}: these maps do not localise better than a centre "
            f"prior (compare pointing with the random-init twin's and with centre_pointing; docs/evaluation.md)")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Every localisation score of the model's maps on the test split, beside the oracle and a centre prior."""
    maps = collect_maps(method, ctx)
    gts = maps.gts
    heat = upsample(maps.heat, gts.shape[1:])
    res: dict[str, Any] = dict(localization_scores(heat, gts))
    areas = gt_area(gts)
    res["gt_area"] = float(areas.mean())
    has_dis = maps.distractors.reshape(len(gts), -1).max(axis=1) > 0
    if has_dis.any():
        res["pointing_distractor"] = float(pointing_hits(heat[has_dis], maps.distractors[has_dis],
                                                         allow_empty=True).mean())
    oracle = localization_scores(oracle_maps(gts), gts)
    centre = localization_scores(centre_prior_maps(*gts.shape), gts)
    res.update({f"oracle_{k}": oracle[k] for k in ORACLE_KEYS})
    res.update({f"centre_{k}": centre[k] for k in CENTRE_KEYS})
    small_share = float((areas < SMALL_GT_AREA).mean())
    warnings = []
    if res["gt_area"] < SMALL_GT_AREA:
        warnings.append(small_object_warning(res["gt_area"], small_share, oracle["cIoU@0.5"]))
        print(warnings[-1], file=sys.stderr)
    if res["pointing"] < centre["pointing"]:
        warnings.append(centre_prior_warning(res["pointing"], centre["pointing"]))
        print(warnings[-1], file=sys.stderr)
    res["meta"] = {"maps": int(len(gts)), "skipped_maps": maps.skipped, "box_merge": ctx.options.box_merge,
                   "map_size": list(maps.heat.shape[1:]), "gt_size": list(gts.shape[1:]),
                   "gt_source": {"masks": maps.mask_maps, "boxes": int(len(gts)) - maps.mask_maps},
                   "small_gt_maps": small_share, "distractor_maps": int(has_dis.sum()),
                   "oracle": oracle, "centre_prior": centre, "warnings": warnings}
    return res
