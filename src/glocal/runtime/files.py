"""Writing output files so that nothing is ever half written, and inlining pictures.

Every output of glocal (checkpoints, results, embeddings, exports, reports, study records) goes
through :func:`atomic_path` / :func:`write_atomic`: the data is written to a temporary file next to
the target, flushed to disk, and renamed onto the target, so a reader (or a rerun after a crash)
sees the previous file or the new one, never a torn one. A full disk or a read-only folder becomes
one :class:`~glocal.errors.DataError` line naming the file and the fix; the temporary file is
removed.
"""

from __future__ import annotations

import base64
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import DataError

__all__ = ["atomic_path", "write_atomic", "png_data_uri"]

DEFAULT_FIX = "free space there or pick another folder"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_path(path: Path, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk; a file system without it is fine."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, what: str = "", fix: str = DEFAULT_FIX,
                errors: tuple[type[BaseException], ...] = (OSError,)) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends cleanly the file there is
    flushed, given the mode of a new file under the umask (some writers, e.g. safetensors, create
    theirs owner-only) and renamed onto ``path``. ``errors`` raised in the block or by the rename
    (default ``OSError``: disk full, quota, read-only) become ``DataError("cannot write WHAT PATH
    (reason); FIX")``; anything else propagates. The temporary file never outlives the block."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync_path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except errors as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).splitlines() or [""])[0]
        label = f"{what} {path}" if what else str(path)
        raise DataError(f"cannot write {label} ({reason or type(exc).__name__}); {fix}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_path(path.parent)  # make the rename itself durable


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, what: str = "", fix: str = DEFAULT_FIX) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_path`; returns ``path``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, what=what, fix=fix) as tmp:
        tmp.write_bytes(raw)
    return Path(path)


def png_data_uri(png: bytes | str | os.PathLike[str]) -> str:
    """``data:image/png;base64,...`` of PNG bytes or a PNG file: a picture a self-contained HTML
    page can hold."""
    raw = png if isinstance(png, bytes) else Path(png).read_bytes()
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")
