"""CSV/TSV manifests: ``path,label[,start,end][,split][,...]`` with paths relative to the manifest's folder.

Rows are stored column-wise in numpy arrays (fixed-width strings, no per-row Python objects), so a
dataset with a million rows costs a few flat buffers, and forked loader workers do not grow their
memory by touching reference counts. :class:`Manifest` coerces whatever it is given (lists,
object arrays) into such arrays.

Every left-out row or file is counted in :class:`LoadReport` (``Manifest.report``) with the first
examples, so nothing is dropped silently. Other dataset layouts (folder per class, UCF101, HMDB51,
Kinetics, unlabeled folders) are read by :func:`glocal.data.formats.load_manifest`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np

from ..errors import DataError

__all__ = [
    "Manifest",
    "LoadReport",
    "BadRowPolicy",
    "read_manifest",
    "resolve_manifest",
    "absolute_paths",
    "encode_values",
    "NUMERIC_COLUMNS",
]

_log = logging.getLogger("glocal.data")

BadRowPolicy = Literal["raise", "skip"]

#: Columns parsed as float64 seconds (NaN where empty): the usable window inside the file.
NUMERIC_COLUMNS = ("start", "end")

# Rows converted to numpy per chunk while reading, bounding the transient Python objects.
_CHUNK_ROWS = 65536
# Examples kept per kind of left-out item.
_MAX_EXAMPLES = 5


@dataclass
class LoadReport:
    """What loading a dataset found: its layout and every row or file that was left out.

    ``format`` is the layout read (``csv``, ``folder``, ``ucf101``, ...), ``detail`` how it was
    chosen (``fmt="auto"`` says what it saw). ``left_out`` counts left-out items per kind (``bad
    row``, ``missing file``, ``deny list``, ...); ``examples`` keeps the first few of each as
    ``"where: why"`` strings. ``notes`` are other things worth telling the user.
    """

    format: str = ""
    detail: str = ""
    source: str = ""
    left_out: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, example: str, count: int = 1) -> None:
        """Count ``count`` left-out items of ``kind``; keep ``example`` among the first few."""
        self.left_out[kind] = self.left_out.get(kind, 0) + count
        ex = self.examples.setdefault(kind, [])
        if len(ex) < _MAX_EXAMPLES:
            ex.append(example)

    def count(self, kind: str) -> int:
        """How many items of ``kind`` were left out (0 when none)."""
        return self.left_out.get(kind, 0)

    @property
    def total_left_out(self) -> int:
        return sum(self.left_out.values())

    def lines(self) -> list[str]:
        """Human-readable summary, one line per fact (layout, each kind left out, notes)."""
        out = []
        if self.format:
            out.append(f"format: {self.format}" + (f" ({self.detail})" if self.detail else ""))
        for kind, n in self.left_out.items():
            ex = "; ".join(self.examples.get(kind, []))
            out.append(f"left out {n} {kind}{'s' if n != 1 else ''}" + (f", e.g. {ex}" if ex else ""))
        out.extend(self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _as_str_array(values: np.ndarray | Sequence[str]) -> np.ndarray:
    """A fixed-width unicode array (never an object array) holding ``values``."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "O" or arr.dtype.kind == "S" or arr.size == 0:
        return np.array([str(v) if not isinstance(v, bytes) else v.decode("utf-8") for v in arr.tolist()], dtype=str)
    return arr.astype(str)


