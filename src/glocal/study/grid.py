"""The study's grid: cells (dataset x arm x seed), their folders and resolved pretraining configs.

A cell's folder is ``OUT/cells/<dataset>/<arm>/seed<k>/``; it holds ``config.yaml`` (the resolved
pretraining config the cell trains with), ``pretrain/`` (the run folder: log.csv, checkpoints),
``pretrain.log`` / ``eval.log`` (the subprocesses' output), ``eval.json`` (``glocal eval all``),
``attempts.jsonl`` (CPU and wall time of every subprocess, killed ones included) and, written
last, ``done.json``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import apply_overrides, load_yaml, to_dict
from ..errors import ConfigError
from ..train.config import config_from_dict
from .config import StudyConfig

__all__ = ["Cell", "cell_folder", "expand", "cell_config", "usable_cores", "default_parallel", "estimate_cpu_minutes",
           "describe_plan", "cell_tasks", "sheet_videos"]


@dataclass(frozen=True)
class Cell:
    """One pretraining + evaluation run of the grid."""

    dataset: str
    arm: str
    seed: int

    @property
    def key(self) -> str:
        """``dataset/arm/seed<k>``: the cell's name in logs and in study.json."""
        return f"{self.dataset}/{self.arm}/seed{self.seed}"

    def folder(self, out: str | Path) -> Path:
        return Path(out) / "cells" / self.dataset / self.arm / f"seed{self.seed}"

    @classmethod
    def of(cls, entry: dict[str, Any]) -> "Cell":
        """The cell of a ``study.json`` entry (``dataset``, ``arm``, ``seed``)."""
        return cls(entry["dataset"], entry["arm"], int(entry["seed"]))


def cell_folder(study_dir: Path, entry: dict[str, Any]) -> Path:
    """The folder of a ``study.json`` cell entry: the one inside ``study_dir``, where the runner puts
    it, when it exists (a moved or archived copy reads its own cells, never the original's), else
    the recorded ``dir`` (relative to ``study_dir`` when it is relative)."""
    inside = Cell.of(entry).folder(study_dir)
    if inside.exists():
        return inside
    recorded = Path(entry["dir"])
    return recorded if recorded.is_absolute() else study_dir / recorded


def expand(cfg: StudyConfig, selection: bool = True) -> list[Cell]:
    """Every selected cell (``only_datasets`` / ``only_arms``; ``selection=False``: every cell of
    the grid), seed-major (all arms of seed 0 on every dataset first: early results are paired)."""
    return [Cell(d, a.name, s) for s in cfg.seeds for d in cfg.data for a in cfg.arms
            if not selection or cfg.selected(d, a.name)]


def cell_config(cfg: StudyConfig, cell: Cell, out: str | Path) -> dict[str, Any]:
    """The resolved pretraining config of ``cell`` as a plain dict (every default filled in).

    The arm's base YAML, then the study's ``overrides``, the arm's ``overrides``, and the cell's own
    settings (``data.root``, ``train.seed``, ``train.out_dir``, ``train.num_threads``, no progress
    bars). A bad key raises :class:`ConfigError` naming the arm, the dataset and the base file."""
    arm = cfg.arm(cell.arm)
    base = arm.config_for(cell.dataset)
    own = [f"data.root={cfg.data[cell.dataset]}", f"train.seed={cell.seed}",
           f"train.out_dir={cell.folder(out) / 'pretrain'}", f"train.num_threads={cfg.threads_per_cell}",
           "train.progress=false"]
    try:
        raw = apply_overrides(load_yaml(base), [*cfg.overrides, *arm.overrides, *own])
        return to_dict(config_from_dict(raw))
    except ConfigError as exc:
        raise ConfigError(f"arm '{arm.name}' on dataset '{cell.dataset}' (base {base}): {exc}") from None


