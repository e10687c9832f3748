"""Deny lists: files a dataset must not use (written by ``glocal scan``, honoured by ``load_manifest``).

Format: UTF-8 text, one path per line, relative to the dataset root (the folder that holds the
manifest, or the layout's root folder) or absolute, optionally followed by whitespace and a
``# reason`` comment. Blank lines and lines starting with ``#`` are ignored::

    # glocal scan data/ucf101 -- 2 files denied
    ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi  # undecodable: moov atom not found
    Archery/v_Archery_g02_c03.avi  # empty: 0 bytes

A path that itself contains whitespace followed by ``#`` cannot be written in this format.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError
from .manifest import Manifest, absolute_paths

__all__ = ["DenyEntry", "read_deny_list", "write_deny_list", "apply_deny_list"]

_COMMENT = re.compile(r"\s+#")

#: ``(path, reason)``; the path as written in the file (relative or absolute).
DenyEntry = tuple[str, str]


def read_deny_list(path: str | os.PathLike[str]) -> list[DenyEntry]:
    """Parse a deny-list file -> ``[(path, reason), ...]`` in file order."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"deny list not found: {p} (write one with `glocal scan DATA --out {p}`)")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"deny list {p}: not valid UTF-8 text ({e.reason} at byte {e.start})") from e
    entries: list[DenyEntry] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _COMMENT.search(stripped)
        if m is None:
            entries.append((stripped, ""))
        else:
            entries.append((stripped[: m.start()], stripped[m.end():].strip()))
    return entries


def write_deny_list(
    path: str | os.PathLike[str], entries: Iterable[DenyEntry], header: str = "", footer: str = ""
) -> Path:
    """Write ``(path, reason)`` entries (one per line, ``path  # reason``); returns the file path.

    ``header`` lines are written first and ``footer`` lines last, as ``#`` comments (ignored when
    the list is read). The file is replaced atomically.
    """
    p = Path(path)
    lines = [f"# {h}" if h else "#" for h in header.splitlines()]
    for rel, reason in entries:
        if "\n" in rel or "\r" in rel:
            raise DataError(f"cannot write a path with a line break into a deny list: {rel!r}")
        reason = " ".join(reason.split())
        lines.append(f"{rel}  # {reason}" if reason else rel)
    lines += [f"# {f}" if f else "#" for f in footer.splitlines()]
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def apply_deny_list(
    manifest: Manifest, deny_list: str | os.PathLike[str] | Sequence[str] | Sequence[DenyEntry]
) -> Manifest:
    """Remove the rows whose file is on ``deny_list`` (a deny-list file, or a list of paths).

    Relative entries are resolved against ``manifest.root``. Removed rows are counted in
    ``manifest.report`` (kind ``denied file``) with their reasons; entries that match no row are
    counted as a note (they usually mean the list was written for another dataset root).
    """
    if isinstance(deny_list, (str, os.PathLike)):
        entries = read_deny_list(deny_list)
        source = str(deny_list)
    else:
        entries = [(e, "") if isinstance(e, str) else (str(e[0]), str(e[1])) for e in deny_list]
        source = "deny list"
    if not entries:
        return manifest
    denied = absolute_paths(manifest.root, [e[0] for e in entries])
    written = dict(zip(denied.tolist(), entries))
    hit = np.isin(manifest.paths, denied)
    out = manifest.select(~hit)
    report = replace(manifest.report, left_out=dict(manifest.report.left_out),
                     examples={k: list(v) for k, v in manifest.report.examples.items()},
                     notes=list(manifest.report.notes))
    for p in manifest.paths[hit].tolist():
        rel, reason = written.get(p, (p, ""))
        report.add("denied file", rel + (f" ({reason})" if reason else ""))
    unused = len(set(denied.tolist()) - set(manifest.paths[hit].tolist()))
    if unused:
        report.notes.append(
            f"{unused} of {len(entries)} entries of {source} match no row (was it written for root {manifest.root}?)"
        )
    out.report = report
    if len(out) == 0:
        raise DataError(f"{manifest.source}: every row is on {source}; nothing left to load")
    return out
