"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values: ``format``, ``method``, ``config``
(plain dict), ``model`` (state dict), ``optimizer``, ``scheduler``, ``epoch`` (completed epochs),
``step``, ``rng``. It is written to a temporary file in the same folder, flushed to disk and
renamed, so a crash during the write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError

__all__ = ["save_checkpoint", "load_checkpoint", "list_checkpoints", "latest_checkpoint", "prune_checkpoints"]

FORMAT = "glocal-ckpt-v1"
_PATTERN = re.compile(r"^ckpt_epoch(\d+)\.pt$")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    state = {"format": FORMAT, **state}
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a glocal checkpoint safely; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"checkpoint {path} is corrupt or incomplete: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path} is not a glocal checkpoint (format {FORMAT} expected)")
    return state


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Epoch checkpoints in ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """Newest checkpoint that loads; corrupt ones are reported and skipped."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            load_checkpoint(path)
        except DataError as exc:
            print(f"[glocal] skipping unusable checkpoint: {exc}")
            continue
        return path
    return None


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` epoch checkpoints."""
    for path in list_checkpoints(run_dir)[:-keep_last]:
        path.unlink(missing_ok=True)
