"""Small file helpers of the study: atomic JSON / text writes, JSON reads that name the file, and
where a cell's files are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..runtime.files import write_atomic

__all__ = ["cell_folder", "write_atomic", "write_json", "read_json"]


def write_json(path: str | Path, obj: Any) -> Path:
    return write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON of ``path``; :class:`DataError` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); delete it to let the study redo that step") from None


def cell_folder(study_dir: Path, cell: dict[str, Any]) -> Path:
    """The folder of ``cell`` (a ``study.json`` entry): the one inside ``study_dir``, where the runner
    puts it, when it exists (a moved or archived copy reads its own cells, never the original's),
    else the recorded ``dir`` (relative to ``study_dir`` when it is relative)."""
    inside = study_dir / "cells" / cell["dataset"] / cell["arm"] / f"seed{cell['seed']}"
    if inside.exists():
        return inside
    recorded = Path(cell["dir"])
    return recorded if recorded.is_absolute() else study_dir / recorded
