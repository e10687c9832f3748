"""Sound classification with the frozen audio encoder: ESC-50-style k-fold linear probe.

Labels come from the ``sound_label`` column when present (else ``label``); folds from the
``fold`` column when present, else from the train/test split.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..methods import Method
from .context import EvalContext
from .features import extract_features, make_loader
from .probes import kfold_linear_probe, linear_probe

__all__ = ["run"]


def _audio_fn(method: Method, batch: dict):
    return method.audio_features(batch["audio"])


def run(method: Method, ctx: EvalContext) -> dict[str, float]:
    """Mean top-1 over folds (or train → test top-1 without folds)."""
    manifest = ctx.manifest
    if manifest.has_column("sound_label"):
        codes, names = manifest.encode("sound_label")
        manifest = dataclasses.replace(manifest, labels=codes, class_names=names)
    loader = make_loader(manifest, ctx.data, with_audio=True)
    x, y = extract_features(method, loader, _audio_fn, device=ctx.device, dtype=ctx.dtype,
                            desc="audio features", progress=ctx.progress)
    if manifest.has_column("fold"):
        folds = manifest.columns["fold"].astype(np.int64)
        res = kfold_linear_probe(x, y, folds, seed=ctx.seed)
        return {"sound_top1": float(res["mean_top1"])}
    split = manifest.column("split")
    tr, te = split == "train", split == "test"
    return {"sound_top1": float(linear_probe(x[tr], y[tr], x[te], y[te], seed=ctx.seed)["top1"])}
