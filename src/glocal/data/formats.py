"""Dataset layouts -> one :class:`~glocal.data.manifest.Manifest`.

:func:`load_manifest` reads every layout glocal supports (see ``docs/data_formats.md``):

- ``csv``: a CSV/TSV manifest ``path,label[,start,end][,split]`` (paths relative to its folder);
- ``folder``: one folder per class, ``root/<class>/<video>``, optionally under ``train/``,
  ``val/``, ``test/`` folders (without them every row is split ``train``);
- ``ucf101``: UCF101's official split files (``classInd.txt``, ``trainlistNN.txt``,
  ``testlistNN.txt``) beside the ``<class>/<video>.avi`` tree;
- ``hmdb51``: HMDB51's ``<class>_test_split<k>.txt`` files (``video.avi 0|1|2``: 1 = train,
  2 = test, 0 = unused in that fold, kept as split ``unused``);
- ``kinetics``: Kinetics CSVs ``label,youtube_id,time_start,time_end,split`` with videos named
  ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` anywhere under the root (``<split>/<label>/`` or
  flat); files that are not there are counted and reported, not fatal;
- ``unlabeled``: every video file under a folder, recursively (label -1, split ``train``).

``fmt="auto"`` detects the layout and records what it saw in ``manifest.report`` (also logged on
the ``glocal.data`` logger). Rows are sorted deterministically; everything left out (bad rows,
missing files, deny-listed files, stray files) is counted in ``manifest.report``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np

from ..errors import DataError
from .denylist import apply_deny_list
from .manifest import BadRowPolicy, LoadReport, Manifest, _BadRows, _read_text, absolute_paths, read_manifest

__all__ = [
    "FORMATS",
    "VIDEO_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "Format",
    "detect_format",
    "load_manifest",
    "list_media",
]

log = logging.getLogger("glocal.data")

Format = Literal["auto", "csv", "folder", "ucf101", "hmdb51", "kinetics", "unlabeled"]
#: Layouts :func:`load_manifest` reads (besides ``"auto"``).
FORMATS = ("csv", "folder", "ucf101", "hmdb51", "kinetics", "unlabeled")

#: File extensions the folder layouts treat as videos (lower case).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts",
     ".mts", ".ogv", ".vob"}
)
#: Audio file extensions (pass ``extensions=AUDIO_EXTENSIONS`` for a folder of sounds).
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".wma"})

#: Folder names that mean a split in the ``folder`` layout, and the split they map to.
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_SPLIT_ALIASES = {"validate": "val", "validation": "val", "valid": "val"}
_MANIFEST_SUFFIXES = (".csv", ".tsv")
_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<fold>\d+)\.txt$")
_UCF_SPLIT_DIRS = ("ucfTrainTestlist", "splits", "annotations")
_UCF_VIDEO_DIRS = ("UCF-101", "UCF101", "videos")
_HMDB_SPLIT_DIRS = ("testTrainMulti_7030_splits", "splits", "annotations")
_HMDB_VIDEO_DIRS = ("hmdb51_org", "hmdb51", "videos")


# --------------------------------------------------------------------------------------------
# File listing
# --------------------------------------------------------------------------------------------


def list_media(base: Path, extensions: Iterable[str] = VIDEO_EXTENSIONS) -> list[str]:
    """Paths (relative to ``base``, posix separators, sorted) of media files under ``base``.

    Recursive; follows symbolic links (each real folder once, so link loops end); skips hidden
    files and folders (names starting with ``.``, e.g. half-written temporaries).
    """
    exts = {e.lower() for e in extensions}
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, base)
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in exts:
                continue
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            found.append(rel.replace(os.sep, "/"))
    found.sort()
    return found


def _has_media(base: Path, exts: frozenset[str]) -> bool:
    """Whether any media file lies under ``base`` (stops at the first one)."""
    for _, dirnames, filenames in os.walk(base, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(not f.startswith(".") and os.path.splitext(f)[1].lower() in exts for f in filenames):
            return True
    return False


def _subdirs(base: Path) -> list[Path]:
    """Non-hidden sub-folders of ``base``, sorted by name."""
    try:
        return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise DataError(f"cannot list {base}: {e.strerror or e}") from e


def _top_media(base: Path, exts: frozenset[str]) -> list[Path]:
    """Media files directly inside ``base``."""
    return sorted(p for p in base.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)


def _csv_header(path: Path) -> list[str]:
    """The header row of a CSV/TSV file (lower-cased, stripped); [] when unreadable."""
    try:
        with open(path, "rb") as f:
            first = f.readline(65536).decode("utf-8-sig", errors="replace").rstrip("\r\n")
    except OSError:
        return []
    delim = "\t" if path.suffix.lower() == ".tsv" or ("\t" in first and "," not in first) else ","
    return [h.strip().lower() for h in next(csv.reader([first], delimiter=delim), [])]


def _is_kinetics_csv(path: Path) -> bool:
    return "youtube_id" in _csv_header(path)


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _search_dirs(root: Path, split_file: str | Path | None, preferred: Sequence[str]) -> list[Path]:
    """Where split files may live: ``split_file`` (a folder, or a file's folder), root, sub-folders."""
    dirs: list[Path] = []
    if split_file is not None:
        sf = Path(split_file)
        dirs.append(sf if sf.is_dir() else sf.parent)
    if root.is_dir():
        dirs.append(root)
        dirs.extend(root / name for name in preferred if (root / name).is_dir())
        dirs.extend(_subdirs(root))
    return dirs


def _find_ucf_dir(root: Path, split_file: str | Path | None) -> Path | None:
    for d in _search_dirs(root, split_file, _UCF_SPLIT_DIRS):
        if (d / "classInd.txt").is_file():
            return d
    return None


def _find_hmdb_dir(root: Path, split_file: str | Path | None) -> Path | None:
    for d in _search_dirs(root, split_file, _HMDB_SPLIT_DIRS):
        try:
            if any(_HMDB_SPLIT.match(p.name) for p in d.iterdir()):
                return d
        except OSError:
            continue
    return None


def _kinetics_csvs(root: Path, manifest: str) -> list[Path]:
    """Kinetics annotation CSVs for ``root`` (a CSV file, or a folder holding them)."""
    if root.is_file():
        return [root] if _is_kinetics_csv(root) else []
    if (root / manifest).is_file():
        return [root / manifest] if _is_kinetics_csv(root / manifest) else []
    found = []
    for d in [root, *(p for p in _subdirs(root) if p.name.lower() in ("annotations", "annotation", "splits"))]:
        found.extend(p for p in sorted(d.iterdir())
                     if p.is_file() and p.suffix.lower() in _MANIFEST_SUFFIXES and _is_kinetics_csv(p))
    return found


def detect_format(
    root: str | Path,
    *,
    manifest: str = "manifest.csv",
    split_file: str | Path | None = None,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
) -> tuple[str, str]:
    """Guess the layout of ``root`` -> ``(format, what was seen)``.

    Checked in this order: a manifest file (``root`` itself or ``root/<manifest>``; a
    ``youtube_id`` column means Kinetics), UCF101 ``classInd.txt``, HMDB51
    ``*_test_split<k>.txt``, Kinetics CSVs, a single other CSV/TSV with a ``path`` column, then
    the media files: any directly in ``root`` -> ``unlabeled``; only inside sub-folders ->
    ``folder`` (class folders, optionally under ``train/``, ``val/``, ``test/``).
    """
    root = Path(root)
    exts = frozenset(e.lower() for e in extensions)
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    candidates = [root] if root.is_file() else ([root / manifest] if (root / manifest).is_file() else [])
    for path in candidates:
        if path.stat().st_size == 0:
            raise DataError(f"manifest {path} is empty (0 bytes); it needs a header row with a 'path' column "
                            "(path,label[,start,end][,split]; see docs/data_formats.md)")
        header = _csv_header(path)
        if "youtube_id" in header:
            return "kinetics", f"{path.name} has a youtube_id column"
        if "path" in header:
            return "csv", f"{path.name} has a path column"
        # never fall back to the folder layout silently: the manifest's labels / splits would be lost
        raise DataError(
            f"{path}: a manifest needs a header row with a 'path' column (or Kinetics' youtube_id); "
            f"got {header[:8]}"
        )
    if split_file is not None or root.is_dir():
        ucf = _find_ucf_dir(root, split_file)
        if ucf is not None:
            return "ucf101", f"found {ucf / 'classInd.txt'}"
        hmdb = _find_hmdb_dir(root, split_file)
        if hmdb is not None:
            return "hmdb51", f"found *_test_split<k>.txt files in {hmdb}"
    kinetics = _kinetics_csvs(root, manifest)
    if kinetics:
        return "kinetics", f"found Kinetics CSV {', '.join(p.name for p in kinetics)}"
    others = [p for p in sorted(root.iterdir())
              if p.is_file() and p.suffix.lower() in _MANIFEST_SUFFIXES and "path" in _csv_header(p)]
    if len(others) > 1:
        raise DataError(
            f"{root} holds several manifests {[p.name for p in others]}; pick one with manifest=NAME "
            f"(data.manifest) or pass the file itself"
        )
    if others:
        return "csv", f"{others[0].name} has a path column"
    if _top_media(root, exts):
        return "unlabeled", "media files directly in the root folder"
    dirs = [d for d in _subdirs(root) if _has_media(d, exts)]
    if dirs:
        split_dirs = [d.name for d in dirs if d.name.lower() in SPLIT_DIRS]
        if split_dirs:
            return "folder", f"split folders {split_dirs} holding class folders"
        return "folder", f"{len(dirs)} class folders"
    raise DataError(
        f"{root}: no dataset found (no {manifest}, split files, Kinetics CSV or media files "
        f"{sorted(exts)[:6]}...); see docs/data_formats.md for the supported layouts"
    )


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def _build(
    root: Path,
    rel_paths: list[str],
    labels: Sequence[int] | np.ndarray,
    class_names: list[str],
    splits: Sequence[str] | np.ndarray,
    source: str,
    report: LoadReport,
    extra: dict[str, Sequence] | None = None,
) -> Manifest:
    """Assemble a Manifest from per-row lists (converted to compact numpy columns here)."""
    if not rel_paths:
        lines = "; ".join(report.lines())
        raise DataError(f"{source}: no videos found" + (f" ({lines})" if lines else ""))
    columns = {"split": np.array(splits, dtype=str)}
    for k, v in (extra or {}).items():
        columns[k] = np.asarray(v)
    return Manifest(
        root=root,
        paths=absolute_paths(root, np.array(rel_paths, dtype=str)),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=class_names,
        columns=columns,
        source=source,
        report=report,
    )


def _class_lookup(found: Iterable[str], class_names: Sequence[str] | None) -> list[str]:
    """The class list: ``class_names`` when given, else the sorted names found."""
    return list(class_names) if class_names is not None else sorted(set(found))


def _load_folder(root: Path, *, class_names: Sequence[str] | None, extensions: frozenset[str],
                 report: LoadReport, **_: object) -> Manifest:
    """``root/[<split>/]<class>/**/<video>``."""
    split_dirs = [d for d in _subdirs(root) if d.name.lower() in SPLIT_DIRS and _has_media(d, extensions)]
    groups = [(SPLIT_DIRS[d.name.lower()], d) for d in split_dirs] if split_dirs else [("train", root)]
    entries: list[tuple[str, str, str]] = []  # (class, relative path, split)
    for split, base in groups:
        stray = _top_media(base, extensions)
        for p in stray:
            report.add("file outside a class folder", str(p.relative_to(root)))
        for cls_dir in _subdirs(base):
            if cls_dir in split_dirs:
                continue
            prefix = cls_dir.relative_to(root).as_posix()
            entries.extend((cls_dir.name, f"{prefix}/{rel}", split) for rel in list_media(cls_dir, extensions))
    if split_dirs:
        others = [d.name for d in _subdirs(root) if d not in split_dirs and _has_media(d, extensions)]
        if others:
            report.notes.append(f"folders {others[:5]} beside the split folders were ignored")
    names = _class_lookup((e[0] for e in entries), class_names)
    lookup = {n: i for i, n in enumerate(names)}
    unknown = [e for e in entries if e[0] not in lookup]
    for cls, rel, _ in unknown:
        report.add("file of an unknown class", f"{rel} (class '{cls}' not in class_names)")
    entries = [e for e in entries if e[0] in lookup]
    return _build(root, [e[1] for e in entries], [lookup[e[0]] for e in entries], names,
                  [e[2] for e in entries], str(root), report)


def _load_unlabeled(root: Path, *, extensions: frozenset[str], report: LoadReport, **_: object) -> Manifest:
    """Every media file under ``root``; label -1, split ``train``."""
    rel = list_media(root, extensions)
    return _build(root, rel, np.full(len(rel), -1), [], ["train"] * len(rel), str(root), report)


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank stripped lines of a text file with their 1-based numbers."""
    return [(i, s.strip()) for i, s in enumerate(_read_text(path).splitlines(), start=1) if s.strip()]


def _pick_base(root: Path, preferred: Sequence[str], rel_paths: Sequence[str]) -> Path:
    """The folder under which most of (the first 50 of) ``rel_paths`` exist: a preferred
    sub-folder of ``root`` or ``root`` itself (ties -> the first)."""
    bases = [root / p for p in preferred if (root / p).is_dir()] + [root]
    sample = list(rel_paths[:50])
    scores = [sum((b / r).is_file() for r in sample) for b in bases]
    return bases[int(np.argmax(scores))] if scores else root


def _keep_existing(base: Path, rows: list[tuple], report: LoadReport) -> list[tuple]:
    """Rows (relative path first) whose file exists under ``base``; the others are counted."""
    kept = []
    for row in rows:
        if (base / row[0]).is_file():
            kept.append(row)
        else:
            report.add("missing file", str(base / row[0]))
    return kept


def _load_ucf101(root: Path, *, split_file: str | Path | None, fold: int, class_names: Sequence[str] | None,
                 on_bad_row: BadRowPolicy, report: LoadReport, **_: object) -> Manifest:
    """UCF101 official splits: ``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlistNN.txt``
    (``Class/v_Class_g08_c01.avi 1``), ``testlistNN.txt`` (``Class/v_Class_g01_c01.avi``)."""
    list_dir = _find_ucf_dir(root, split_file)
    if list_dir is None:
        raise DataError(f"{root}: no UCF101 classInd.txt (looked in {root}, {root}/ucfTrainTestlist, split_file)")
    ind = list_dir / "classInd.txt"
    bad = _BadRows(str(ind), on_bad_row, report)
    by_index: dict[int, str] = {}
    for lineno, line in _lines(ind):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            bad(lineno, f"expected '<index> <class>', got {line!r}")
            continue
        by_index[int(parts[0])] = parts[1]
    if not by_index:
        raise DataError(f"{ind}: no classes")
    official = [by_index[k] for k in sorted(by_index)]
    names = list(class_names) if class_names is not None else official
    lookup = {n: i for i, n in enumerate(names)}
    rows: list[tuple[str, int, str]] = []
    for split, stem in (("train", "trainlist"), ("test", "testlist")):
        path = list_dir / f"{stem}{fold:02d}.txt"
        if not path.is_file():
            raise DataError(f"UCF101 split file not found: {path} (fold={fold}; folds 1-3 exist)")
        bad = _BadRows(str(path), on_bad_row, report)
        for lineno, line in _lines(path):
            parts = line.replace("\\", "/").split()
            if len(parts) not in (1, 2):
                bad(lineno, f"expected '<class>/<video> [<label>]', got {line!r}")
                continue
            rel = parts[0]
            folder = rel.split("/", 1)[0] if "/" in rel else ""
            if len(parts) == 2:
                if not parts[1].isdigit() or int(parts[1]) not in by_index:
                    bad(lineno, f"label {parts[1]!r} is not an index of {ind.name} (1..{len(by_index)})")
                    continue
                cls = by_index[int(parts[1])]
                if folder and folder.lower() != cls.lower():
                    bad(lineno, f"label {parts[1]} ({cls}) disagrees with the folder '{folder}'")
                    continue
            else:
                match = [c for c in official if c.lower() == folder.lower()]
                if not match:
                    bad(lineno, f"folder '{folder}' of {rel!r} is not a class of {ind.name}")
                    continue
                cls = match[0]
            if cls not in lookup:
                bad(lineno, f"class '{cls}' is not in class_names")
                continue
            rows.append((rel, lookup[cls], split))
    base = _pick_base(root, _UCF_VIDEO_DIRS, [r[0] for r in rows])
    rows = _keep_existing(base, rows, report)
    report.notes.append(f"UCF101 fold {fold}, videos under {base}")
    return _build(base, [r[0] for r in rows], [r[1] for r in rows], names, [r[2] for r in rows],
                  str(list_dir), report)


def _load_hmdb51(root: Path, *, split_file: str | Path | None, fold: int, class_names: Sequence[str] | None,
                 on_bad_row: BadRowPolicy, report: LoadReport, **_: object) -> Manifest:
    """HMDB51 splits: ``<class>_test_split<k>.txt`` with lines ``video.avi 0|1|2``."""
    split_dir = _find_hmdb_dir(root, split_file)
    if split_dir is None:
        raise DataError(f"{root}: no HMDB51 *_test_split<k>.txt files (looked in {root}, its sub-folders, split_file)")
    files = {}
    for p in sorted(split_dir.iterdir()):
        m = _HMDB_SPLIT.match(p.name)
        if m and int(m.group("fold")) == fold:
            files[m.group("cls")] = p
    if not files:
        raise DataError(f"{split_dir}: no *_test_split{fold}.txt files (fold={fold}; folds 1-3 exist)")
    names = _class_lookup(files, class_names)
    lookup = {n: i for i, n in enumerate(names)}
    code = {"0": "unused", "1": "train", "2": "test"}
    rows: list[tuple[str, int, str]] = []
    for cls, path in files.items():
        if cls not in lookup:
            report.add("split file of an unknown class", f"{path.name} (class '{cls}' not in class_names)")
            continue
        bad = _BadRows(str(path), on_bad_row, report)
        for lineno, line in _lines(path):
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in code:
                bad(lineno, f"expected '<video> 0|1|2', got {line!r}")
                continue
            rows.append((f"{cls}/{parts[0]}", lookup[cls], code[parts[1]]))
    base = _pick_base(root, _HMDB_VIDEO_DIRS, [r[0] for r in rows])
    rows = _keep_existing(base, rows, report)
    report.notes.append(f"HMDB51 fold {fold}, videos under {base}")
    return _build(base, [r[0] for r in rows], [r[1] for r in rows], names, [r[2] for r in rows],
                  str(split_dir), report)


def _seconds_field(text: str) -> int | None:
    """A Kinetics time field (``10``, ``10.0``) as whole seconds; None if not a number >= 0."""
    try:
        v = float(text)
    except ValueError:
        return None
    return int(v) if v >= 0 and v == int(v) else None


def _load_kinetics(root: Path, *, manifest: str, class_names: Sequence[str] | None, on_bad_row: BadRowPolicy,
                   extensions: frozenset[str], report: LoadReport, **_: object) -> Manifest:
    """Kinetics CSVs; videos ``<id>_<start:06d>_<end:06d>.<ext>`` found anywhere under the root."""
    csvs = _kinetics_csvs(root, manifest)
    if not csvs:
        raise DataError(f"{root}: no Kinetics CSV (a header with label,youtube_id,time_start,time_end,split)")
    base = root.parent if root.is_file() else root
    records: list[tuple[str, str, str, int, int]] = []  # (label, id, split, start, end)
    for path in csvs:
        text = _read_text(path)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        missing = {"youtube_id", "time_start", "time_end"} - set(header)
        if missing:
            raise DataError(f"Kinetics CSV {path}: header {header} lacks {sorted(missing)}")
        col = {h: i for i, h in enumerate(header)}
        stem = path.stem.lower()
        default_split = _SPLIT_ALIASES.get(stem, stem) if stem in ("train", "val", "test", *_SPLIT_ALIASES) else ""
        bad = _BadRows(f"Kinetics CSV {path}", on_bad_row, report)
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            lineno = reader.line_num
            if len(row) != len(header):
                bad(lineno, f"expected {len(header)} fields {header}, got {len(row)}")
                continue
            yid = row[col["youtube_id"]].strip()
            start, end = _seconds_field(row[col["time_start"]]), _seconds_field(row[col["time_end"]])
            if not yid:
                bad(lineno, "empty youtube_id")
                continue
            if start is None or end is None or end <= start:
                bad(lineno, f"time_start/time_end {row[col['time_start']]!r}/{row[col['time_end']]!r} "
                            "must be whole seconds with time_end > time_start")
                continue
            label = row[col["label"]].strip() if "label" in col else ""
            split = row[col["split"]].strip().lower() if "split" in col else default_split
            records.append((label, yid, _SPLIT_ALIASES.get(split, split) or "train", start, end))
    names = _class_lookup((r[0] for r in records if r[0]), class_names)
    lookup = {n: i for i, n in enumerate(names)}
    index: dict[str, list[str]] = {}
    for rel in list_media(base, extensions):
        index.setdefault(os.path.splitext(rel.rsplit("/", 1)[-1])[0], []).append(rel)
    paths, labels, splits, ids, starts, ends = [], [], [], [], [], []
    for label, yid, split, start, end in records:
        if label and label not in lookup:
            report.add("row of an unknown class", f"{yid} (label '{label}' not in class_names)")
            continue
        stem = f"{yid}_{start:06d}_{end:06d}"
        found = index.get(stem)
        if not found:
            report.add("missing file", f"{split}/{label}/{stem}.mp4")
            continue
        paths.append(_prefer(found, split, label))
        labels.append(lookup[label] if label else -1)
        splits.append(split)
        ids.append(yid)
        starts.append(start)
        ends.append(end)
    found_n = len(paths)
    report.notes.append(f"Kinetics: {found_n} of {len(records)} listed clips found under {base}")
    return _build(base, paths, labels, names, splits, ", ".join(str(p) for p in csvs), report,
                  extra={"youtube_id": np.array(ids, dtype=str), "time_start": np.array(starts, dtype=np.int64),
                         "time_end": np.array(ends, dtype=np.int64)})


def _prefer(candidates: list[str], split: str, label: str) -> str:
    """Of several files with the same name, the one under ``<split>/<label>/``, else ``<label>/``."""
    if len(candidates) == 1:
        return candidates[0]
    label_dirs = {label, label.replace(" ", "_")}

    def score(rel: str) -> int:
        parts = rel.split("/")[:-1]
        return 2 * any(p in label_dirs for p in parts) + any(SPLIT_DIRS.get(p.lower(), p) == split for p in parts)

    return max(candidates, key=score)


def _load_csv(root: Path, *, manifest: str, class_names: Sequence[str] | None, on_bad_row: BadRowPolicy,
              report: LoadReport, **_: object) -> Manifest:
    """A CSV/TSV manifest: ``root`` itself, ``root/<manifest>``, or the single path-CSV in ``root``."""
    if root.is_file():
        path = root
    elif (root / manifest).is_file():
        path = root / manifest
    else:
        others = [p for p in sorted(root.iterdir())
                  if p.is_file() and p.suffix.lower() in _MANIFEST_SUFFIXES and "path" in _csv_header(p)]
        if len(others) != 1:
            raise DataError(f"no manifest '{manifest}' in {root} (expected a CSV with columns path,label,...)")
        path = others[0]
    return read_manifest(path, class_names=class_names, on_bad_row=on_bad_row)


_LOADERS: dict[str, Callable[..., Manifest]] = {
    "csv": _load_csv,
    "folder": _load_folder,
    "ucf101": _load_ucf101,
    "hmdb51": _load_hmdb51,
    "kinetics": _load_kinetics,
    "unlabeled": _load_unlabeled,
}


def load_manifest(
    root: str | os.PathLike[str],
    fmt: Format | str = "auto",
    *,
    split: str | Sequence[str] | None = None,
    manifest: str = "manifest.csv",
    split_file: str | os.PathLike[str] | None = None,
    fold: int = 1,
    deny_list: str | os.PathLike[str] | Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    on_bad_row: BadRowPolicy = "raise",
    extensions: Iterable[str] | None = None,
) -> Manifest:
    """Read a dataset in any supported layout into a :class:`Manifest` (see the module docstring).

    Args:
        root: dataset folder, or a manifest / Kinetics CSV file.
        fmt: ``"auto"`` or one of :data:`FORMATS`.
        split: keep only this split (or these splits); ``None`` keeps every row. Layouts without
            splits put every row in ``train``.
        manifest: manifest file name inside ``root`` (``csv`` and ``kinetics``).
        split_file: UCF101/HMDB51 split-file folder (or any file in it) when it is not inside
            ``root``.
        fold: official UCF101/HMDB51 split (1, 2 or 3).
        deny_list: a deny-list file (``glocal scan --out``) or a list of paths; those rows are
            removed and counted.
        class_names: fix the class list and order (labels outside it are bad rows / left out).
        on_bad_row: ``"raise"`` (default) stops at the first malformed row with a
            :class:`DataError` naming the file and line; ``"skip"`` leaves it out and counts it.
        extensions: media file extensions for the folder layouts and Kinetics
            (default :data:`VIDEO_EXTENSIONS`).

    Returns a Manifest whose ``report`` records the layout, how it was detected and every item
    left out; a summary is logged (``glocal.data`` logger) when anything was left out.
    """
    root = Path(root)
    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"unknown dataset format {fmt!r}; choose one of {['auto', *FORMATS]}")
    if on_bad_row not in ("raise", "skip"):
        raise DataError(f"on_bad_row must be 'raise' or 'skip', got {on_bad_row!r}")
    if not root.exists():
        raise DataError(
            f"data folder not found: {root} (generate the built-in world with `glocal synth --out {root}`)"
        )
    root = root.expanduser().resolve()
    exts = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}"
                     for e in (extensions if extensions is not None else VIDEO_EXTENSIONS))
    if fmt == "auto":
        fmt, detail = detect_format(root, manifest=manifest, split_file=split_file, extensions=exts)
        detail = f"auto-detected: {detail}"
        log.info("%s: reading as %s (%s)", root, fmt, detail)
    else:
        detail = "given"
    if fmt in ("ucf101", "hmdb51") and fold not in (1, 2, 3):
        raise DataError(f"fold must be 1, 2 or 3 (the official {fmt} splits), got {fold!r}")
    report = LoadReport(format=fmt, detail=detail, source=str(root))
    m = _LOADERS[fmt](
        root, manifest=manifest, split_file=split_file, fold=fold, class_names=class_names,
        on_bad_row=on_bad_row, extensions=exts, report=report,
    )
    m.report.format, m.report.detail = fmt, detail
    if deny_list is not None:
        m = apply_deny_list(m, deny_list)
    if m.report.total_left_out:
        left = [line for line in m.report.lines() if line.startswith("left out")]
        log.warning("dataset %s (%s): %s", root, fmt, "; ".join(left))
    return m.split(split)
