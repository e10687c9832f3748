"""CSV/TSV manifests: ``path,label[,split][,...]`` with paths relative to the manifest's folder.

Rows are stored column-wise in numpy arrays (no per-row Python objects), so a dataset with a
million rows costs a few arrays, and forked loader workers do not grow their memory by touching
reference counts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError

__all__ = ["Manifest", "read_manifest", "resolve_manifest"]


@dataclass
class Manifest:
    """Column-wise manifest.

    ``paths`` holds absolute file paths; ``labels`` class indices into ``class_names`` (-1 when
    the row has no label); ``columns`` every other column as a string array.
    """

    root: Path
    paths: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) int64
    class_names: list[str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

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
        return name in self.columns

    def select(self, mask: np.ndarray) -> "Manifest":
        """Rows where ``mask`` is True, keeping the class list (so indices stay comparable)."""
        return Manifest(
            root=self.root,
            paths=self.paths[mask],
            labels=self.labels[mask],
            class_names=self.class_names,
            columns={k: v[mask] for k, v in self.columns.items()},
            source=self.source,
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
        """Integer codes of a string column, with the sorted (or given) list of names."""
        values = self.column(column)
        names = sorted(set(values.tolist()) - {""}) if names is None else list(names)
        lookup = {n: i for i, n in enumerate(names)}
        codes = np.array([lookup.get(v, -1) for v in values.tolist()], dtype=np.int64)
        return codes, names


def _sniff_delimiter(path: Path, header: str) -> str:
    if path.suffix.lower() == ".tsv" or ("\t" in header and "," not in header):
        return "\t"
    return ","


def read_manifest(
    path: str | Path, *, class_names: Sequence[str] | None = None, require_label: bool = False
) -> Manifest:
    """Read a CSV/TSV manifest with a header row that includes ``path`` (and usually ``label``).

    Relative paths are resolved against the manifest's folder. ``class_names`` fixes the label
    order (e.g. to share it between splits); otherwise labels are sorted names. Every malformed row
    raises :class:`DataError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: {path}")
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"manifest {path} is empty (it needs a header row with a 'path' column)")
    delim = _sniff_delimiter(path, lines[0])
    reader = csv.reader(lines, delimiter=delim)
    header = [h.strip() for h in next(reader)]
    if "path" not in header:
        raise DataError(f"manifest {path}: header {header} has no 'path' column")
    rows: list[list[str]] = []
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(
                f"manifest {path}, line {lineno}: expected {len(header)} fields {header}, got {len(row)}: {row}"
            )
        if not row[header.index("path")].strip():
            raise DataError(f"manifest {path}, line {lineno}: empty path")
        rows.append([c.strip() for c in row])
    if not rows:
        raise DataError(f"manifest {path} has a header but no rows")
    cols = {name: np.array([r[i] for r in rows]) for i, name in enumerate(header)}
    root = path.parent.resolve()
    paths = np.array([str((root / p).resolve()) if not Path(p).is_absolute() else p for p in cols.pop("path")])
    label_col = cols.pop("label", None)
    if label_col is None:
        if require_label:
            raise DataError(f"manifest {path} has no 'label' column, but this task needs labels")
        labels = np.full(len(rows), -1, dtype=np.int64)
        names = list(class_names or [])
    else:
        names = sorted(set(label_col.tolist()) - {""}) if class_names is None else list(class_names)
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(label_col.tolist()) - set(lookup) - {""})
        if unknown:
            raise DataError(f"manifest {path}: labels {unknown[:5]} are not in the class list {names[:10]}")
        labels = np.array([lookup.get(v, -1) for v in label_col.tolist()], dtype=np.int64)
    return Manifest(root=root, paths=paths, labels=labels, class_names=names, columns=cols, source=str(path))


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
