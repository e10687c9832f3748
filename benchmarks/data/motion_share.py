"""Where motion pooling looks: the share of its weights on the animals of a real-parts set.

    python benchmarks/data/motion_share.py data/rp_big [--videos 40] [--split train] [--frames 16]
        [--fps 8] [--size 64] [--map 2,8,8]

For the first ``--videos`` videos of ``--split``: the clip of ``--frames`` frames at ``--fps`` from
the start (the recipes' 16 frames at 8 fps), decoded by glocal's reader at ``--size`` px, the
motion weights of ``method.spatial_pool: motion`` (:func:`glocal.models.pooling.motion_weights`)
at a map of ``--map`` = ``T',h,w`` cells, and the share of that weight on the sounding animal's
mask and on either animal's (each cell counted by the fraction of it the mask covers), beside the
share a uniform weight (mean pooling) puts there, i.e. the masks' area. Masks:
``annotations.json``'s ``source_masks`` / ``distractor_masks`` (docs/real_parts.md), read by
evaluation's loader, the annotation frame of each clip frame as localisation takes it.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glocal.data.io import read_clip
from glocal.eval.localization_gt import frame_index
from glocal.eval.source_masks import load_masks
from glocal.models.pooling import motion_weights


def _masks(root: Path, entry: dict, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sounding animal's mask and the union of every animal's at the clip's frame ``times``,
    ``(T, H, W)`` bool each."""
    fps = float(entry["fps"])

    def load(rel: str) -> np.ndarray:
        masks = load_masks(root / rel)
        return masks[[frame_index(float(t), fps, len(masks)) for t in times]]

    source = load(entry["source_masks"])
    either = source.copy()
    for rel in entry.get("distractor_masks") or []:
        either |= load(rel)
    return source, either


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--videos", type=int, default=40)
    p.add_argument("--split", default="train")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--map", default="2,8,8", help="T',h,w of the backbone map")
    a = p.parse_args(argv)
    cells = tuple(int(v) for v in a.map.split(","))
    videos = json.loads((a.root / "annotations.json").read_text())["videos"]
    with open(a.root / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == a.split][: a.videos]
    times = np.arange(a.frames) / a.fps
    shares: dict[str, list[float]] = {"motion_source": [], "motion_either": [], "uniform_source": [], "uniform_either": []}
    for row in rows:
        frames = read_clip(a.root / row["path"], 0.0, a.frames, a.fps, size=(a.size, a.size), read_audio=False).frames
        clip = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float()  # (1, 3, T, S, S)
        weights = motion_weights(clip, cells)[0]  # (T', h, w), sums to 1
        for name, mask in zip(("source", "either"), _masks(a.root, videos[row["path"]], times)):
            cover = F.adaptive_avg_pool3d(torch.from_numpy(mask).float()[None, None], cells)[0, 0]  # (T', h, w)
            shares[f"motion_{name}"].append(float((weights * cover).sum()))
            shares[f"uniform_{name}"].append(float(cover.mean()))
    print(f"{len(rows)} {a.split} videos of {a.root}, map {a.map}: " + ", ".join(
        f"{k} {np.mean(v):.3f}" for k, v in shares.items()))


if __name__ == "__main__":
    main()
