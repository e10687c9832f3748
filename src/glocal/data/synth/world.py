"""Generate a whole world: videos, manifests, annotations, fakes (see ``docs/world_format.md``).

World-level assignments (class, rhythm, split, fold, which videos get a fake) are computed
up front from ``cfg.seed``; every video is then rendered from ``rng([seed, index])`` in a worker
process, so the output is identical for any number of workers.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from glocal.config import check
from glocal.errors import ConfigError

from ..av_writer import write_mp4
from .config import NUM_FOLDS, SHAPES, SPLITS, WorldConfig
from .fakes import make_fake
from .render_audio import render_audio
from .render_video import object_boxes, render_frames
from .scene import Scene, sample_scene

__all__ = [
    "GENERATOR_VERSION",
    "WORLD_FORMAT",
    "ANNOTATIONS_FORMAT",
    "MANIFEST_COLUMNS",
    "FAKE_MANIFEST_COLUMNS",
    "VideoPlan",
    "plan_world",
    "video_scene",
    "video_path",
    "generate_world",
]

GENERATOR_VERSION = "1"
#: x264 preset used for the world's videos. With lookahead-based presets (``veryfast`` and
#: slower: rc-lookahead > 0, mb-tree) libx264 gave different bitstreams for identical input on
#: these tiny frames, even single-threaded; ``superfast`` (rc-lookahead 0, no mb-tree) encodes
#: bit-identically, which the determinism guarantee needs.
VIDEO_PRESET = "superfast"
WORLD_FORMAT = "glocal-world-v1"
ANNOTATIONS_FORMAT = "glocal-annotations-v1"
MANIFEST_COLUMNS = ("path", "label", "split", "sound_label", "rhythm_label", "fold", "duration", "fps")
FAKE_MANIFEST_COLUMNS = ("path", "label", "split", "source", "manipulation", "shift")

# World-level rng streams: rng([seed, *STREAM]). SeedSequence ignores trailing zero words, so
# the last word is non-zero: these 4-word keys never equal the 2-word keys rng([seed, index])
# of the videos nor the 3-word keys rng([seed, index, 1]) of the fakes.
_STREAM_CLASSES = (0, 0, 1)
_STREAM_RANKS = (0, 0, 2)
_STREAM_FAKES = (0, 0, 3)


@dataclass(frozen=True)
class VideoPlan:
    """World-level assignment of one video.

    Attributes:
        index: video index (file ``videos/{index:06d}.mp4``).
        label: class index (sound source shape = sound class).
        rhythm: rhythm index.
        split: ``"train"``, ``"val"`` or ``"test"``.
        fold: 1..NUM_FOLDS, balanced per class.
        fake: whether a fake counterpart is written.
    """

    index: int
    label: int
    rhythm: int
    split: str
    fold: int
    fake: bool


def video_path(index: int) -> str:
    """Relative path (from the world root) of video ``index``."""
    return f"videos/{index:06d}.mp4"


def _split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n * fraction``; every positive fraction gets >= 1 video
    when ``n`` allows it."""
    raw = {s: n * fractions[s] for s in SPLITS}
    counts = {s: int(np.floor(raw[s])) for s in SPLITS}
    for s in sorted(SPLITS, key=lambda s: raw[s] - counts[s], reverse=True)[: n - sum(counts.values())]:
        counts[s] += 1
    positive = [s for s in SPLITS if fractions[s] > 0]
    if n >= len(positive):
        for s in positive:
            if counts[s] == 0:
                donor = max(SPLITS, key=lambda d: counts[d])
                counts[donor] -= 1
                counts[s] += 1
    return counts


