"""Build the real-parts set: plan, render in worker processes, write the files.

Layout (``docs/real_parts.md``): the generated world's ``videos/``, ``manifest.csv`` and
``annotations.json`` (``docs/world_format.md``), plus ``masks/*.npz`` and ``realparts.json``
(written last). Classes, splits and folds come from the world's own planner
(:func:`glocal.data.synth.world.plan_world`); video ``i`` is drawn from ``default_rng([seed, i])``
only, so the output does not depend on the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from glocal.config import check
from glocal.errors import ConfigError

from ...av_writer import write_mp4
from ..config import SPLITS, WorldConfig
from ..world import ANNOTATIONS_FORMAT, MANIFEST_COLUMNS, VIDEO_PRESET, VideoPlan, _write_csv, _write_json, plan_world, remove_outputs, video_path
from .config import RealPartsConfig
from .render import render_audio, render_video
from .scene import sample_real_scene
from .sources import BACKGROUND_STEMS, CATALOGUE, TEXTURE_NAMES, is_reserved, load_sound

__all__ = ["REALPARTS_FORMAT", "GENERATOR_VERSION", "LICENCE_NOTE", "VAL_MANIFEST", "plan_real_parts", "generate_real_parts",
           "val_as_test"]

REALPARTS_FORMAT = "glocal-realparts-v1"
GENERATOR_VERSION = "1"
#: the manifest for choosing settings: the train rows, the val rows relabelled ``test``, no test rows
VAL_MANIFEST = "manifest_val.csv"


def val_as_test(rows: list[list[Any]], split_index: int = 2) -> list[list[Any]]:
    """Manifest rows for tuning on val: ``train`` rows kept, ``val`` rows relabelled ``test``,
    ``test`` rows dropped, so that ``glocal eval --data <set>/manifest_val.csv`` scores every
    protocol on val and the test split stays unseen until the settings are fixed."""
    out = []
    for row in rows:
        split = row[split_index]
        if split == "train":
            out.append(list(row))
        elif split == "val":
            out.append([*row[:split_index], "test", *row[split_index + 1:]])
    return out


LICENCE_NOTE = (
    "Animal and plant photographs and animal recordings: Debian package tuxpaint-stamps-default "
    "(Tux Paint stamps, GPL-2.0-or-later). Background textures grass/gravel/brick: scikit-image "
    "sample data (BSD-3-Clause wheel; see skimage/data/README). Redistribute the videos under the "
    "GPL-2.0-or-later."
)


def plan_real_parts(cfg: RealPartsConfig) -> list[VideoPlan]:
    """Class (index into ``cfg.classes``), split and fold of every video: the world's planner with
    one rhythm and no fakes (balanced classes, class-stratified splits, folds 1..5 per class)."""
    wcfg = WorldConfig(
        num_videos=cfg.num_videos, num_classes=len(cfg.classes), num_rhythms=1, fake_fraction=0.0,
        train_fraction=cfg.train_fraction, val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction, seed=cfg.seed,
    )
    return plan_world(wcfg)


def _r4(a: Any) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 4).tolist()


def _boxes4(boxes: np.ndarray) -> list:
    """Boxes rounded outwards to 4 decimals, so every mask pixel stays inside its box."""
    b = np.asarray(boxes, dtype=np.float64) * 1e4
    out = np.concatenate([np.floor(b[..., :2] + 1e-6), np.ceil(b[..., 2:] - 1e-6)], axis=-1) / 1e4
    return np.round(np.clip(out, 0.0, 1.0), 4).tolist()


def _save_mask(path: Path, masks: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, masks=masks.astype(np.uint8))
    tmp.replace(path)


def _generate_one(task: tuple[RealPartsConfig, VideoPlan, str, str, str, dict[str, float]]) -> dict[str, Any]:
    """Worker: render and write one video and its masks; return its annotation record."""
    cfg, plan, out_dir, stamps, textures, sound_len = task
    out = Path(out_dir)
    scene = sample_real_scene(cfg, plan.index, plan.label, sound_len)
    video = render_video(scene, stamps, textures)
    audio = render_audio(scene, stamps)
    rel = video_path(plan.index)
    write_mp4(out / rel, video.frames, cfg.fps, audio, cfg.sample_rate, preset=VIDEO_PRESET)
    (out / "masks").mkdir(exist_ok=True)
    mask_rel = [f"masks/{plan.index:06d}.npz"] + [f"masks/{plan.index:06d}_d{k}.npz" for k in range(len(scene.animals) - 1)]
    for rel_m, m in zip(mask_rel, video.masks):
        _save_mask(out / rel_m, m)
    name = cfg.classes[plan.label]
    annotation = {
        "label": name,
        "sound_label": name,
        "split": plan.split,
        "fold": plan.fold,
        "fps": cfg.fps,
        "num_frames": cfg.num_frames,
        "duration": float(cfg.duration),
        "source_boxes": _boxes4(video.boxes[0]),
        "source_masks": mask_rel[0],
        "distractors": [
            {"label": a.label, "boxes": _boxes4(video.boxes[k]), "flashes": _r4(a.pulses)}
            for k, a in enumerate(scene.animals) if k > 0
        ],
        "distractor_masks": mask_rel[1:],
        "events": _r4(scene.events),
        "source_stem": scene.animals[0].stem,
        "sound_stem": scene.sound_stem,
    }
    stems = [a.stem for a in scene.animals] + [p.stem for p in scene.plants] + [scene.sound_stem]
    return {"index": plan.index, "path": rel, "annotation": annotation, "stems": stems}


def _check_existing(out: Path, cfg: RealPartsConfig, overwrite: bool) -> dict[str, Any] | None:
    """The stored summary when ``out`` already holds this exact set; otherwise clean up
    (``overwrite``) or raise :class:`ConfigError`."""
    summary = out / "realparts.json"
    if not summary.exists():
        if ((out / "manifest.csv").exists() or (out / "videos").is_dir()) and not overwrite:
            raise ConfigError(f"{out} already has files but no realparts.json (another dataset or an "
                              "interrupted run); choose another --out or pass --overwrite")
    else:
        try:
            stored = json.loads(summary.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            stored = None
        if (isinstance(stored, dict) and stored.get("generator_version") == GENERATOR_VERSION
                and stored.get("config") == cfg.to_dict()):
            return stored
        if not overwrite:
            old = stored.get("config", {}) if isinstance(stored, dict) else {}
            new = cfg.to_dict()
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ConfigError(f"{out} holds a different real-parts set (differs in {diff or 'version'}); "
                              "pass --overwrite to rebuild it or choose another --out")
    remove_outputs(out, ("videos", "masks"), ("manifest.csv", VAL_MANIFEST, "annotations.json", "realparts.json"))
    return None


def _run(tasks: list, workers: int) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_generate_one, tasks)
        return
    ctx = mp.get_context("spawn")  # safe with threads in the parent; needs a __main__ guard
    with ctx.Pool(processes=min(workers, len(tasks))) as pool:
        yield from pool.imap_unordered(_generate_one, tasks, chunksize=1)


def generate_real_parts(
    cfg: RealPartsConfig | Mapping[str, Any],
    out_dir: str | Path,
    *,
    stamps: str | Path,
    textures: str | Path,
    workers: int = 2,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build the real-parts set described by ``cfg`` under ``out_dir``.

    Args:
        cfg: a :class:`RealPartsConfig` or a mapping of its fields.
        out_dir: output folder.
        stamps: tuxpaint stamps folder (:func:`~.sources.find_stamps`).
        textures: folder with the background textures (:func:`~.sources.find_textures`).
        workers: worker processes (1 = in-process); the output does not depend on it.
        progress: show a tqdm bar.
        overwrite: rebuild when ``out_dir`` holds something else.

    Returns:
        The ``realparts.json`` content plus ``seconds`` and ``skipped`` (True when the same set
        was already there and nothing was written).
    """
    t0 = time.perf_counter()
    # built and checked from a mapping; an instance made directly is checked here
    cfg = check(cfg) if isinstance(cfg, RealPartsConfig) else RealPartsConfig.from_dict(cfg)
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    out = Path(out_dir)
    stored = _check_existing(out, cfg, overwrite)
    if stored is not None:
        return {**stored, "seconds": round(time.perf_counter() - t0, 3), "skipped": True}
    out.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    stamps, textures = str(stamps), str(textures)
    sound_len = {s: len(load_sound(stamps, s, cfg.sample_rate)) / cfg.sample_rate
                 for c in cfg.classes for s in CATALOGUE[c][1]}
    plans = plan_real_parts(cfg)
    tasks = [(cfg, p, str(out), stamps, textures, sound_len) for p in plans]
    records: list[dict[str, Any]] = [{}] * len(plans)
    with tqdm(total=len(tasks), desc="building real parts", unit="video", disable=not progress) as bar:
        for rec in _run(tasks, workers):
            records[rec["index"]] = rec
            bar.update(1)

    used = sorted({s for rec in records for s in rec["stems"]})
    bad = [s for s in used if is_reserved(s)]
    if bad:  # cannot happen: sources refuses reserved stems; kept as a last guard
        raise RuntimeError(f"reserved stems used: {bad}")
    rows = [[rec["path"], cfg.classes[p.label], p.split, cfg.classes[p.label], "", p.fold, float(cfg.duration), cfg.fps]
            for p, rec in zip(plans, records)]
    _write_csv(out / "manifest.csv", MANIFEST_COLUMNS, rows)
    has_val = any(p.split == "val" for p in plans)
    if has_val:
        _write_csv(out / VAL_MANIFEST, MANIFEST_COLUMNS, val_as_test(rows))
    _write_json(out / "annotations.json", {
        "format": ANNOTATIONS_FORMAT,
        "classes": list(cfg.classes),
        "videos": {rec["path"]: rec["annotation"] for rec in records},
    })
    summary = {
        "format": REALPARTS_FORMAT,
        "generator_version": GENERATOR_VERSION,
        "config": cfg.to_dict(),
        "classes": list(cfg.classes),
        "counts": {
            "videos": len(plans),
            "splits": {s: sum(p.split == s for p in plans) for s in SPLITS},
            "classes": {c: sum(p.label == k for p in plans) for k, c in enumerate(cfg.classes)},
            "distractors": sum(len(r["annotation"]["distractors"]) for r in records),
        },
        "stems_used": used,
        "sources": {
            "stamps": "Debian tuxpaint-stamps-default (usr/share/tuxpaint/stamps)",
            "textures": [f"scikit-image wheel skimage/data/{n}.png" for n in TEXTURE_NAMES],
            "plants": list(BACKGROUND_STEMS),
        },
        "licence": LICENCE_NOTE,
        "files": {"manifest": "manifest.csv", "annotations": "annotations.json", "masks": "masks/",
                  **({"val_manifest": VAL_MANIFEST} if has_val else {})},
    }
    _write_json(out / "realparts.json", summary, indent=2)
    return {**summary, "seconds": round(time.perf_counter() - t0, 3), "skipped": False}
