"""Small file helpers of the study: atomic JSON / text writes and JSON reads that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["write_atomic", "write_json", "read_json"]


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old file or the
    new one, never half of one; a full disk raises :class:`DataError` naming the file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {path} ({exc.strerror or exc}); free space there or pick another "
                        "folder") from None
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    return write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON of ``path``; :class:`DataError` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); delete it to let the study redo that step") from None
