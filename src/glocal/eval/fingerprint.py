"""Robust video fingerprinting (AVTS protocol, spec 8.2): find the original clip of an edited copy.

Database: embeddings of the original test-split clips (the centre clip of each video, centre crop).
Queries: the same clips after each benign edit of :mod:`glocal.eval.edits` (crop, blur,
re-encode at a higher CRF, noise, 1.25x speed; ``--edits`` chooses). Embedding
(``--fingerprint-modality``): ``video`` = ``method.video_features``, ``audio`` =
``method.audio_features``, ``fused`` = the concatenation of both L2-normalised (default for
audio-visual methods). Metric per edit: recall@1 / recall@5 of retrieving the query's own original
(cosine; instance-level, one correct item per query), and their mean over the edits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.eval_samplers import CentreClipSampler, video_durations
from ..data.manifest import Manifest
from ..errors import DataError
from ..methods import Method
from ..runtime.precision import autocast
from .context import EvalContext
from .edits import EDITS, EditTransform
from .features import eval_dataset, eval_loader
from .metrics import recall_at_k

__all__ = ["embed", "requires", "run"]


@torch.no_grad()
def embed(method: Method, ctx: EvalContext, manifest: Manifest, edit: str | None, modality: str,
          durations: np.ndarray | None = None) -> np.ndarray:
    """``(N, D)`` fingerprints of the (edited) centre clips, in manifest order.

    The centre clips (:class:`~glocal.data.eval_samplers.CentreClipSampler`) sit in ``durations``
    (default: :func:`~glocal.data.eval_samplers.video_durations`); edit ``e`` of video ``v`` draws
    from ``default_rng((ctx.seed, v, sorted(EDITS).index(e)))``.
    """
    d = ctx.data
    with_audio = modality in ("audio", "fused")
    durations = video_durations(manifest) if durations is None else durations
    clips = CentreClipSampler(d.clip_frames, d.fps, durations, span=EDITS[edit].span if edit else 1.0,
                              with_audio=with_audio, seed=(ctx.seed, sorted(EDITS).index(edit)) if edit else None)
    n = int(round(d.clip_frames / d.fps * d.sample_rate))
    edits = {"clip": EditTransform(edit, d.clip_frames, n, d.fps, d.sample_rate)} if edit else None
    ds = eval_dataset(manifest, d, clips, with_audio=with_audio, av_transforms=edits, missing_audio="error")
    method.eval()
    out = []
    for batch in tqdm(eval_loader(ds, d), desc=f"fingerprints [{edit or 'original'}]", disable=not ctx.progress,
                      leave=False):
        parts = []
        with autocast(ctx.device, ctx.dtype):
            if modality in ("video", "fused"):
                parts.append(F.normalize(method.video_features(batch["clip/video"].to(ctx.device)).float(), dim=1))
            if modality in ("audio", "fused"):
                parts.append(F.normalize(method.audio_features(batch["clip/audio"].to(ctx.device)).float(), dim=1))
        out.append(torch.cat(parts, dim=1).cpu().numpy())
    return np.concatenate(out)


def requires(ctx: EvalContext) -> None:
    if not ctx.has_split("test"):
        raise DataError(f"task 'fingerprint': split 'test' is empty in {ctx.manifest.source}")


def run(method: Method, ctx: EvalContext) -> dict[str, Any]:
    """Recall@1/5 of the original for each edit, and the mean over edits."""
    opts = ctx.options
    unknown = [e for e in opts.edits if e not in EDITS]
    if unknown or not opts.edits:
        raise DataError(f"task 'fingerprint': unknown edits {unknown}; known: {sorted(EDITS)}")
    modality = opts.fingerprint_modality
    if modality == "auto":
        modality = "fused" if "audio" in method.modalities else "video"
    manifest = ctx.split("test")
    ids = np.arange(len(manifest))
    durations = video_durations(manifest)
    db = embed(method, ctx, manifest, None, modality, durations)
    res: dict[str, Any] = {}
    for edit in opts.edits:
        q = embed(method, ctx, manifest, edit, modality, durations)
        r = recall_at_k(q, ids, db, ids, ks=(1, 5))
        res[f"{edit}_R@1"], res[f"{edit}_R@5"] = r["R@1"], r["R@5"]
    res["mean_R@1"] = float(np.mean([res[f"{e}_R@1"] for e in opts.edits]))
    res["mean_R@5"] = float(np.mean([res[f"{e}_R@5"] for e in opts.edits]))
    res["meta"] = {"database": int(len(ids)), "modality": modality, "edits": list(opts.edits)}
    return res
