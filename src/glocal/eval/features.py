"""Frozen-feature extraction shared by every evaluation protocol.

Features are computed in eval mode, without gradients, over ``clips_per_video`` uniformly
spaced clips per video (centre crop) and averaged per video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.dataset import AVClipDataset, ClipSpec, collate_samples
from ..data.manifest import Manifest
from ..data.transforms import ClipTransform
from ..methods import Method
from ..runtime.precision import autocast

__all__ = ["EvalData", "make_loader", "extract_features", "recalibrate_batchnorm"]


@dataclass(frozen=True)
class EvalData:
    """How evaluation clips are drawn (matching the pretraining clip geometry by default)."""

    clip_frames: int
    fps: float
    crop_size: int
    sample_rate: int = 16000
    decode_size: int | None = None
    clips_per_video: int = 1
    batch_size: int = 32
    num_workers: int = 2
    missing_audio: str = "error"

    def spec(self, with_audio: bool) -> ClipSpec:
        size = (self.decode_size, self.decode_size) if self.decode_size else None
        return ClipSpec(self.clip_frames, self.fps, self.sample_rate, size, with_audio)


def make_loader(manifest: Manifest, data: EvalData, *, with_audio: bool, train_aug: bool = False, seed: int = 0) -> DataLoader:
    """A deterministic loader over ``manifest`` (uniform clips, centre crop unless ``train_aug``)."""
    ds = AVClipDataset(
        manifest,
        data.spec(with_audio),
        ClipTransform(size=data.crop_size, train=train_aug),
        temporal="uniform" if data.clips_per_video > 1 else ("random" if train_aug else "center"),
        clips_per_video=data.clips_per_video,
        seed=seed,
        missing_audio=data.missing_audio,  # type: ignore[arg-type]
    )
    return DataLoader(
        ds, batch_size=data.batch_size, shuffle=False, num_workers=data.num_workers, collate_fn=collate_samples
    )


@torch.no_grad()
def extract_features(
    method: Method,
    loader: DataLoader,
    fn: Callable[[Method, dict], torch.Tensor],
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
    desc: str = "features",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn(method, batch) -> (B, D)`` to every clip and average per video.

    Returns ``features (N_videos, D)`` float32 in manifest order and ``labels (N_videos,)``.
    """
    method.eval()
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    labels: dict[int, int] = {}
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        with autocast(device, dtype):
            feats = fn(method, batch).float().cpu()
        for row, vid in enumerate(batch["index"].tolist()):
            sums[vid] = sums.get(vid, 0) + feats[row]
            counts[vid] = counts.get(vid, 0) + 1
            labels[vid] = int(batch["label"][row])
    order = sorted(sums)
    feats = torch.stack([sums[v] / counts[v] for v in order]).numpy().astype(np.float32)
    return feats, np.array([labels[v] for v in order], dtype=np.int64)


@torch.no_grad()
def recalibrate_batchnorm(method: Method, loader: DataLoader, fn: Callable[[Method, dict], torch.Tensor], *, device: torch.device, max_batches: int = 8) -> None:
    """Re-estimate BatchNorm running statistics (cumulative average) with forward passes.

    Used for the random-init baseline so that it is not handicapped by BN statistics that were
    never estimated (mean 0 / var 1 on un-normalised inputs).
    """
    bns = [m for m in method.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    method.train()
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        fn(method, batch)
    for bn, m in zip(bns, saved):
        bn.momentum = m
    method.eval()
