"""Frozen-feature extraction shared by every evaluation protocol, and the evaluation datasets.

Every protocol reads :class:`~glocal.data.dataset.MultiViewDataset` samples of one view ``"clip"``
(``"clip/video"`` float ``(B, 3, T, S, S)``, ``"clip/audio"`` ``(B, N)``, ...; a part sampler of
:mod:`glocal.data.eval_samplers` says which clips), centre-cropped, collated by
:func:`~glocal.data.dataset.collate_samples`. Features are computed in eval mode, without
gradients, over ``clips_per_video`` uniformly spaced clips per video and averaged per video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.config import SAMPLE_RATE
from ..data.dataset import AVTransform, AudioTransform, MultiViewDataset, collate_samples
from ..data.io import SizeSpec
from ..data.manifest import Manifest
from ..data.samplers import ContiguousClipSampler, MultiClipSampler
from ..data.transforms import ClipTransform
from ..data.views import PartSampler, ViewSampler
from ..methods import Method
from ..runtime.precision import autocast

__all__ = ["EvalData", "eval_dataset", "eval_loader", "make_loader", "to_device", "extract_features",
           "recalibrate_batchnorm"]


@dataclass(frozen=True)
class EvalData:
    """How evaluation clips are drawn (matching the pretraining clip geometry by default)."""

    clip_frames: int
    fps: float
    crop_size: int
    sample_rate: int = SAMPLE_RATE
    decode_size: int | None = None
    clips_per_video: int = 1
    batch_size: int = 32
    num_workers: int = 2
    missing_audio: str = "error"

    @property
    def decode_shape(self) -> SizeSpec:
        """The decoder's output size: ``(decode_size, decode_size)``, or None (native)."""
        return (self.decode_size, self.decode_size) if self.decode_size else None


def eval_dataset(
    manifest: Manifest,
    data: EvalData,
    sampler: ViewSampler | PartSampler,
    *,
    with_audio: bool,
    train_aug: bool = False,
    seed: int = 0,
    audio_transforms: dict[str, AudioTransform] | None = None,
    av_transforms: dict[str, AVTransform] | None = None,
    timeline: Literal["video", "audio"] = "video",
    missing_audio: str | None = None,
) -> MultiViewDataset:
    """The dataset of ``sampler``'s ``"clip"`` views at ``data``'s decode size and sample rate (centre
    crop unless ``train_aug``); bad files raise (unusable ones were left out up front, see
    :mod:`glocal.eval.usable`); ``missing_audio`` defaults to ``data.missing_audio``."""
    return MultiViewDataset(
        manifest, sampler, {"clip": ClipTransform(size=data.crop_size, train=train_aug)},
        audio_transforms=audio_transforms, av_transforms=av_transforms, timeline=timeline, size=data.decode_shape,
        sample_rate=data.sample_rate, seed=seed, with_audio=with_audio,
        missing_audio=(missing_audio or data.missing_audio),  # type: ignore[arg-type]
    )


def eval_loader(dataset: MultiViewDataset, data: EvalData, batch_size: int | None = None) -> DataLoader:
    """Items in order, ``data.batch_size`` (or ``batch_size``) at a time, collated by :func:`collate_samples`."""
    return DataLoader(dataset, batch_size=batch_size or data.batch_size, shuffle=False, num_workers=data.num_workers,
                      collate_fn=collate_samples)


def make_loader(manifest: Manifest, data: EvalData, *, with_audio: bool, train_aug: bool = False, seed: int = 0) -> DataLoader:
    """A deterministic loader over ``manifest``: ``clips_per_video`` uniformly spaced clips per video
    (one centred clip; with ``train_aug`` and one clip: a random start and training augmentation)."""
    sampler: ViewSampler | PartSampler
    if train_aug and data.clips_per_video == 1:
        sampler = ContiguousClipSampler(data.clip_frames, data.fps, temporal="random", with_audio=with_audio)
    else:
        sampler = MultiClipSampler(data.clips_per_video, data.clip_frames, data.fps, with_audio=with_audio)
    return eval_loader(eval_dataset(manifest, data, sampler, with_audio=with_audio, train_aug=train_aug, seed=seed),
                       data)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """``batch`` with its tensors on ``device`` (other entries, e.g. ``skipped``, as they are)."""
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


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
        batch = to_device(batch, device)
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
        fn(method, to_device(batch, device))
    for bn, m in zip(bns, saved):
        bn.momentum = m
    method.eval()