def encode_values(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """int64 index of each value in ``names`` (-1 where absent); vectorised (sorted search)."""
    values = _as_str_array(values)
    if not len(names):
        return np.full(len(values), -1, dtype=np.int64)
    name_arr = np.array(list(names), dtype=str)
    order = np.argsort(name_arr, kind="stable")
    sorted_names = name_arr[order]
    pos = np.clip(np.searchsorted(sorted_names, values), 0, len(names) - 1)
    return np.where(sorted_names[pos] == values, order[pos], -1).astype(np.int64)


def _as_column(values: np.ndarray | Sequence) -> np.ndarray:
    """A compact column: numeric arrays stay numeric, everything else becomes fixed-width unicode."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr
    return _as_str_array(arr)


@dataclass
class Manifest:
    """Column-wise manifest.

    ``paths`` holds absolute file paths (fixed-width unicode array); ``labels`` int64 class
    indices into ``class_names`` (-1 when the row has no label); ``columns`` every other column,
    as fixed-width string arrays except ``start``/``end`` (float64 seconds, NaN when empty).
    ``report`` says how the manifest was read and what was left out.
    """

    root: Path
    paths: np.ndarray  # (N,) <U
    labels: np.ndarray  # (N,) int64
    class_names: list[str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    report: LoadReport = field(default_factory=LoadReport)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.paths = _as_str_array(self.paths)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = list(self.class_names)
        self.columns = {k: _as_column(v) for k, v in self.columns.items()}
        n = self.paths.shape[0]
        for name, col in [("label", self.labels), *self.columns.items()]:
            if col.shape != (n,):
                raise ValueError(f"manifest column '{name}' has shape {col.shape}, expected ({n},)")

    def __len__(self) -> int:
        return int(self.paths.shape[0])

    def column(self, name: str) -> np.ndarray:
        """Return a column by name; a clear error names the manifest and the available columns."""
        if name not in self.columns:
            raise DataError(
                f"{self.source}: the manifest has no '{name}' column "
                f"(columns: {['path', 'label', *self.columns]})"
            )
        return self.columns[name]

    def has_column(self, name: str) -> bool:
        """Whether the manifest has a column ``name`` (besides ``path`` and ``label``)."""
        return name in self.columns

    def select(self, mask: np.ndarray) -> "Manifest":
        """Rows where ``mask`` is True (or at the given indices), keeping the class list."""
        return Manifest(
            root=self.root,
            paths=self.paths[mask],
            labels=self.labels[mask],
            class_names=self.class_names,
            columns={k: v[mask] for k, v in self.columns.items()},
            source=self.source,
            report=self.report,
        )

    def split(self, name: str | Sequence[str] | None) -> "Manifest":
        """Rows of one split (or several); ``None`` keeps all rows. Errors if nothing is left."""
        if name is None:
            return self
        names = [name] if isinstance(name, str) else list(name)
        col = self.column("split")
        out = self.select(np.isin(col, names))
        if len(out) == 0:
            raise DataError(
                f"{self.source}: split {names} is empty (splits present: {sorted(set(col.tolist()))})"
            )
        return out

    def encode(self, column: str, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Integer codes of a string column (-1 for values not in ``names``), with the sorted (or given) names."""
        values = _as_str_array(self.column(column))
        if names is None:
            names = [str(v) for v in np.unique(values).tolist() if v != ""]
        names = list(names)
        return encode_values(values, names), names

    def relative_paths(self) -> np.ndarray:
        """Paths relative to ``root`` where they lie under it, absolute otherwise (posix separators)."""
        prefix = str(self.root).rstrip(os.sep) + os.sep
        inside = np.char.startswith(self.paths, prefix)
        rel = np.where(inside, np.char.replace(self.paths, prefix, "", count=1), self.paths)
        return np.char.replace(rel, os.sep, "/") if os.sep != "/" else rel


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def absolute_paths(root: str | Path, rel: np.ndarray | Sequence[str]) -> np.ndarray:
    """Join ``rel`` paths onto ``root`` (absolute ones are kept) and normalise ``.``/``..``/``//``.

    Vectorised: only the rare paths that need normalising go through :func:`os.path.normpath`.
    """
    rel = _as_str_array(rel)
    if rel.size == 0:
        return rel
    if os.sep != "/":
        rel = np.char.replace(rel, "/", os.sep)
    is_abs = np.char.startswith(rel, os.sep) | (np.char.find(rel, ":") == 1)
    prefix = str(root).rstrip(os.sep) + os.sep
    out = np.where(is_abs, rel, np.char.add(prefix, rel))
    sep = os.sep
    messy = (
        np.char.startswith(rel, "." + sep)
        | np.char.startswith(rel, ".." + sep)
        | (np.char.find(out, sep + "." + sep) >= 0)
        | (np.char.find(out, sep + ".." + sep) >= 0)
        | (np.char.find(out, sep + sep) >= 0)
        | np.char.endswith(out, sep)
    )
    if messy.any():
        out = out.astype(object)
        idx = np.flatnonzero(messy)
        out[idx] = [os.path.normpath(p) for p in out[idx].tolist()]
        out = out.astype(str)
    return out


# --------------------------------------------------------------------------------------------
# CSV / TSV reading
# --------------------------------------------------------------------------------------------


def _sniff_delimiter(path: Path, header: str) -> str:
    if path.suffix.lower() == ".tsv" or ("\t" in header and "," not in header):
        return "\t"
    return ","


def _read_text(path: Path, bad: "_BadRows | None" = None) -> str:
    """File contents as text; bad encoding -> :class:`DataError` naming the line.

    With ``bad`` a line that is not UTF-8 (after the first) is a bad row: it raises or is counted
    by ``bad`` and read as a blank line (line numbers are kept)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        if bad is None or line == 1:
            raise DataError(f"{path}, line {line}: not valid UTF-8 text ({e.reason} at byte {e.start})") from e
    out = []
    for i, raw in enumerate(data.split(b"\n"), start=1):
        try:
            out.append(raw.decode("utf-8-sig" if i == 1 else "utf-8"))
        except UnicodeDecodeError as e:
            bad(i, f"not valid UTF-8 text ({e.reason} at byte {e.start} of the line)")
            out.append("")
    return "\n".join(out)


class _BadRows:
    """Collects bad rows: raises at once under ``raise``, counts them under ``skip``."""

    def __init__(self, source: str, policy: BadRowPolicy, report: LoadReport, hint: str = "") -> None:
        if policy not in ("raise", "skip"):
            raise ValueError(f"on_bad_row must be 'raise' or 'skip', got {policy!r}")
        self.source, self.policy, self.report, self.hint = source, policy, report, hint

    def __call__(self, line: int, reason: str) -> None:
        where = f"{self.source}, line {line}"
        if self.policy == "raise":
            raise DataError(f"{where}: {reason}{self.hint} (on_bad_row='skip' leaves bad rows out and counts them)")
        self.report.add("bad row", f"line {line}: {reason}")


def _chunks(reader: Iterator[list[str]], width: int, bad: _BadRows) -> Iterator[tuple[list[list[str]], list[int]]]:
    """Rows of the right width in chunks, with their line numbers; blank lines are dropped."""
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            bad(reader.line_num, f"expected {width} fields, got {len(row)}: {row[:8]}")
            continue
        rows.append(row)
        lines.append(reader.line_num)
        if len(rows) >= _CHUNK_ROWS:
            yield rows, lines
            rows, lines = [], []
    if rows:
        yield rows, lines


def _parse_seconds(col: np.ndarray, name: str, lines: np.ndarray, bad: _BadRows) -> tuple[np.ndarray, np.ndarray]:
    """Parse a ``start``/``end`` column -> (float64 seconds with NaN for empty, bool ok mask)."""
    filled = np.where(col == "", "nan", col)
    try:
        values = filled.astype(np.float64)
        ok = np.ones(len(col), dtype=bool)
    except ValueError:
        values = np.full(len(col), np.nan)
        ok = np.ones(len(col), dtype=bool)
        for i, text in enumerate(filled.tolist()):
            try:
                values[i] = float(text)
            except ValueError:
                ok[i] = False
                bad(int(lines[i]), f"{name} '{text}' is not a number of seconds")
    negative = ok & ((values < 0) | np.isinf(values))
    for i in np.flatnonzero(negative):
        bad(int(lines[i]), f"{name} {col[i]} must be a finite number of seconds >= 0")
    return values, ok & ~negative


def read_manifest(
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    require_label: bool = False,
    on_bad_row: BadRowPolicy = "raise",
) -> Manifest:
    """Read a CSV/TSV manifest with a header row that includes ``path`` (and usually ``label``).

    Relative paths are resolved against the manifest's folder. ``class_names`` fixes the label
    order (e.g. to share it between splits); otherwise labels are sorted names. Optional
    ``start``/``end`` columns (seconds) restrict the usable window of a file and are parsed to
    float64 (NaN when empty). A malformed row (wrong field count, empty path, unknown label, bad
    or inverted ``start``/``end``) raises :class:`DataError` naming the file and line with
    ``on_bad_row="raise"``; with ``"skip"`` it is left out and counted in ``Manifest.report``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: {path}")
    report = LoadReport(format="csv", source=str(path))
    bad = _BadRows(f"manifest {path}", on_bad_row, report)
    text = _read_text(path, bad)
    first = text.split("\n", 1)[0]
    if not first.strip():
        raise DataError(f"manifest {path} is empty (it needs a header row with a 'path' column)")
    delim = _sniff_delimiter(path, first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header = [h.strip() for h in next(reader)]
    if "path" not in header:
        raise DataError(f"manifest {path}: header {header} has no 'path' column")
    if "" in header or len(set(header)) != len(header):
        raise DataError(f"manifest {path}: header {header} has an empty or repeated column name")

    parts: dict[str, list[np.ndarray]] = {h: [] for h in header}
    line_parts: list[np.ndarray] = []
    for rows, lines in _chunks(reader, len(header), bad):
        for i, name in enumerate(header):
            parts[name].append(np.char.strip(np.array([r[i] for r in rows], dtype=str)))
        line_parts.append(np.array(lines, dtype=np.int64))
    if not line_parts:
        if report.count("bad row"):
            raise DataError(f"manifest {path}: every row is malformed ({report.examples['bad row'][0]})")
        raise DataError(f"manifest {path} has a header but no rows")
    cols = {name: np.concatenate(p) for name, p in parts.items()}
    lines = np.concatenate(line_parts)
    del parts, line_parts

    keep = np.zeros(len(lines), dtype=bool)
    for col in cols.values():
        keep |= col != ""  # rows whose cells are all empty are blank lines
    empty_path = keep & (cols["path"] == "")
    for i in np.flatnonzero(empty_path):
        bad(int(lines[i]), "empty path")
    keep &= ~empty_path

    seconds: dict[str, np.ndarray] = {}
    for name in NUMERIC_COLUMNS:
        if name in cols:
            seconds[name], ok = _parse_seconds(cols[name], name, lines, bad)
            keep &= ok
    if "start" in seconds and "end" in seconds:
        inverted = keep & (seconds["end"] <= seconds["start"])
        for i in np.flatnonzero(inverted):
            bad(int(lines[i]), f"end {cols['end'][i]} s is not after start {cols['start'][i]} s")
        keep &= ~inverted

    label_col = cols.pop("label", None)
    if label_col is None:
        if require_label:
            raise DataError(f"manifest {path} has no 'label' column, but this task needs labels")
        names = list(class_names or [])
        labels = np.full(len(lines), -1, dtype=np.int64)
    else:
        names = (
            [str(v) for v in np.unique(label_col[keep]).tolist() if v != ""]
            if class_names is None
            else list(class_names)
        )
        labels = encode_values(label_col, names)
        unknown = keep & (labels < 0) & (label_col != "")
        for i in np.flatnonzero(unknown):
            bad(int(lines[i]), f"label '{label_col[i]}' is not in the class list {names[:10]}")
        keep &= ~unknown

    if not keep.any():
        raise DataError(f"manifest {path}: no usable rows ({'; '.join(report.lines()) or 'all blank'})")
    _warn_rows(path, cols, label_col, lines, keep, report)
    root = path.parent.resolve()
    paths = absolute_paths(root, cols.pop("path")[keep])
    columns = {k: (seconds[k] if k in seconds else v)[keep] for k, v in cols.items()}
    return Manifest(root=root, paths=paths, labels=labels[keep], class_names=names, columns=columns,
                    source=str(path), report=report)


def _warn_rows(path: Path, cols: dict[str, np.ndarray], label_col: np.ndarray | None, lines: np.ndarray,
               keep: np.ndarray, report: LoadReport) -> None:
    """Warn (``glocal.data`` logger, and ``report.notes``) about duplicate rows and empty labels:
    both are kept, but are usually mistakes."""
    idx = np.flatnonzero(keep)
    notes = []
    if label_col is not None:
        empty = idx[label_col[idx] == ""]
        if len(empty):
            notes.append(f"manifest {path}: {len(empty)} row(s) have an empty label (e.g. line {int(lines[empty[0]])}); "
                         "they are kept as unlabelled (label -1)")
    fields = list(cols.values()) + ([label_col] if label_col is not None else [])
    table = np.stack([c[idx] for c in fields], axis=1)
    dup = len(idx) - len(np.unique(table, axis=0))
    if dup:
        seen: dict[tuple[str, ...], int] = {}
        example = ""
        for i in idx.tolist():
            key = tuple(str(c[i]) for c in fields)
            if key in seen:
                example = f"line {int(lines[i])} repeats line {seen[key]}"
                break
            seen[key] = int(lines[i])
        notes.append(f"manifest {path}: {dup} duplicate row(s) ({example}); they are kept, so those clips are "
                     "sampled more often")
    for note in notes:
        report.notes.append(note)
        _log.warning("%s", note)


def resolve_manifest(root: str | Path, manifest: str = "manifest.csv") -> Path:
    """Find the manifest for a dataset given either a folder or a manifest file path."""
    root = Path(root)
    if root.is_file():
        return root
    if not root.exists():
        raise DataError(
            f"data folder not found: {root} (generate the built-in world with `glocal synth --out {root}`)"
        )
    candidate = root / manifest
    if not candidate.is_file():
        raise DataError(f"no manifest '{manifest}' in {root} (expected a CSV with columns path,label,...)")
    return candidate