def same_config(stored: dict[str, Any], resolved: dict[str, Any]) -> bool:
    """Whether a cell's stored ``config.yaml`` (as loaded) asks for the same run as ``resolved``.

    The stored config is read through the current typed loader first, so a field added to glocal
    since the cell started (absent from the file) takes its default and does not make a finished
    cell look foreign; a key the loader no longer knows, or any value that differs, does."""
    if stored == resolved:
        return True
    try:
        return to_dict(config_from_dict(stored)) == resolved
    except ConfigError:
        return False


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def default_parallel(cfg: StudyConfig) -> int:
    """``parallel`` when the config leaves it out: usable cores // threads per cell (at least 1)."""
    return cfg.parallel or max(1, usable_cores() // cfg.threads_per_cell)


def estimate_cpu_minutes(cfg: StudyConfig, cell: Cell, measured: dict[str, list[tuple[str, float]]] | None = None,
                         ) -> float | None:
    """CPU minutes ``cell`` will probably take: the measured mean of the finished cells of its dataset
    (each divided by its arm's cost), times its arm's cost; else ``budget.estimate_cpu_minutes`` of
    its dataset times the cost; else None (unknown).

    ``measured[dataset]`` = ``[(arm, cpu_minutes), ...]`` of finished cells."""
    cost = cfg.arm(cell.arm).cost_for(cell.dataset)
    done = (measured or {}).get(cell.dataset) or []
    if done:
        same = [m for a, m in done if a == cell.arm]
        if same:
            return sum(same) / len(same)
        return cost * sum(m / cfg.arm(a).cost_for(cell.dataset) for a, m in done) / len(done)
    base = cfg.budget.estimate_cpu_minutes.get(cell.dataset)
    return None if base is None else base * cost


def describe_plan(cfg: StudyConfig, parallel: int) -> str:
    """What ``glocal study --dry-run`` prints: the grid, each dataset's estimated CPU per cell, the
    total in CPU hours and the wall time at ``parallel`` cells at once."""
    cells = expand(cfg)
    datasets = [d for d in cfg.data if any(c.dataset == d for c in cells)]
    arms = [a for a in cfg.arms if any(c.arm == a.name for c in cells)]
    chosen = " (selected by only_datasets / only_arms)" if cfg.only_datasets or cfg.only_arms else ""
    lines = [f"{len(cells)} cells = {len(datasets)} dataset(s) x {len(arms)} arm(s) x {len(cfg.seeds)} seed(s) "
             f"{cfg.seeds}{chosen}; tasks {','.join(cfg.tasks)}; {parallel} cell(s) at once, "
             f"{cfg.threads_per_cell} thread(s) each"]
    total, unknown = 0.0, 0
    for dataset in datasets:
        per = [estimate_cpu_minutes(cfg, c) for c in cells if c.dataset == dataset]
        known = [m for m in per if m is not None]
        unknown += len(per) - len(known)
        total += sum(known)
        est = f"~{sum(known) / 60:.1f} CPU h" if known else "no estimate (budget.estimate_cpu_minutes)"
        extra = f", + tasks {','.join(cfg.dataset_tasks[dataset])}" if cfg.dataset_tasks.get(dataset) else ""
        lines.append(f"  {dataset} ({cfg.data[dataset]}): {len(per)} cells, {est}{extra}")
    for arm in arms:
        lines.append(f"  arm {arm.name}: {arm.overrides or 'the recipe as is'}"
                     + (f" (cost {arm.cost})" if arm.cost != 1 else ""))
    wall = total / max(1, parallel * cfg.threads_per_cell) / 60
    lines.append(f"estimate: {total / 60:.1f} CPU hours in all"
                 + (f" (+{unknown} cells without an estimate)" if unknown else "")
                 + f", about {wall:.1f} h of wall time if each cell keeps its {cfg.threads_per_cell} thread(s) busy")
    b = cfg.budget
    if b.total_cpu_minutes is not None:
        fits = "fits" if total <= b.total_cpu_minutes else "does NOT fit: cells beyond it will not start"
        lines.append(f"budget: total {b.total_cpu_minutes / 60:.1f} CPU hours ({fits})")
    if b.cell_cpu_minutes is not None:
        lines.append(f"budget: at most {b.cell_cpu_minutes:g} CPU min per cell")
    return "\n".join(lines)


#: tasks that read ``Method.local_video_features`` (a hook only some methods implement)
_LOCAL_TASKS = ("temporal", "deepfake")


def cell_tasks(cfg: StudyConfig, resolved: dict[str, Any], dataset: str) -> tuple[list[str], dict[str, str]]:
    """The tasks of ``dataset`` (:meth:`StudyConfig.tasks_for`) the cell's method can run, and
    ``{task: why not}`` for the others (a modality the method does not use: e.g. ``sound`` for a
    video-only method)."""
    from ..eval.suite import missing_modalities
    from ..methods import Method, method_class

    name = str(resolved["method"]["name"])
    cls = method_class(name)
    local = cls.local_video_features is not Method.local_video_features
    tasks = cfg.tasks_for(dataset)
    skipped = {t: why for t in tasks if (why := missing_modalities(t, name, cls.modalities))}
    skipped.update({t: f"task '{t}' reads per-step local video features, which method '{name}' does not produce"
                    for t in _LOCAL_TASKS if t in tasks and t not in skipped and not local})
    return [t for t in tasks if t not in skipped], skipped


def sheet_videos(resolved: dict[str, Any], n: int) -> list[Path]:
    """The first ``n`` test videos (by manifest order) of the cell's dataset: where the contact sheets
    come from, the same for every arm and seed. Empty when the dataset has no manifest or test split."""
    root = Path(resolved["data"]["root"])
    manifest = root if root.is_file() else root / resolved["data"].get("manifest", "manifest.csv")
    if n <= 0 or not manifest.is_file():
        return []
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("split") == "test" and r.get("path")]
    return [(manifest.parent / r["path"]) for r in rows[:n]]
