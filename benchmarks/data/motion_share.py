"""Where motion pooling looks: the share of its weights on the animals of a real-parts set.

    python benchmarks/data/motion_share.py data/rp_big [--videos 40] [--split train] [--frames 16]
        [--step 2] [--size 64] [--map 2,8,8]

For the first ``--videos`` videos of ``--split``: ``--frames`` frames, every ``--step``-th (the
recipes' 16 frames at 8 fps of a 16 fps video), resized to ``--size`` px, the motion weights of
``method.spatial_pool: motion`` (:func:`glocal.models.pooling.motion_weights`) at a map of
``--map`` = ``T',h,w`` cells, and the share of that weight on the sounding animal's mask and on
either animal's (each cell counted by the fraction of it the mask covers), beside the share a
uniform weight (mean pooling) puts there, i.e. the masks' area. Masks: ``annotations.json``'s
``source_masks`` / ``distractor_masks`` (docs/real_parts.md).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from glocal.models.pooling import motion_weights


def _frames(path: Path, frames: int, step: int) -> np.ndarray:
    """``(frames, H, W, 3)`` uint8: every ``step``-th decoded frame from the first."""
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(decoded[0 : frames * step : step])


def _masks(root: Path, entry: dict, frames: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The sounding animal's mask and the union of every animal's, ``(frames, H, W)`` bool."""
    def load(rel: str) -> np.ndarray:
        return np.load(root / rel)["masks"][0 : frames * step : step] > 0

    source = load(entry["source_masks"])
    rels = entry["distractor_masks"]
    rels = json.loads(rels.replace("'", '"')) if isinstance(rels, str) else rels
    either = source.copy()
    for rel in rels:
        either |= load(rel)
    return source, either


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--videos", type=int, default=40)
    p.add_argument("--split", default="train")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--map", default="2,8,8", help="T',h,w of the backbone map")
    a = p.parse_args(argv)
    cells = tuple(int(v) for v in a.map.split(","))
    videos = json.loads((a.root / "annotations.json").read_text())["videos"]
    with open(a.root / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == a.split][: a.videos]
    shares: dict[str, list[float]] = {"motion_source": [], "motion_either": [], "uniform_source": [], "uniform_either": []}
    for row in rows:
        clip = torch.from_numpy(_frames(a.root / row["path"], a.frames, a.step)).permute(3, 0, 1, 2)[None].float()
        clip = F.interpolate(clip, size=(clip.shape[2], a.size, a.size), mode="trilinear", align_corners=False)
        weights = motion_weights(clip, cells)[0]  # (T', h, w), sums to 1
        for name, mask in zip(("source", "either"), _masks(a.root, videos[row["path"]], a.frames, a.step)):
            cover = F.adaptive_avg_pool3d(torch.from_numpy(mask).float()[None, None], cells)[0, 0]  # (T', h, w)
            shares[f"motion_{name}"].append(float((weights * cover).sum()))
            shares[f"uniform_{name}"].append(float(cover.mean()))
    print(f"{len(rows)} {a.split} videos of {a.root}, map {a.map}: " + ", ".join(
        f"{k} {np.mean(v):.3f}" for k, v in shares.items()))


if __name__ == "__main__":
    main()
