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

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.io import read_clip
from ..data.manifest import Manifest
from ..data.transforms import ClipTransform
from ..errors import DataError
from ..methods import Method
from ..runtime.precision import autocast
from .context import EvalContext
from .edits import EDITS, apply_edit
from .features import EvalData
from .metrics import recall_at_k
from .timeline import video_durations

__all__ = ["FingerprintDataset", "embed", "requires", "run"]


class FingerprintDataset(Dataset):
    """Item ``v`` = the centre clip of video ``v``, edited by ``edit`` (None = original)."""

    def __init__(self, manifest: Manifest, data: EvalData, edit: str | None, *, with_audio: bool, seed: int) -> None:
        if len(manifest) == 0:
            raise DataError(f"{manifest.source}: no videos to load")
        self.manifest, self.data, self.edit, self.with_audio, self.seed = manifest, data, edit, with_audio, seed
        self.durations = video_durations(manifest)
        self.transform = ClipTransform(size=data.crop_size, train=False)

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, v: int) -> dict[str, torch.Tensor]:
        d = self.data
        t = d.clip_frames
        n = int(round(t / d.fps * d.sample_rate))
        span = EDITS[self.edit].span if self.edit else 1.0
        start = max(0.0, (float(self.durations[v]) - t / d.fps) / 2)
        src_frames = int(math.ceil(t * span))
        size = (d.decode_size, d.decode_size) if d.decode_size else None
        path = str(self.manifest.paths[v])
        clip = read_clip(path, start, src_frames, d.fps, size=size, sample_rate=d.sample_rate,
                         read_audio=self.with_audio)
        if self.with_audio and clip.audio is None:
            raise DataError(f"{path}: no audio stream (the fused / audio fingerprint needs audio)")
        audio = clip.audio[0] if clip.audio is not None else None
        frames = clip.frames
        if self.edit:
            frames, audio = apply_edit(self.edit, frames, audio, num_frames=t, num_samples=n, fps=d.fps,
                                       sample_rate=d.sample_rate, seed=(self.seed, v, sorted(EDITS).index(self.edit)))
        video, _ = self.transform(torch.from_numpy(np.ascontiguousarray(frames[:t])), np.random.default_rng(0))
        out = {"video": video, "index": torch.tensor(v)}
        if self.with_audio:
            a = np.zeros(n, dtype=np.float32)
            a[: min(n, len(audio))] = audio[:n]  # type: ignore[arg-type]
            out["audio"] = torch.from_numpy(a)
        return out


def _collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


@torch.no_grad()
def embed(method: Method, ctx: EvalContext, manifest: Manifest, edit: str | None, modality: str) -> np.ndarray:
    """``(N, D)`` fingerprints of the (edited) centre clips, in manifest order."""
    with_audio = modality in ("audio", "fused")
    ds = FingerprintDataset(manifest, ctx.data, edit, with_audio=with_audio, seed=ctx.seed)
    loader = DataLoader(ds, batch_size=ctx.data.batch_size, shuffle=False, num_workers=ctx.data.num_workers,
                        collate_fn=_collate)
    method.eval()
    out = []
    for batch in tqdm(loader, desc=f"fingerprints [{edit or 'original'}]", disable=not ctx.progress, leave=False):
        parts = []
        with autocast(ctx.device, ctx.dtype):
            if modality in ("video", "fused"):
                parts.append(F.normalize(method.video_features(batch["video"].to(ctx.device)).float(), dim=1))
            if modality in ("audio", "fused"):
                parts.append(F.normalize(method.audio_features(batch["audio"].to(ctx.device)).float(), dim=1))
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
    db = embed(method, ctx, manifest, None, modality)
    res: dict[str, Any] = {}
    for edit in opts.edits:
        q = embed(method, ctx, manifest, edit, modality)
        r = recall_at_k(q, ids, db, ids, ks=(1, 5))
        res[f"{edit}_R@1"], res[f"{edit}_R@5"] = r["R@1"], r["R@5"]
    res["mean_R@1"] = float(np.mean([res[f"{e}_R@1"] for e in opts.edits]))
    res["mean_R@5"] = float(np.mean([res[f"{e}_R@5"] for e in opts.edits]))
    res["meta"] = {"database": int(len(ids)), "modality": modality, "edits": list(opts.edits)}
    return res
