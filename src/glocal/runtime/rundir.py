"""The run folder (``train.out_dir``) before training starts: writable, and never shared by two runs.

:func:`prepare_run_dir` is called once, on rank 0, before the dataset or the model are built:

* the folder is created and a probe file written and removed, so a read-only or full disk is
  one line at the start instead of a traceback after the first epoch;
* a *fresh* start (no ``--resume``) into a folder that already holds a run (checkpoints,
  ``best.pt`` or logs) is refused: ``--resume auto`` continues it, ``--overwrite`` deletes that
  run's files first, or ``train.out_dir`` names a new folder. The old files are left untouched
  by the refusal.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import DataError
from .checkpoint import BEST_NAME, clean_partial_writes, list_checkpoints

__all__ = ["RUN_FILES", "run_files", "check_writable", "prepare_run_dir"]

#: files and folders of a run besides its regular checkpoints
RUN_FILES = (BEST_NAME, "log.csv", "epochs.csv", "skipped.txt", "config.yaml", "tb")


def run_files(out: Path) -> list[Path]:
    """What an earlier run left in ``out`` (checkpoints first); ``config.yaml`` alone is no run."""
    found = list_checkpoints(out) + [out / n for n in RUN_FILES if (out / n).exists()]
    return found if any(p.name != "config.yaml" for p in found) else []


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` and write / remove a probe file there; :class:`DataError` naming ``what`` if not."""
    probe = folder / f".glocal-write-test-{os.getpid()}"
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{what} {folder} is a file, not a folder; pick another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise DataError(f"{what} {folder} is not writable ({exc.strerror or exc}); "
                        "pick another folder or fix its permissions / free space") from None
    finally:
        if probe.is_file():
            probe.unlink()


def prepare_run_dir(out: Path, *, resume: str | None, overwrite: bool) -> list[str]:
    """Check and prepare ``out`` for a run; returns notes to print (removed leftovers / files)."""
    check_writable(out, "train.out_dir")
    notes = [f"removed a partial checkpoint write from an interrupted run: {p.name}" for p in clean_partial_writes(out)]
    if resume:
        if overwrite:
            raise DataError("--overwrite starts a fresh run and --resume continues one; pass only one of them")
        return notes
    old = run_files(out)
    if not old:
        return notes
    if not overwrite:
        shown = ", ".join(p.name for p in old[:4]) + (f" (+{len(old) - 4} more)" if len(old) > 4 else "")
        raise DataError(
            f"train.out_dir {out} already holds another run ({shown}); continue it with --resume auto, "
            "or start over with --overwrite (deletes that run) or a new folder (train.out_dir=DIR)"
        )
    for path in old:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    notes.append(f"--overwrite: deleted the earlier run's {len(old)} files in {out}")
    return notes
