"""Online kNN monitor: representation quality while pretraining (solo-learn style health signal).

Every ``train.monitor_every_epochs`` epochs rank 0 extracts frozen features (eval mode, centre
clip, centre crop, the pretraining clip geometry) of up to ``train.monitor_max_videos`` labelled
videos of two splits of the training manifest — a bank (``train.monitor_bank_split``, default
``train``) and queries (``train.monitor_query_split``, default ``val``) — and reports the
cosine-kNN top-1 accuracy of the queries (``knn_top1`` in ``epochs.csv``; selects ``best.pt`` with
``train.best_metric=auto``). Video features for methods with a video encoder, else audio.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.formats import load_manifest
from ..data.manifest import Manifest
from ..errors import ConfigError
from ..eval.features import EvalData, extract_features, make_loader
from ..eval.probes import knn_classify
from ..methods import Method
from .config import PretrainConfig
from .online_probe import OnlineProbe

__all__ = ["KNNMonitor"]


def _labelled_subset(manifest: Manifest, split: str, max_videos: int, key: str) -> Manifest:
    part = manifest.split(split)
    part = part.select(part.labels >= 0)
    if len(part) == 0:
        raise ConfigError(f"{key}={split!r}: the split has no labelled videos for the kNN monitor")
    if len(part) > max_videos:
        keep = np.zeros(len(part), dtype=bool)
        keep[np.linspace(0, len(part) - 1, max_videos).round().astype(int)] = True
        part = part.select(keep)
    return part


class KNNMonitor:
    """kNN top-1 of frozen features; build once (validates the splits), call :meth:`run` per check."""

    def __init__(self, cfg: PretrainConfig, modalities: tuple[str, ...], device: torch.device,
                 dtype: torch.dtype | None) -> None:
        t, d = cfg.train, cfg.data
        # the same layout / deny-list handling as the pretraining data (data.format, data.deny_list)
        manifest = load_manifest(d.root, getattr(d, "format", "auto"), manifest=d.manifest,
                                 deny_list=getattr(d, "deny_list", None))
        self.bank = _labelled_subset(manifest, t.monitor_bank_split, t.monitor_max_videos, "train.monitor_bank_split")
        self.query = _labelled_subset(manifest, t.monitor_query_split, t.monitor_max_videos,
                                      "train.monitor_query_split")
        self.modality = "video" if "video" in modalities else "audio"
        self.data = EvalData(
            clip_frames=d.clip_frames, fps=d.fps, crop_size=d.crop_size, sample_rate=d.sample_rate,
            decode_size=d.decode_size, batch_size=t.batch_size, num_workers=d.num_workers,
            missing_audio="silence" if d.missing_audio == "silence" else "error",
        )
        self.k, self.seed = t.monitor_k, t.seed
        self.device, self.dtype = device, dtype

    def _features(self, method: Method, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
        loader = make_loader(manifest, self.data, with_audio=self.modality == "audio", seed=self.seed)
        if self.modality == "video":
            return extract_features(method, loader, lambda m, b: m.video_features(b["clip/video"]), device=self.device,
                                    dtype=self.dtype, progress=False)
        return extract_features(method, loader, lambda m, b: m.audio_features(b["clip/audio"]), device=self.device,
                                dtype=self.dtype, progress=False)

    def run(self, method: Method, probe: "OnlineProbe | None" = None) -> dict[str, float]:
        """``{"knn_top1": accuracy}`` (+ ``probe_val_top1``: the online linear probe on the same
        query features, when ``probe`` is given and has been trained on video features); leaves
        ``method`` in train mode."""
        was_training = method.training
        try:
            bank_x, bank_y = self._features(method, self.bank)
            query_x, query_y = self._features(method, self.query)
        finally:
            method.train(was_training)
        out = {"knn_top1": knn_classify(bank_x, bank_y, query_x, query_y, k=self.k)["top1"]}
        if probe is not None and self.modality == "video":
            top1 = probe.top1(query_x, query_y)
            if top1 is not None:
                out["probe_val_top1"] = top1
        return out
