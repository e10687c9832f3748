"""Map-style audio-visual clip dataset with deterministic ``(seed, epoch, index)`` sampling.

A sample is a dict:
- ``video``: float ``(3, T, S, S)`` normalised clip,
- ``audio``: float ``(N,)`` mono waveform covering the same time span (``N = round(sec * sr)``),
- ``audio_mask``: bool scalar tensor, False when the audio is a stand-in (``missing_audio=silence``),
- ``label``: int64 class index (-1 when unlabelled), ``index``: dataset index actually used,
- ``start``: clip start in seconds, ``crop``: ``(x0, y0, x1, y1, flip)`` in source coordinates,
- ``skipped``: list of ``"path: reason"`` strings for samples replaced under ``on_error=skip``.

Bad input policy: ``on_error="raise"`` raises :class:`DataError` naming the file; ``"skip"``
replaces the sample by another (bounded retries) and reports it in ``skipped`` so the engine can
count and print it. ``missing_audio``: ``"error"`` | ``"skip"`` | ``"silence"`` (zeros *with*
``audio_mask=False``, never silent zeros by accident).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .io import probe, read_clip
from .manifest import Manifest
from .transforms import ClipTransform

__all__ = ["ClipSpec", "AVClipDataset", "MissingAudioError", "collate_samples"]


class MissingAudioError(DataError):
    """A video without an audio stream, for a method that needs audio."""


@dataclass(frozen=True)
class ClipSpec:
    """What one view looks like: ``num_frames`` at ``fps``, decoded at ``decode_size`` (H, W)."""

    num_frames: int = 16
    fps: float = 16.0
    sample_rate: int = 16000
    decode_size: tuple[int, int] | None = None
    with_audio: bool = True

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps


class AVClipDataset(Dataset):
    """One clip (video + co-located audio) per item; random start in training, centred in eval.

    ``clips_per_video > 1`` with ``temporal="uniform"`` yields evenly spaced clips (evaluation):
    item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``.
    """

    def __init__(
        self,
        manifest: Manifest,
        spec: ClipSpec,
        transform: ClipTransform,
        *,
        temporal: Literal["random", "center", "uniform"] = "random",
        clips_per_video: int = 1,
        seed: int = 0,
        on_error: Literal["raise", "skip"] = "raise",
        missing_audio: Literal["error", "skip", "silence"] = "error",
        max_retries: int = 10,
    ) -> None:
        if len(manifest) == 0:
            raise DataError(f"{manifest.source}: no videos to load")
        self.manifest = manifest
        self.spec = spec
        self.transform = transform
        self.temporal = temporal
        self.clips_per_video = clips_per_video if temporal == "uniform" else 1
        self.seed = seed
        self.on_error = on_error
        self.missing_audio = missing_audio
        self.max_retries = max_retries
        self.epoch = 0
        self._durations = (
            manifest.columns["duration"].astype(np.float64) if manifest.has_column("duration") else None
        )

    def __len__(self) -> int:
        return len(self.manifest) * self.clips_per_video

    def set_epoch(self, epoch: int) -> None:
        """Make random draws depend on the epoch (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def _timeline(self, vid: int, path: str) -> tuple[float, float]:
        """``(first frame time, duration)`` from the manifest's ``duration`` column or a probe."""
        if self._durations is not None and np.isfinite(self._durations[vid]) and self._durations[vid] > 0:
            return 0.0, float(self._durations[vid])
        info = probe(path)
        return info.video_start, info.duration

    def _start(self, rng: np.random.Generator, timeline: tuple[float, float], clip: int) -> float:
        origin, duration = timeline
        slack = max(0.0, duration - self.spec.seconds)
        if self.temporal == "random":
            return origin + float(rng.uniform(0.0, slack))
        if self.temporal == "center":
            return origin + slack / 2
        n = self.clips_per_video
        return origin + (slack * (clip + 0.5) / n if n > 1 else slack / 2)

    def load(self, item: int) -> dict[str, Any]:
        """Load one item without the error policy (raises DataError on bad input)."""
        vid, clip = divmod(item, self.clips_per_video)
        path = str(self.manifest.paths[vid])
        rng = np.random.default_rng([self.seed, self.epoch, item])
        start = self._start(rng, self._timeline(vid, path), clip)
        av_clip = read_clip(
            path,
            start,
            self.spec.num_frames,
            self.spec.fps,
            size=self.spec.decode_size,
            sample_rate=self.spec.sample_rate,
            read_audio=self.spec.with_audio,
        )
        frames = torch.from_numpy(np.ascontiguousarray(av_clip.frames))
        video, crop = self.transform(frames, rng)
        sample: dict[str, Any] = {
            "video": video,
            "label": torch.tensor(int(self.manifest.labels[vid]), dtype=torch.int64),
            "index": torch.tensor(vid, dtype=torch.int64),
            "clip": torch.tensor(clip, dtype=torch.int64),
            "start": torch.tensor(start, dtype=torch.float64),
            "crop": torch.tensor([crop.x0, crop.y0, crop.x1, crop.y1, float(crop.flip)], dtype=torch.float32),
        }
        if self.spec.with_audio:
            n = int(round(self.spec.seconds * self.spec.sample_rate))
            if av_clip.audio is None:
                if self.missing_audio == "silence":
                    sample["audio"] = torch.zeros(n)
                    sample["audio_mask"] = torch.tensor(False)
                else:
                    raise MissingAudioError(f"{path}: no audio stream (data.missing_audio={self.missing_audio!r})")
            else:
                audio = torch.from_numpy(np.ascontiguousarray(av_clip.audio[0, :n], dtype=np.float32))
                if audio.shape[0] < n:
                    audio = torch.nn.functional.pad(audio, (0, n - audio.shape[0]))
                sample["audio"] = audio
                sample["audio_mask"] = torch.tensor(True)
        return sample

    def __getitem__(self, item: int) -> dict[str, Any]:
        skipped: list[str] = []
        candidate = item
        for attempt in range(self.max_retries + 1):
            try:
                sample = self.load(candidate)
            except DataError as exc:
                skip_it = self.on_error == "skip" or (
                    isinstance(exc, MissingAudioError) and self.missing_audio == "skip"
                )
                if not skip_it:
                    raise
                skipped.append(str(exc))
                # Deterministic replacement: another item drawn from (seed, epoch, item, attempt).
                rng = np.random.default_rng([self.seed, self.epoch, item, attempt, 7919])
                candidate = int(rng.integers(0, len(self)))
                continue
            sample["skipped"] = skipped
            return sample
        raise DataError(
            f"{self.max_retries + 1} consecutive samples failed to load (data.on_error=skip); "
            f"the dataset looks broken. Last errors: {skipped[-3:]}"
        )


def collate_samples(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of a list of samples; concatenate the ``skipped`` lists."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if key == "skipped":
            out[key] = [s for v in values for s in v]
        elif isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        else:
            out[key] = values
    return out
