"""``glocal report STUDY_DIR --archive DIR``: a checkpoint-free copy of a study that still reports.

A study folder is mostly checkpoints (a GLCM cell keeps ~10-40 MB of them); what the report reads is
small: ``study.json``, and per cell its ``config.yaml``, ``done.json``, ``eval.json``, the logs, the
training log ``pretrain/log.csv`` and the contact sheets. The archive copies those (every regular
file but checkpoints, run locks and files over ``max_file_mb``) and writes ``study.json`` with each
cell's folder relative to the copy, so the copy can be committed beside the findings it backs,
shared, and reported again with ``glocal report DIR`` on a machine that never ran the study.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import ConfigError, DataError
from ..runtime.rundir import check_writable
from .files import read_json, write_json
from .grid import Cell, cell_folder

__all__ = ["SKIPPED_SUFFIXES", "archive_study"]

#: never archived: checkpoints (``.pt``), a running cell's lock (``.pid``), half-written files (``.tmp``)
SKIPPED_SUFFIXES = (".pt", ".pth", ".pid", ".tmp")


def archive_study(study_dir: str | Path, dest: str | Path, max_file_mb: float = 5.0) -> dict[str, int]:
    """Copy ``study_dir``'s record (not its checkpoints) into ``dest``; returns counts
    ``{"cells": n, "files": n, "bytes": n, "skipped": n}`` (skipped: checkpoints, locks, large files).

    ``dest`` must not be ``study_dir`` or inside it, and must be empty or absent (an archive never
    merges into an older one: a stale ``eval.json`` would be reported as a result).
    """
    study_dir, dest = Path(study_dir).resolve(), Path(dest).resolve()
    if not (study_dir / "study.json").is_file():
        raise DataError(f"{study_dir} has no study.json; pass the --out folder of a `glocal study` run")
    study = read_json(study_dir / "study.json")
    if dest == study_dir or study_dir in dest.parents:
        raise ConfigError(f"--archive {dest} is inside the study folder {study_dir}; archive to a folder outside it")
    if dest.exists() and any(dest.iterdir()):
        raise ConfigError(f"--archive {dest} is not empty; pass a new folder (an archive never merges into an old one)")
    check_writable(dest, "the archive folder --archive")
    limit = int(max_file_mb * 1024 * 1024)
    counts = {"cells": 0, "files": 0, "bytes": 0, "skipped": 0}
    cells = []
    for cell in study["cells"]:
        rel = Cell.of(cell).folder("")  # cells/<dataset>/<arm>/seed<k>, relative to the copy
        src = cell_folder(study_dir, cell)
        cells.append({**cell, "dir": rel.as_posix()})
        if not src.is_dir():
            continue
        counts["cells"] += 1
        for path in sorted(src.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue  # sheet_inputs/ holds links to the dataset's videos
            size = path.stat().st_size
            if path.suffix in SKIPPED_SUFFIXES or size > limit:
                counts["skipped"] += 1
                continue
            target = dest / rel / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            counts["files"] += 1
            counts["bytes"] += size
    write_json(dest / "study.json", {**study, "cells": cells, "archived_from": str(study_dir)})
    return counts
