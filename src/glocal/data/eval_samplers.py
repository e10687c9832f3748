"""The evaluation protocols' samples as part samplers of :class:`~glocal.data.dataset.MultiViewDataset`.

Every protocol reads the one dataset (one decode per sample, the bad-input and missing-audio
policies, the decoder-thread policy) and the one sample schema, with a single view ``"clip"``:

==========================  ===========================================================
sampler                      items (:class:`~glocal.data.views.PartSampler` parts)
==========================  ===========================================================
MultiClipSampler             ``n`` uniformly spaced clips per video (:mod:`glocal.data.samplers`;
                             linear / kNN / retrieval / localisation / fine-tuning)
WindowSampler                consecutive windows tiling each video from t = 0 (event, temporal,
                             TAL, deepfake); target ``window``
CentreClipSampler            the centre clip of each video, with the source an edit needs
                             (fingerprinting; the edit is the dataset's ``av_transforms``)
AudioTrackSampler            the whole audio track of each file (sound classification, with
                             :class:`UniformCrops` as its audio transform and ``timeline="audio"``)
==========================  ===========================================================

The windows and the centre clip sit on the timeline the labels use: frame ``k`` of a video is at
``k / fps`` from t = 0, and a video lasts :func:`video_durations` (the manifest's ``duration``
column, else the probed media duration), known before any file is decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .io import probe
from .manifest import Manifest
from .samplers import clip_view
from .views import SamplePlan, ViewRequest

__all__ = ["video_durations", "frame_counts", "WindowSampler", "CentreClipSampler", "AudioTrackSampler",
           "UniformCrops"]


def video_durations(manifest: Manifest) -> np.ndarray:
    """Durations ``(N,)`` in seconds: the manifest's ``duration`` column where valid, else probed."""
    col = manifest.columns.get("duration")
    out = np.empty(len(manifest), dtype=np.float64)
    for i, path in enumerate(manifest.paths.tolist()):
        value = float("nan")
        if col is not None:
            try:
                value = float(col[i])
            except ValueError:
                value = float("nan")
        if not (np.isfinite(value) and value > 0):
            value = probe(path).duration
        out[i] = value
    return out


def frame_counts(durations: np.ndarray, fps: float) -> np.ndarray:
    """Frames ``F = max(1, floor(duration * fps))`` of each video at ``fps``: int64 ``(N,)``."""
    return np.maximum(1, np.floor(np.asarray(durations, dtype=np.float64) * fps + 1e-6).astype(np.int64))


@dataclass(frozen=True, eq=False)
class WindowSampler:
    """Consecutive, non-overlapping windows of ``num_frames`` frames tiling each video.

    ``frames[v]`` (int64 ``(N,)``, e.g. :func:`frame_counts`) is video ``v``'s length in frames at
    ``fps``; it has ``ceil(frames[v] / num_frames)`` windows. Window ``w`` shows the frames at
    ``(w * num_frames + k) / fps``, ``k < num_frames`` (past the end the last frame repeats), with the
    co-located audio ``(w * num_frames / fps, num_frames / fps)`` (zero-padded past the end);
    target ``window = w``.
    """

    num_frames: int
    fps: float
    frames: np.ndarray
    with_audio: bool = True

    def parts(self, video: int) -> int:
        return -(-int(self.frames[video]) // self.num_frames)

    def plan_part(self, video: int, part: int, origin: float, duration: float, fps: float) -> SamplePlan:
        start = part * self.num_frames / self.fps
        view = clip_view("clip", start, self.num_frames, self.fps, self.with_audio, None, "clip")
        return SamplePlan([view], {"window": part})


@dataclass(frozen=True, eq=False)
class CentreClipSampler:
    """The centre clip of each video, as the source of an edit.

    The clip of ``num_frames`` frames at ``fps`` starts at ``max(0, (durations[v] - num_frames / fps) / 2)``;
    the view asks for ``ceil(num_frames * span)`` frames from there and their audio, the source an
    edit needs to return ``num_frames`` frames (``span`` 1.25 for a 1.25x speed-up, 1 otherwise).
    With ``seed = (base, stream)`` the view's edit draws come from ``default_rng((base, v, stream))``.
    """

    num_frames: int
    fps: float
    durations: np.ndarray
    span: float = 1.0
    with_audio: bool = True
    transform: str = "clip"
    seed: tuple[int, int] | None = None

    def parts(self, video: int) -> int:
        return 1

    def plan_part(self, video: int, part: int, origin: float, duration: float, fps: float) -> SamplePlan:
        start = max(0.0, (float(self.durations[video]) - self.num_frames / self.fps) / 2)
        source = int(math.ceil(self.num_frames * self.span))
        times = start + np.arange(source, dtype=np.float64) / self.fps
        audio = (start, source / self.fps) if self.with_audio else None
        seed = None if self.seed is None else (self.seed[0], int(video), self.seed[1])
        return SamplePlan([ViewRequest("clip", times, audio=audio, transform=self.transform, seed=seed)])


@dataclass(frozen=True)
class AudioTrackSampler:
    """The whole audio track of each file as the audio-only view ``"clip"``: ``audio = (origin, duration)``
    (with the dataset's ``timeline="audio"``: from t = 0 to the end of the audio stream)."""

    transform: str = "clip"

    def parts(self, video: int) -> int:
        return 1

    def plan_part(self, video: int, part: int, origin: float, duration: float, fps: float) -> SamplePlan:
        return SamplePlan([ViewRequest("clip", np.zeros(0), audio=(origin, duration), transform=self.transform)])


@dataclass(frozen=True)
class UniformCrops:
    """Audio transform: ``crops`` windows of ``num_samples`` uniformly spaced over a waveform.

    ``(N,)`` -> ``(crops, num_samples)``: with ``slack = max(0, N - num_samples)`` crop ``j`` starts at
    sample ``round(slack * (j + 0.5) / crops)`` (``slack // 2`` for one crop); zeros past the end.
    No random draws.
    """

    num_samples: int
    crops: int = 1

    def __call__(self, wave: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, None]:
        n, c = self.num_samples, max(1, int(self.crops))
        slack = max(0, int(wave.shape[0]) - n)
        out = torch.zeros(c, n, dtype=wave.dtype)
        for j in range(c):
            start = int(round(slack * (j + 0.5) / c)) if c > 1 else slack // 2
            seg = wave[start:start + n]
            out[j, : seg.shape[0]] = seg
        return out, None
