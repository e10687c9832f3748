"""Audio-visual deepfake / synchronisation detection: real vs shifted / desynchronised audio, video-level AUC.

Data: ``fake/manifest.csv`` (docs/world_format.md §5): ``path,label,split,source,...`` with label
``real`` or ``fake`` (a fake has its source's frames and manipulated audio). ``options.fake_manifest``
may also name a folder in any layout :func:`~glocal.data.formats.load_manifest` detects (e.g.
``real/`` and ``fake/`` class folders). The dataset's deny list (``data.deny_list`` /
:attr:`EvalContext.deny_list`, written by ``glocal scan``) is honoured: rows whose file is on it
are left out; relative entries are resolved against the dataset root, as ``glocal scan`` writes
them (so ``videos/000011.mp4`` removes the real row pointing at the original, and
``fake/videos/000011.mp4`` the fake).

Split: when the fake manifest has both real and fake rows in a ``train`` (or ``val``) split *and* in
the ``test`` split, those are used. Otherwise (the world's default puts fakes in the test split only)
its rows are split 50/50 **by source video** (a real video and its fake always land on the same
side), stratified by manipulation type, with the seed; the JSON says which (``meta.split``).

Score (an audio-visual consistency feature from the local features; per video):

1. per-step local video features ``V (Dv, F)`` (audio-visually pooled) and audio features
   ``A (Da, F)``, each standardised per channel over time;
2. projected on their first ``k = 8`` principal directions (fitted on the training videos);
   the ``k x k`` lag-0 cross-correlation matrix of the projections;
3. the change signals ``|V_t+1 - V_t|`` and ``|A_t+1 - A_t|`` (z-scored) and their normalised
   cross-correlation at lags ``-4..4`` steps;
4. a logistic regression on [2, 3] trained on the training portion; its P(fake) is the score.

Metric: ROC AUC of the score over the test videos (fake = positive). ``auc_zero_shot`` scores with
minus the lag-0 change-signal correlation, without training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.denylist import apply_deny_list, read_deny_list
from ..data.formats import load_manifest
from ..data.manifest import Manifest, absolute_paths
from ..errors import DataError
from ..methods import Method
from .classifiers import fit_linear
from .context import EvalContext
from .metrics import binary_auc
from .timeline import extract_timeline

__all__ = ["read_fake_manifest", "split_by_source", "sync_descriptor", "requires", "run"]

MAX_LAG = 4
PCA_DIMS = 8


def _deny(ctx: EvalContext, m: Manifest) -> Manifest:
    """``m`` without the rows on the dataset's deny list (relative entries: from the dataset root)."""
    if ctx.deny_list is None:
        return m
    if isinstance(ctx.deny_list, (str, os.PathLike)):
        entries = read_deny_list(ctx.deny_list)
    else:  # a list of paths, as load_manifest also accepts
        entries = [(str(p), "") for p in ctx.deny_list]
    if not entries:
        return m
    if all(Path(p).is_absolute() for p, _ in entries):
        return apply_deny_list(m, entries)
    root = Path(ctx.manifest.root)  # where `glocal scan` (and load_manifest) resolve relative entries
    paths = absolute_paths(root, [p for p, _ in entries]).tolist()
    return apply_deny_list(m, [(p, reason) for p, (_, reason) in zip(paths, entries)])


def read_fake_manifest(ctx: EvalContext) -> tuple[Manifest, np.ndarray]:
    """The fake manifest (deny-listed rows left out) and its binary labels ``(N,)`` (1 = fake)."""
    path: Path = ctx.fake_manifest_path
    if not path.exists():
        raise DataError(f"task 'deepfake' needs {path} (real/fake rows, see docs/world_format.md §5)")
    # its own layout (a CSV file, or e.g. real/ + fake/ class folders): data.format describes the dataset
    m = ctx.usable(_deny(ctx, load_manifest(path, "auto")))
    names = set(m.class_names)
    if not names or not names <= {"real", "fake"} or (m.labels < 0).any():
        raise DataError(f"task 'deepfake': {path} needs a 'label' column with values 'real' / 'fake'; "
                        f"got {sorted(names)}")
    y = (np.array(m.class_names)[m.labels] == "fake").astype(np.int64)
    return m, y


