"""Localisation ground truth of one video: boxes or pixel masks, mapped into the evaluation crop.

Per video (annotations.json, docs/world_format.md §4):

* ``source_masks``: a mask file (``.npz`` key ``masks`` or ``.npy``, ``(num_frames, H, W)``, see
  :mod:`glocal.eval.source_masks`). **Masks take precedence over boxes** when both are given.
* otherwise ``source_boxes[k]`` per frame:

  - one box ``[x0, y0, x1, y1]`` → its binary mask;
  - several boxes ``[[x0, y0, x1, y1], ...]`` → one box per annotator, merged as the Flickr-SoundNet
    **consensus** ``clip(sum of masks / 2, 0, 1)`` (default) or the VGG-SS binary **union**
    (``--box-merge union``);
  - per annotator a list of boxes ``[[[...], ...], ...]`` → each annotator's union, then merged as above.

* distractors (silent objects, optional): ``distractor_masks`` (one mask file per distractor) or, when
  absent, ``distractors[i]["boxes"]`` (one box per frame); their union per frame.

Frame ``k`` of an annotation is shown at ``k / fps`` (the video's ``fps``); a clip frame at time ``t``
takes annotation frame ``floor(t * fps)``, clamped to the last one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .metrics import box_mask, consensus_mask
from .source_masks import crop_mask, load_masks

__all__ = ["clip_box", "frame_gt", "frame_index", "VideoGroundTruth"]


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


def frame_index(t: float, fps: float, num_frames: int) -> int:
    """Annotation frame shown at time ``t`` (s): ``floor(t * fps)`` clamped to ``[0, num_frames - 1]``."""
    return min(num_frames - 1, max(0, int(np.floor(t * fps + 1e-6))))


class VideoGroundTruth:
    """The source's (and distractors') ground truth of one video, frame by frame, in crop coordinates.

    Args:
        ann: the video's entry of annotations.json.
        root: the folder of annotations.json (mask paths are relative to it).
        fps: the annotation frame rate (``ann["fps"]`` when present, else this).
        merge: ``"consensus"`` or ``"union"`` for several boxes per frame.
        name: the video, for error messages.
    """

    def __init__(self, ann: dict[str, Any], root: Path, fps: float, merge: str, name: str) -> None:
        self.fps = float(ann.get("fps", fps))
        self.merge = merge
        self.masks: np.ndarray | None = None
        self.boxes: list[Any] | None = None
        if ann.get("source_masks"):
            self.masks = self._load(root, ann["source_masks"], name)
        elif ann.get("source_boxes"):
            self.boxes = ann["source_boxes"]
        else:
            raise DataError(f"task 'localization': annotation of {name} has no 'source_masks' or 'source_boxes'")
        self.distractor_masks: list[np.ndarray] = []
        self.distractor_boxes: list[list[Any]] = []
        if ann.get("distractor_masks"):
            paths = ann["distractor_masks"]
            if not isinstance(paths, list):
                raise DataError(f"'distractor_masks' of {name} must be a list of mask files; got {paths!r:.80}")
            self.distractor_masks = [self._load(root, p, name) for p in paths]
        else:
            self.distractor_boxes = [d["boxes"] for d in ann.get("distractors", []) or []
                                     if isinstance(d, dict) and d.get("boxes")]

    @staticmethod
    def _load(root: Path, rel: Any, name: str) -> np.ndarray:
        if not isinstance(rel, str):
            raise DataError(f"mask path of {name} must be a string relative to annotations.json; got {rel!r:.80}")
        try:
            return load_masks(root / rel)
        except DataError as exc:
            raise DataError(f"task 'localization': {name}: {exc}") from None

    @property
    def uses_masks(self) -> bool:
        return self.masks is not None

    @property
    def has_distractors(self) -> bool:
        return bool(self.distractor_masks or self.distractor_boxes)

    def source(self, t: float, crop: list[float], size: int) -> np.ndarray:
        """``(size, size)`` ground truth in ``[0, 1]`` of the source at time ``t`` in the crop."""
        if self.masks is not None:
            return crop_mask(self.masks[frame_index(t, self.fps, len(self.masks))], crop, size)
        assert self.boxes is not None
        return frame_gt(self.boxes[frame_index(t, self.fps, len(self.boxes))], crop, size, self.merge)

    def distractors(self, t: float, crop: list[float], size: int) -> np.ndarray:
        """``(size, size)`` union of the distractors' ground truth at time ``t`` (zeros when none)."""
        out = np.zeros((size, size), dtype=np.float64)
        for m in self.distractor_masks:
            out = np.maximum(out, crop_mask(m[frame_index(t, self.fps, len(m))], crop, size))
        for boxes in self.distractor_boxes:
            out = np.maximum(out, frame_gt(boxes[frame_index(t, self.fps, len(boxes))], crop, size, "union"))
        return out