def plan_world(cfg: WorldConfig) -> list[VideoPlan]:
    """Class, rhythm, split, fold and fake assignment of every video (deterministic in seed).

    * classes: ``index mod C`` then permuted, so counts differ by at most one; rhythms:
      ``(index mod C + index // C) mod R`` permuted jointly, so rhythms are balanced overall
      and within each class (exactly when ``num_videos`` is a multiple of ``C * R``);
    * within each class the videos get a random rank; ordering all videos by (rank, class)
      and cutting at the split counts gives class-stratified splits; ``fold = rank mod 5 + 1``;
    * fakes: ``round(fake_fraction * n_split)`` random videos of each split in ``fake_splits``.
    """
    n, c, r = cfg.num_videos, cfg.num_classes, cfg.num_rhythms
    idx = np.arange(n)
    perm = np.random.default_rng([cfg.seed, *_STREAM_CLASSES]).permutation(n)
    labels = (idx % c)[perm]
    rhythms = ((idx % c + idx // c) % r)[perm]

    keys = np.random.default_rng([cfg.seed, *_STREAM_RANKS]).random(n)
    rank = np.empty(n, dtype=np.int64)
    for k in range(c):
        members = np.flatnonzero(labels == k)
        rank[members[np.argsort(keys[members], kind="stable")]] = np.arange(members.size)
    order = np.lexsort((labels, rank))  # by rank, then class
    counts = _split_counts(n, cfg.split_fractions)
    split = np.empty(n, dtype=object)
    start = 0
    for s in SPLITS:
        split[order[start : start + counts[s]]] = s
        start += counts[s]
    fold = rank % NUM_FOLDS + 1

    fake = np.zeros(n, dtype=bool)
    rng_f = np.random.default_rng([cfg.seed, *_STREAM_FAKES])
    for s in SPLITS:  # fixed order so the rng stream does not depend on fake_splits' order
        members = np.flatnonzero(split == s)
        chosen = rng_f.permutation(members)[: int(round(cfg.fake_fraction * members.size))]
        if s in cfg.fake_splits:
            fake[chosen] = True
    return [
        VideoPlan(int(i), int(labels[i]), int(rhythms[i]), str(split[i]), int(fold[i]), bool(fake[i]))
        for i in range(n)
    ]


def video_scene(cfg: WorldConfig, index: int, plans: list[VideoPlan] | None = None) -> Scene:
    """The latent scene of video ``index`` of the world ``cfg`` (re-sampled, not read from disk).

    Pass ``plans = plan_world(cfg)`` when calling this for many videos.
    """
    if not 0 <= index < cfg.num_videos:
        raise IndexError(f"video index {index} out of range [0, {cfg.num_videos})")
    plan = (plans if plans is not None else plan_world(cfg))[index]
    return sample_scene(cfg, plan.index, plan.label, plan.rhythm)


def _r4(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 4).tolist()


def _generate_one(task: tuple[WorldConfig, VideoPlan, str]) -> dict[str, Any]:
    """Worker: render and write one video (and its fake); return its annotation record."""
    cfg, plan, out_dir = task
    out = Path(out_dir)
    classes = cfg.classes
    scene = sample_scene(cfg, plan.index, plan.label, plan.rhythm)
    frames = render_frames(scene)
    audio = render_audio(scene)
    rel = video_path(plan.index)
    write_mp4(out / rel, frames, cfg.fps, audio.mix, cfg.sample_rate, preset=VIDEO_PRESET)
    annotation = {
        "label": classes[plan.label],
        "sound_label": classes[plan.label],
        "rhythm": cfg.rhythm_classes[plan.rhythm],
        "split": plan.split,
        "fold": plan.fold,
        "fps": cfg.fps,
        "num_frames": cfg.num_frames,
        "duration": float(cfg.duration),
        "source_boxes": _r4(object_boxes(scene, scene.objects[0])),
        "distractors": [
            {
                "label": SHAPES[obj.shape],
                "boxes": _r4(object_boxes(scene, obj)),
                "flashes": _r4(obj.flashes),
            }
            for obj in scene.objects[1:]
        ],
        "events": _r4(scene.events),
    }
    record: dict[str, Any] = {"index": plan.index, "path": rel, "annotation": annotation, "fake": None}
    if plan.fake:
        fake = make_fake(scene, audio, cfg.seed)
        write_mp4(
            out / "fake" / rel, frames, cfg.fps, fake.audio, cfg.sample_rate, preset=VIDEO_PRESET
        )
        record["fake"] = {"manipulation": fake.manipulation, "shift": round(fake.shift, 4)}
    return record


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(columns))
        w.writerows(rows)
    tmp.replace(path)


def _write_json(path: Path, obj: Any, *, indent: int | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, separators=None if indent else (",", ":"))
        f.write("\n")
    tmp.replace(path)


def _summary(out: Path, world: Mapping[str, Any], seconds: float, skipped: bool) -> dict[str, Any]:
    return {
        "out_dir": str(out),
        "manifest": str(out / "manifest.csv"),
        "annotations": str(out / "annotations.json"),
        "fake_manifest": str(out / "fake" / "manifest.csv"),
        "world_json": str(out / "world.json"),
        "config": dict(world["config"]),
        "generator_version": world["generator_version"],
        "counts": world["counts"],
        "num_videos": world["counts"]["videos"],
        "num_fake": world["counts"]["fake_videos"],
        "seconds": round(seconds, 3),
        "skipped": skipped,
    }


def _check_existing(out: Path, cfg: WorldConfig, overwrite: bool) -> dict[str, Any] | None:
    """Return the stored world.json if ``out`` already holds this exact world, else clean up
    (``overwrite=True``) or raise :class:`ConfigError`."""
    world_json = out / "world.json"
    if not world_json.exists():
        if (out / "manifest.csv").exists() and not overwrite:
            raise ConfigError(
                f"{out} already has a manifest.csv but no world.json (not a generated world, or an "
                "interrupted run); choose another out_dir or pass overwrite=True"
            )
        return None
    try:
        stored = json.loads(world_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        stored = None
    same = (
        isinstance(stored, dict)
        and stored.get("format") == WORLD_FORMAT
        and stored.get("generator_version") == GENERATOR_VERSION
        and stored.get("config") == cfg.to_dict()
        and (out / "manifest.csv").exists()
        and (out / "annotations.json").exists()
    )
    if same:
        return stored
    if not overwrite:
        if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
            why = "its world.json is unreadable"
        else:
            new_cfg = cfg.to_dict()
            diff = sorted(k for k in set(new_cfg) | set(stored["config"])
                          if stored["config"].get(k) != new_cfg.get(k))
            why = (
                f"config differs in {diff}"
                if diff
                else f"generator version {stored.get('generator_version')!r} != {GENERATOR_VERSION!r}"
            )
        raise ConfigError(
            f"{out} already holds a different generated world ({why}); pass overwrite=True to "
            "regenerate it or choose another out_dir"
        )
    remove_outputs(out, ("videos", "fake"), ("manifest.csv", "annotations.json", "world.json"))
    return None


def remove_outputs(out: Path, folders: Iterable[str], files: Iterable[str]) -> None:
    """Delete a generated set's ``folders`` and ``files`` inside ``out`` (those that exist)."""
    for sub in folders:
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    for name in files:
        (out / name).unlink(missing_ok=True)


def _run(tasks: list[tuple[WorldConfig, VideoPlan, str]], workers: int) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_generate_one, tasks)
        return
    # spawn: safe when the caller has threads (torch, PyAV) running; needs a __main__ guard.
    ctx = mp.get_context("spawn")
    chunk = max(1, min(8, len(tasks) // (workers * 8)))
    with ctx.Pool(processes=min(workers, len(tasks))) as pool:
        yield from pool.imap_unordered(_generate_one, tasks, chunksize=chunk)


def generate_world(
    cfg: WorldConfig | Mapping[str, Any],
    out_dir: str | Path,
    *,
    workers: int = 2,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generate the audio-visual world described by ``cfg`` under ``out_dir``.

    Writes ``videos/*.mp4``, ``manifest.csv``, ``annotations.json``, ``fake/manifest.csv`` +
    ``fake/videos/*.mp4`` and, last, ``world.json`` (format: ``docs/world_format.md``).

    Args:
        cfg: a :class:`WorldConfig` or a mapping of its fields.
        out_dir: output folder (created if needed).
        workers: worker processes (1 = in-process); output does not depend on it.
        progress: show a tqdm progress bar.
        overwrite: regenerate if ``out_dir`` holds a world with a different config.

    Returns:
        Summary dict: paths, ``config``, ``counts`` (videos, fake_videos, splits, classes,
        rhythms), ``num_videos``, ``num_fake``, ``seconds`` and ``skipped`` (True when an
        identical world was already there and nothing was written).

    Raises:
        ConfigError: bad config or ``workers``, or ``out_dir`` holds a different world and
            ``overwrite`` is False.
    """
    t0 = time.perf_counter()
    if not isinstance(cfg, (WorldConfig, Mapping)):
        raise ConfigError(f"cfg must be a WorldConfig or a mapping; got {type(cfg).__name__}")
    # built and checked from a mapping; an instance made directly is checked here
    cfg = WorldConfig.from_dict(cfg) if isinstance(cfg, Mapping) else check(cfg)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    out = Path(out_dir)
    stored = _check_existing(out, cfg, overwrite)
    if stored is not None:
        return _summary(out, stored, time.perf_counter() - t0, skipped=True)
    out.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    plans = plan_world(cfg)
    tasks = [(cfg, p, str(out)) for p in plans]
    records: list[dict[str, Any] | None] = [None] * len(plans)
    with tqdm(total=len(tasks), desc="generating world", unit="video", disable=not progress) as bar:
        for rec in _run(tasks, workers):
            records[rec["index"]] = rec
            bar.update(1)

    classes = cfg.classes
    rhythms = cfg.rhythm_classes
    _write_csv(
        out / "manifest.csv",
        MANIFEST_COLUMNS,
        (
            [rec["path"], classes[p.label], p.split, classes[p.label], rhythms[p.rhythm], p.fold,
             float(cfg.duration), cfg.fps]
            for p, rec in zip(plans, records)
            if rec is not None
        ),
    )
    fake_rows: list[list[Any]] = []
    for p, rec in zip(plans, records):
        assert rec is not None
        if rec["fake"] is None:
            continue
        original = f"../{rec['path']}"
        fake_rows.append([original, "real", p.split, original, "none", 0.0])
        fake_rows.append(
            [rec["path"], "fake", p.split, original, rec["fake"]["manipulation"], rec["fake"]["shift"]]
        )
    (out / "fake").mkdir(exist_ok=True)
    _write_csv(out / "fake" / "manifest.csv", FAKE_MANIFEST_COLUMNS, fake_rows)
    _write_json(
        out / "annotations.json",
        {
            "format": ANNOTATIONS_FORMAT,
            "classes": classes,
            "rhythm_classes": rhythms,
            "videos": {rec["path"]: rec["annotation"] for rec in records if rec is not None},
        },
    )
    counts = {
        "videos": len(plans),
        "fake_videos": len(fake_rows) // 2,
        "splits": {s: sum(p.split == s for p in plans) for s in SPLITS},
        "classes": {name: sum(p.label == k for p in plans) for k, name in enumerate(classes)},
        "rhythms": {name: sum(p.rhythm == k for p in plans) for k, name in enumerate(rhythms)},
        "fake_splits": {s: sum(p.fake and p.split == s for p in plans) for s in SPLITS},
    }
    world = {
        "format": WORLD_FORMAT,
        "generator_version": GENERATOR_VERSION,
        "config": cfg.to_dict(),
        "classes": classes,
        "rhythm_classes": rhythms,
        "counts": counts,
        "files": {
            "manifest": "manifest.csv",
            "annotations": "annotations.json",
            "fake_manifest": "fake/manifest.csv",
        },
    }
    _write_json(out / "world.json", world, indent=2)
    return _summary(out, world, time.perf_counter() - t0, skipped=False)
