"""``glocal embed``: embeddings of every file of a dataset, written as ``.npy`` + an index, resumably.

Output folder ``OUT``::

    video.npy / audio.npy   float32 (N, D) per modality, row i = row i of the index
    index.csv               row,path,label,label_index,split (path relative to the dataset root)
    index.parquet           the same table, when pyarrow is installed
    report.json             settings, counts, every skipped file with its reason, embedding sizes
    chunks/chunk_NNNNN.npz  the work in chunks of ``chunk_size`` files, each written atomically; a
                            rerun with the same settings skips the finished ones (resume)
    settings.json           what the chunks were made with (another run into OUT must match it)

Files that cannot be used (undecodable, or without a stream the modality reads) are skipped: one
line each on stderr, counted and named in ``report.json``.

``space=joint`` writes the method's joint audio-visual embeddings instead of backbone features (a
sound and a video compare by cosine there: cross-modal ``glocal search``, :mod:`glocal.api.search`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Callable, Literal, Optional

import numpy as np
from tqdm import tqdm

from ..config import Range
from ..data.manifest import Manifest
from ..errors import DataError, GlocalError
from ..eval.features import extract_features
from ..eval.usable import file_state, unusable_reason
from ..runtime.files import atomic_path
from ..runtime.rundir import check_writable
from . import DEFAULT_CLIPS_PER_VIDEO, Encoder, load, load_dataset

__all__ = ["EmbedOptions", "embed_dataset"]


@dataclass
class EmbedOptions:
    """``key=value`` options of ``glocal embed`` (built and checked by :func:`glocal.config.build`)."""

    #: which encoders: video, audio or both (both: files need both streams)
    modality: Literal["video", "audio", "both"] = "video"
    #: uniformly spaced clips (audio: crops of one clip's length) averaged per file
    clips_per_video: Annotated[int, Range(1)] = DEFAULT_CLIPS_PER_VIDEO
    #: video backbone map pooled over positions by mean (``video_features``) or max
    pool: Literal["mean", "max"] = "mean"
    #: backbone: the pooled backbone features (what the linear probe sees); joint: the method's
    #: joint audio-visual space (glcm, avid, avts), where sounds and videos compare by cosine
    space: Literal["backbone", "joint"] = "backbone"
    #: files per chunk (the unit of resume)
    chunk_size: Annotated[int, Range(1)] = 256
    batch_size: Annotated[int, Range(1)] = 16
    num_workers: Annotated[int, Range(0)] = 0
    #: dataset layout (docs/data_formats.md)
    format: Literal["auto", "csv", "folder", "ucf101", "hmdb51", "kinetics", "unlabeled"] = "auto"
    #: keep only this split (default: every row)
    split: Optional[str] = None
    device: Literal["auto", "cpu", "cuda"] = "auto"


def _modalities(modality: str) -> tuple[str, ...]:
    return ("video", "audio") if modality == "both" else (modality,)


def _atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """``write(fh)`` into ``path`` atomically (:func:`glocal.runtime.files.atomic_path`)."""
    with atomic_path(path, fix="free space there and rerun: finished chunks are kept") as tmp, open(tmp, "wb") as fh:
        write(fh)


def _embed_rows(enc: Encoder, m: Manifest, modality: str, opts: EmbedOptions) -> np.ndarray:
    if modality == "video":
        loader, fn = enc.video_loader(m, opts.clips_per_video, opts.batch_size), enc.video_fn(opts.pool, opts.space)
    else:
        loader, fn = enc.audio_loader(m, opts.clips_per_video, opts.batch_size), enc.audio_space_fn(opts.space)
    feats, _ = extract_features(enc.method, loader, fn, device=enc.device, progress=False)
    return feats


def _embed_chunk(enc: Encoder, m: Manifest, rows: np.ndarray, names: np.ndarray, opts: EmbedOptions,
                 skipped: dict[str, str]) -> dict[str, np.ndarray]:
    """Embeddings of the usable rows of ``rows`` (unusable ones go to ``skipped``)."""
    mods = _modalities(opts.modality)
    keep = []
    for r in rows.tolist():
        reason = unusable_reason(file_state(str(m.paths[r])), mods)
        if reason is None:
            keep.append(r)
        else:
            skipped[str(names[r])] = reason
            print(f"glocal embed: skipped {names[r]}: {reason}", file=sys.stderr)
    out: dict[str, np.ndarray] = {"rows": np.array(keep, dtype=np.int64)}
    if not keep:
        return out
    try:
        for mod in mods:
            out[mod] = _embed_rows(enc, m.select(np.array(keep)), mod, opts)
        return out
    except DataError:  # damage past the probe: redo the chunk file by file, leaving out the bad ones
        pass
    good, per_mod = [], {mod: [] for mod in mods}
    for r in keep:
        try:
            feats = {mod: _embed_rows(enc, m.select(np.array([r])), mod, opts) for mod in mods}
        except DataError as exc:
            reason = str(exc).splitlines()[0]
            skipped[str(names[r])] = reason
            print(f"glocal embed: skipped {names[r]}: {reason}", file=sys.stderr)
            continue
        good.append(r)
        for mod in mods:
            per_mod[mod].append(feats[mod])
    out = {"rows": np.array(good, dtype=np.int64)}
    for mod in mods:
        if good:
            out[mod] = np.concatenate(per_mod[mod])
    return out


def _load_chunk(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            chunk = {k: z[k] for k in z.files}
        chunk["skipped"] = json.loads(str(chunk.get("skipped", "{}")))
        return chunk
    except Exception:  # a torn or foreign file: redo the chunk
        return None


def embed_dataset(data: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike,
                  opts: EmbedOptions | None = None, *, progress: bool = True, overwrite: bool = False,
                  encoder: Encoder | None = None) -> dict[str, Any]:
    """Embed every file of ``data`` with ``checkpoint``'s encoders into ``out`` (see the module
    docstring); returns the report (also written to ``out/report.json``)."""
    opts = opts or EmbedOptions()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder; pick a folder for the embeddings")
    check_writable(out, "the output folder --out")  # before any work
    enc = encoder or load(checkpoint, opts.device, batch_size=opts.batch_size, num_workers=opts.num_workers)
    mods = _modalities(opts.modality)
    for mod in mods:
        enc.require(mod)
    enc.require_joint(opts.space)
    m = load_dataset(data, audio=opts.modality == "audio", fmt=opts.format).split(opts.split)
    if len(m) == 0:
        raise DataError(f"no media files in {data}")
    names = m.relative_paths()
    ckpt = Path(checkpoint).resolve()
    settings = {"data": str(Path(data).resolve()), "checkpoint": str(ckpt),
                "checkpoint_mtime_ns": ckpt.stat().st_mtime_ns if ckpt.is_file() else None,
                "rows": len(m), **{k: v for k, v in asdict(opts).items() if k not in ("batch_size", "num_workers", "device")}}
    if opts.space == "backbone":  # folders from before `space` existed stay resumable (search reads no key as backbone)
        del settings["space"]
    chunks_dir = out / "chunks"
    settings_path = out / "settings.json"
    if settings_path.is_file():
        old = json.loads(settings_path.read_text())
        if old != settings and not overwrite:
            diff = [k for k in settings if old.get(k) != settings[k]]
            raise GlocalError(f"{out} holds embeddings made with other settings ({', '.join(diff)} differ); "
                              "use another --out, or --overwrite to start again")
        if old != settings:  # --overwrite: nothing of the other run may survive next to the new one
            shutil.rmtree(chunks_dir, ignore_errors=True)
            for name in ("video.npy", "audio.npy", "index.csv", "index.parquet", "report.json"):
                (out / name).unlink(missing_ok=True)
    chunks_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(settings_path, lambda fh: fh.write(json.dumps(settings, indent=2).encode()))

    n_chunks = (len(m) + opts.chunk_size - 1) // opts.chunk_size
    skipped: dict[str, str] = {}
    parts: list[dict[str, Any]] = []
    resumed = 0
    bar = tqdm(total=len(m), desc=f"embed {opts.modality}", unit="file", disable=not progress)
    for c in range(n_chunks):
        rows = np.arange(c * opts.chunk_size, min(len(m), (c + 1) * opts.chunk_size))
        path = chunks_dir / f"chunk_{c:05d}.npz"
        chunk = _load_chunk(path) if path.is_file() else None
        if chunk is not None:
            resumed += 1
            skipped.update(chunk["skipped"])
        else:
            found: dict[str, str] = {}
            chunk = _embed_chunk(enc, m, rows, names, opts, found)
            chunk["skipped"] = found
            skipped.update(found)
            arrays = {k: v for k, v in chunk.items() if k != "skipped"}
            _atomic_write(path, lambda fh: np.savez(fh, skipped=np.array(json.dumps(found)), **arrays))
        parts.append(chunk)
        bar.update(len(rows))
    bar.close()

    rows = np.concatenate([p["rows"] for p in parts]).astype(np.int64)
    if rows.size == 0:
        raise DataError(f"no file of {data} could be embedded: all {len(m)} skipped, e.g. "
                        + "; ".join(f"{k} ({v})" for k, v in list(skipped.items())[:3]))
    dims = {}
    for mod in mods:
        emb = np.concatenate([p[mod] for p in parts if mod in p]).astype(np.float32)
        dims[mod] = int(emb.shape[1])
        _atomic_write(out / f"{mod}.npy", lambda fh: np.save(fh, emb))
    splits = m.column("split") if m.has_column("split") else np.full(len(m), "", dtype=str)
    table = {"row": list(range(rows.size)), "path": [str(names[r]) for r in rows],
             "label": [m.class_names[m.labels[r]] if m.labels[r] >= 0 else "" for r in rows],
             "label_index": [int(m.labels[r]) for r in rows], "split": [str(splits[r]) for r in rows]}

    def write_csv(fh) -> None:
        import io
        text = io.StringIO()
        w = csv.writer(text)
        w.writerow(list(table))
        w.writerows(zip(*table.values()))
        fh.write(text.getvalue().encode())

    _atomic_write(out / "index.csv", write_csv)
    files = {"index": "index.csv", **{mod: f"{mod}.npy" for mod in mods}}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        pq.write_table(pa.table(table), out / "index.parquet")
        files["parquet"] = "index.parquet"
    report = {"settings": settings, "root": str(m.root), "format": m.report.format, "method": enc.info.method,
              "files": len(m), "embedded": int(rows.size), "skipped": len(skipped), "skipped_files": skipped,
              "dims": dims, "chunks": n_chunks, "resumed_chunks": resumed, "outputs": files}
    _atomic_write(out / "report.json", lambda fh: fh.write(json.dumps(report, indent=2).encode()))
    return report
