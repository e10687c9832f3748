"""Run logs: CSV files (always) and TensorBoard events (optional), written by rank 0 only.

* ``log.csv`` — one row every ``train.log_every`` optimizer steps: ``epoch, step, lr``, every loss
  term (mean over ranks), ``grad_norm``, ``clips_per_s`` (all ranks), ``step_time_s``,
  ``skipped_steps``;
* ``epochs.csv`` — one row per epoch: epoch means of the loss terms, ``knn_top1`` when the
  online monitor ran, epoch time and throughput;
* both also carry the online diagnostics (``<term>/chance``, ``<term>/below_chance``; per epoch
  ``<term>/align``, ``<term>/uniform``, ``<name>/entropy``, ``probe_train_top1``,
  ``probe_val_top1``): ``docs/diagnostics.md``.

A resumed run first drops the rows written after its checkpoint (:meth:`CSVLog.truncate`), so the
files always describe one consistent trajectory.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GlocalError

__all__ = ["CSVLog", "TensorBoardLog", "check_tensorboard", "open_tensorboard"]


def _write_failed(path: Path, exc: OSError) -> GlocalError:
    """The one-line error for a log that cannot be written (disk full, quota, ...)."""
    return GlocalError(f"cannot write {path} ({exc.strerror or exc}); its earlier rows and the run's "
                       "checkpoints are intact: free space there and continue with --resume auto")


class CSVLog:
    """Append-only CSV of scalars; a new column rewrites the file with the wider header."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as fh:
                header = next(csv.reader(fh), None)
            self.fields = header or None

    def rows(self) -> list[dict[str, str]]:
        """Every row as a dict of strings."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))

    def _rewrite(self, fields: list[str], rows: list[dict[str, Any]]) -> None:
        """Write the whole file to a temporary name, then rename (a failure leaves the old file)."""
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(fields)
                for row in rows:
                    writer.writerow([row.get(f, "") for f in fields])
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _write_failed(self.path, exc) from None
        self.fields = fields

    def write(self, row: dict[str, Any]) -> None:
        """Append ``row``; unknown keys widen the header (earlier rows get empty cells)."""
        if self.fields is None:
            self._rewrite(list(row), [])
        else:
            new = [k for k in row if k not in self.fields]
            if new:
                self._rewrite(self.fields + new, self.rows())
        assert self.fields is not None
        line = io.StringIO()
        csv.writer(line).writerow([row.get(f, "") for f in self.fields])
        size = self.path.stat().st_size
        try:
            with open(self.path, "a", newline="") as fh:
                fh.write(line.getvalue())
        except OSError as exc:  # e.g. disk full: cut a partly written row off again
            try:
                os.truncate(self.path, size)
            except OSError:
                pass  # a torn last row is dropped by truncate() on resume
            raise _write_failed(self.path, exc) from None

    def truncate(self, column: str, max_value: float) -> int:
        """Keep only well-formed rows whose ``column`` is at most ``max_value``; returns how many
        rows were dropped (a row cut short by a kill during the write counts as malformed)."""
        if self.fields is None or column not in self.fields:
            return 0
        rows = self.rows()
        keep = [r for r in rows if None not in r and None not in r.values() and _le(r.get(column), max_value)]
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            torn = fh.tell() > 0 and (fh.seek(-1, os.SEEK_END) or fh.read(1)) != b"\n"
        if len(keep) != len(rows) or torn:
            self._rewrite(self.fields, keep)
        return len(rows) - len(keep)


def _le(cell: str | None, max_value: float) -> bool:
    try:
        return cell is not None and float(cell) <= max_value
    except ValueError:
        return False


class TensorBoardLog:
    """Scalars to TensorBoard (``out_dir/tb``)."""

    def __init__(self, log_dir: Path, writer: Any) -> None:
        self.log_dir = log_dir
        self.writer = writer

    def write(self, row: dict[str, Any], step: int, prefix: str = "train/") -> None:
        for key, value in row.items():
            if key in ("epoch", "step") or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(prefix + key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def check_tensorboard() -> Any:
    """``SummaryWriter``, or a clear error when ``torch.utils.tensorboard`` cannot import."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            f"train.tensorboard=true needs the 'tensorboard' package ({exc}); install it with "
            "`pip install tensorboard` or set train.tensorboard=false (log.csv is always written)"
        ) from None
    return SummaryWriter


def open_tensorboard(out_dir: Path, purge_step: int | None = None) -> TensorBoardLog:
    """A :class:`TensorBoardLog` in ``out_dir/tb``. ``purge_step``: events at this step and later,
    written by an earlier try of a resumed run, are dropped (like :meth:`CSVLog.truncate`)."""
    writer_cls = check_tensorboard()
    log_dir = out_dir / "tb"
    return TensorBoardLog(log_dir, writer_cls(log_dir=str(log_dir), purge_step=purge_step))