def split_by_source(m: Manifest, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Train / test masks ``(N,)`` of the fake manifest and a note saying how they were drawn."""
    split = m.columns.get("split")
    if split is not None:
        tr = np.isin(split, ["train", "val"])
        te = split == "test"
        if all(np.unique(y[mask]).size == 2 for mask in (tr, te)):
            return tr, te, "the fake manifest's train(+val) / test splits"
    source = m.columns["source"] if "source" in m.columns else m.paths
    kind = m.columns.get("manipulation", np.where(y == 1, "fake", "none"))
    groups = sorted(set(source.tolist()))
    if len(groups) < 2:
        raise DataError(f"task 'deepfake': {m.source} has fewer than two source videos; cannot split it")
    stratum = {g: "/".join(sorted(set(kind[(source == g) & (y == 1)].tolist()))) or "none" for g in groups}
    rng = np.random.default_rng(seed)
    train_groups: set[str] = set()
    for s in sorted(set(stratum.values())):
        members = [g for g in groups if stratum[g] == s]
        members = [members[i] for i in rng.permutation(len(members))]
        train_groups.update(members[: len(members) // 2])
    if not train_groups:  # every stratum has a single source: put one source in train
        train_groups.add(groups[int(rng.integers(len(groups)))])
    tr = np.isin(source, sorted(train_groups))
    te = ~tr
    for name, mask in (("train", tr), ("test", te)):
        if np.unique(y[mask]).size < 2:
            raise DataError(f"task 'deepfake': the {name} half of {m.source} lacks real or fake videos")
    return tr, te, ("stratified 50/50 split of the fake manifest by source video (the manifest has no train "
                    "split with both real and fake videos)")


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def _xcorr(a: np.ndarray, b: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised cross-correlation ``mean_t a_t b_{t+l}`` of z-scored signals, lags ``-max_lag..max_lag``."""
    a = (a - a.mean()) / (a.std() + 1e-6)
    b = (b - b.mean()) / (b.std() + 1e-6)
    n = a.shape[0]
    out = []
    for lag in range(-max_lag, max_lag + 1):
        if abs(lag) >= n:
            out.append(0.0)
        elif lag >= 0:
            out.append(float(np.mean(a[: n - lag] * b[lag:])))
        else:
            out.append(float(np.mean(a[-lag:] * b[: n + lag])))
    return np.array(out)


def _pca(seqs: list[np.ndarray], k: int) -> np.ndarray:
    """``(D, k)`` principal directions of the per-video standardised frames."""
    x = np.concatenate([_standardise(s) for s in seqs], axis=1).T  # (sum F, D)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    return vt[: min(k, vt.shape[0])].T


def sync_descriptor(v: np.ndarray, a: np.ndarray, pv: np.ndarray, pa: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """AV-consistency descriptor of one video: flattened ``k x k`` lag-0 correlations of the PCA
    projections, then the change-signal cross-correlation at lags ``-max_lag..max_lag``.

    Args:
        v: ``(Dv, F)`` video features; a: ``(Da, F)`` audio features; pv: ``(Dv, k)``; pa: ``(Da, k)``.

    Returns:
        ``(k * k + 2 * max_lag + 1,)``.
    """
    zv, za = _standardise(v), _standardise(a)
    f = zv.shape[1]
    pvs, pas = _standardise((zv.T @ pv).T), _standardise((za.T @ pa).T)  # (k, F)
    corr = pvs @ pas.T / f
    dv = np.linalg.norm(np.diff(zv, axis=1), axis=0) if f > 1 else np.zeros(1)
    da = np.linalg.norm(np.diff(za, axis=1), axis=0) if f > 1 else np.zeros(1)
    return np.concatenate([corr.reshape(-1), _xcorr(dv, da, max_lag)])


def requires(ctx: EvalContext) -> None:
    read_fake_manifest(ctx)


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Video-level AUC of the trained AV-consistency score (and of the zero-shot score)."""
    m, y = read_fake_manifest(ctx)
    tr, te, note = split_by_source(m, y, ctx.seed)
    vkind = "video_av" if "audio" in method.modalities else "video"
    tl = extract_timeline(method, ctx, m, [vkind, "audio"], desc="local features [fake manifest]")
    vids, auds = tl.features[vkind], tl.features["audio"]
    pv = _pca([vids[i] for i in np.flatnonzero(tr)], PCA_DIMS)
    pa = _pca([auds[i] for i in np.flatnonzero(tr)], PCA_DIMS)
    desc = np.stack([sync_descriptor(vids[i], auds[i], pv, pa) for i in range(len(y))])
    clf = fit_linear(desc[tr], y[tr], classifier="logreg", Cs=ctx.options.Cs, seed=ctx.seed)
    score = clf.positive_score(desc[te], 1)
    zero_shot = -desc[te, pv.shape[1] * pa.shape[1] + MAX_LAG]
    return {"auc": binary_auc(score, y[te]), "auc_zero_shot": binary_auc(zero_shot, y[te]),
            "meta": {"split": note, "train_videos": int(tr.sum()), "test_videos": int(te.sum()),
                     "test_fake": int(y[te].sum()), "C": clf.C, "note": clf.note, "video_features": vkind}}
