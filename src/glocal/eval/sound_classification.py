"""Sound classification with the frozen audio encoder: ESC-50-style k-fold linear probe (spec 8.2).

Two dataset layouts:

* a glocal manifest (``manifest.csv``): labels from ``sound_label`` when present (else ``label``),
  folds from ``fold`` when present (leave-one-fold-out, mean top-1), else train → test;
* an ESC-50 folder / CSV: ``meta/esc50.csv`` (or any CSV) with columns
  ``filename,fold,target,category``; audio files are found next to the CSV, in ``audio/`` next to
  it, or in ``../audio/`` (the ESC-50 release layout). Labels are ``category`` (else ``target``).

Features: ``method.audio_features`` of ``audio_crops`` uniformly spaced crops of
``clip_frames / fps`` seconds (the pretraining clip length), averaged per file: each file's whole
audio track (audio files or the audio track of videos) is one sample of the evaluation dataset
(:class:`~glocal.data.eval_samplers.AudioTrackSampler`, ``timeline="audio"``), cut into the crops
by :class:`~glocal.data.eval_samplers.UniformCrops`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.eval_samplers import AudioTrackSampler, UniformCrops
from ..data.manifest import Manifest
from ..errors import DataError
from ..methods import Method
from ..runtime.precision import autocast
from .classifiers import fit_linear
from .context import EvalContext
from .features import EvalData, eval_dataset, eval_loader
from .usable import usable_mask

__all__ = ["find_esc50", "read_esc50", "audio_files", "audio_crop_loader", "sound_table", "audio_features",
           "requires", "run"]


def find_esc50(data_root: str | Path) -> Path | None:
    """The ESC-50-style CSV of ``data_root`` (a CSV file with ``filename`` and ``fold`` columns, or a
    folder with ``meta/esc50.csv`` / ``esc50.csv``), else None."""
    root = Path(data_root)
    candidates = [root] if root.is_file() else [root / "meta" / "esc50.csv", root / "esc50.csv"]
    for c in candidates:
        if c.is_file() and c.suffix.lower() == ".csv":
            with open(c, encoding="utf-8-sig", newline="") as fh:
                header = [h.strip() for h in next(csv.reader(fh), [])]
            if "filename" in header and "fold" in header:
                return c
    return None


def read_esc50(csv_path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(paths, labels, folds)`` of an ESC-50-style CSV (``filename,fold,target,category``)."""
    csv_path = Path(csv_path)
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        rows = [{k.strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(fh)]
    if not rows:
        raise DataError(f"{csv_path} has no rows")
    label_key = "category" if "category" in rows[0] else ("target" if "target" in rows[0] else None)
    if label_key is None:
        raise DataError(f"task 'sound': {csv_path} needs a 'category' or 'target' column")
    bases = [csv_path.parent, csv_path.parent / "audio", csv_path.parent.parent / "audio"]
    sample = [r["filename"] for r in rows[:20]]
    found = [sum((b / f).is_file() for f in sample) for b in bases]
    if max(found) == 0:
        raise DataError(f"task 'sound': the audio files of {csv_path} (e.g. '{sample[0]}') are not in any of "
                        f"{[str(b) for b in bases]}")
    base = bases[int(np.argmax(found))]
    paths = np.array([str(base / r["filename"]) for r in rows])
    missing = [p for p in paths.tolist() if not Path(p).is_file()]
    if missing:
        raise DataError(f"task 'sound': {len(missing)} audio files of {csv_path} are missing, e.g. {missing[0]}")
    try:
        folds = np.array([int(r["fold"]) for r in rows], dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"task 'sound': bad 'fold' value in {csv_path}: {exc}") from None
    return paths, np.array([r[label_key] for r in rows]), folds


def audio_files(paths: np.ndarray, root: str | Path, source: str) -> Manifest:
    """``paths`` as an unlabelled manifest: the files whose whole audio track the task reads."""
    return Manifest(root=Path(root), paths=paths, labels=np.full(len(paths), -1), class_names=[], source=source)


def audio_crop_loader(files: Manifest, data: EvalData, crops: int) -> DataLoader:
    """The files in order, ``max(1, batch_size // crops)`` at a time: ``"clip/audio"``
    ``(B, crops, N)``, ``N = round(clip_frames / fps * sample_rate)`` (:class:`UniformCrops`)."""
    crops = max(1, int(crops))
    n = int(round(data.clip_frames / data.fps * data.sample_rate))
    ds = eval_dataset(files, data, AudioTrackSampler(), with_audio=True, timeline="audio",
                      audio_transforms={"clip": UniformCrops(n, crops)})
    return eval_loader(ds, data, batch_size=max(1, data.batch_size // crops))


@torch.no_grad()
def audio_features(method: Method, ctx: EvalContext, files: Manifest) -> np.ndarray:
    """Crop-averaged ``method.audio_features`` ``(N, D)`` of ``files`` (cached per model)."""
    crops = max(ctx.data.clips_per_video, ctx.options.audio_crops)
    key = (id(method), "audio-crops", hash(tuple(files.paths.tolist())), ctx.data, crops)
    if key in ctx.cache:
        return ctx.cache[key]
    loader = audio_crop_loader(files, ctx.data, crops)
    method.eval()
    out = []
    for batch in tqdm(loader, desc="audio features", disable=not ctx.progress, leave=False):
        audio = batch["clip/audio"].to(ctx.device)  # (B, crops, N)
        b, c, n = audio.shape
        with autocast(ctx.device, ctx.dtype):
            f = method.audio_features(audio.reshape(b * c, n)).float()
        out.append(f.reshape(b, c, -1).mean(dim=1).cpu().numpy())
    ctx.cache[key] = np.concatenate(out).astype(np.float32)
    return ctx.cache[key]


def sound_table(ctx: EvalContext) -> dict[str, Any]:
    """Files (an unlabelled :class:`Manifest`), labels, folds (or None) and splits (or None) of the
    dataset, in either layout."""
    esc = find_esc50(ctx.data_root)
    if esc is not None:
        paths, labels, folds = read_esc50(esc)
        keep = np.ones(len(paths), dtype=bool) if ctx.on_error is None else usable_mask(
            paths, np.array([Path(p).name for p in paths.tolist()]), needs=("audio",), states=ctx.probes,
            log=ctx.skipped, on_error=ctx.on_error, source=str(esc))
        return {"files": audio_files(paths[keep], esc.parent, str(esc)), "labels": labels[keep], "folds": folds[keep],
                "split": None, "source": str(esc)}
    m = ctx.manifest
    if m.has_column("sound_label"):
        labels = m.columns["sound_label"]
    elif m.class_names and not bool((m.labels < 0).any()):
        labels = np.array(m.class_names)[m.labels]
    else:
        raise DataError(f"task 'sound' needs a 'sound_label' or 'label' column in {m.source}")
    folds = None
    if m.has_column("fold"):
        try:
            folds = m.columns["fold"].astype(np.int64)
        except ValueError as exc:
            raise DataError(f"task 'sound': bad 'fold' value in {m.source}: {exc}") from None
    elif not m.has_column("split"):
        raise DataError(f"task 'sound' needs a 'fold' or a 'split' column in {m.source}")
    return {"files": audio_files(m.paths, m.root, m.source), "labels": labels, "folds": folds,
            "split": m.columns.get("split"), "source": m.source}


def requires(ctx: EvalContext) -> None:
    table = sound_table(ctx)
    if table["folds"] is None:
        split = table["split"]
        for s in ("train", "test"):
            if not np.any(split == s):
                raise DataError(f"task 'sound': split '{s}' is empty in {table['source']} "
                                "and there is no 'fold' column")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Mean top-1 over leave-one-fold-out folds (or train → test top-1 without folds)."""
    table = sound_table(ctx)
    x = audio_features(method, ctx, table["files"])
    y = table["labels"]
    opts = dict(classifier=ctx.options.classifier, Cs=ctx.options.Cs, seed=ctx.seed)
    if table["folds"] is not None:
        folds = table["folds"]
        per_fold, per_c = [], []
        fold_ids = np.unique(folds)
        if fold_ids.size < 2:
            raise DataError(f"task 'sound': k-fold evaluation needs at least two folds in {table['source']}")
        for f in fold_ids:
            test = folds == f
            clf = fit_linear(x[~test], y[~test], **opts)
            per_fold.append(float(np.mean(clf.predict(x[test]) == y[test])))
            per_c.append(clf.C)
        return {"top1": float(np.mean(per_fold)),
                "meta": {"protocol": f"{fold_ids.size}-fold", "per_fold": per_fold, "folds": fold_ids.tolist(),
                         "C": per_c, "files": int(len(y)), "source": table["source"]}}
    split = table["split"]
    tr, va, te = split == "train", split == "val", split == "test"
    clf = fit_linear(x[tr], y[tr], x[va] if va.any() else None, y[va] if va.any() else None, **opts)
    return {"top1": float(np.mean(clf.predict(x[te]) == y[te])),
            "meta": {"protocol": "train/test", "C": clf.C, "source": table["source"]}}
