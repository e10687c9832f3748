"""Per-frame local features over whole videos, and the segment / frame labelling rules.

Event localisation, temporal action localisation, the fine-grained temporal task and deepfake
detection look at a video's whole timeline rather than at one clip. A video of ``F`` frames
(``F = floor(duration * fps)`` at the evaluation fps) is tiled with consecutive, non-overlapping
windows of ``clip_frames`` frames starting at ``0, clip_frames / fps, ...`` (the last window
repeats the last frame / pads the audio past the end; those steps are dropped): the items of
:class:`~glocal.data.eval_samplers.WindowSampler` on the evaluation dataset. Each window is
centre-cropped like every evaluation clip and passed through the method's per-step hooks:

* ``"video"``: ``method.local_video_features(video)`` — the local (fast) pathway, no audio;
* ``"video_av"``: ``method.local_video_features(video, audio)`` — audio-visually pooled;
* ``"audio"``: ``method.local_audio_features(audio, T)``;

all ``(B, D, T)``; the windows are concatenated back into ``(D, F)`` per video.

Segment labelling rule (event localisation, documented in docs/evaluation.md): a segment
``[a, b)`` is an *event* segment when some annotated event ``[s, e]`` overlaps it by at least half
of the shorter of the two, ``|[a, b) ∩ [s, e]| >= 0.5 * min(b - a, e - s)`` (a zero-length event
counts when ``a <= s < b``). For long events (AVE) this is "the event covers at least half of the
segment"; for events shorter than the segment it is "at least half of the event lies inside it".
Frame labels (temporal action localisation) use the same rule with ``[k / fps, (k + 1) / fps)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from ..data.eval_samplers import WindowSampler, frame_counts, video_durations
from ..data.manifest import Manifest
from ..errors import DataError
from ..methods import Method
from ..runtime.precision import autocast
from .context import EvalContext
from .features import eval_dataset, eval_loader, to_device

__all__ = [
    "Timeline",
    "extract_timeline",
    "segment_bounds",
    "frame_bounds",
    "label_segments",
    "pool_segments",
    "LOCAL_KINDS",
]


def _local_video(method: Method, batch: dict) -> torch.Tensor:
    return method.local_video_features(batch["clip/video"])


def _local_video_av(method: Method, batch: dict) -> torch.Tensor:
    return method.local_video_features(batch["clip/video"], batch["clip/audio"])


def _local_audio(method: Method, batch: dict) -> torch.Tensor:
    return method.local_audio_features(batch["clip/audio"], int(batch["clip/video"].shape[2]))


#: kind → (hook ``(method, batch) -> (B, D, T)``, needs audio)
LOCAL_KINDS: dict[str, tuple[Callable[[Method, dict], torch.Tensor], bool]] = {
    "video": (_local_video, False),
    "video_av": (_local_video_av, True),
    "audio": (_local_audio, True),
}


@dataclass
class Timeline:
    """Per-frame features of a list of videos.

    ``features[kind][v]`` is ``(D, num_frames[v])`` float32; frame ``k`` is shown at ``k / fps``.
    """

    features: dict[str, list[np.ndarray]]
    num_frames: np.ndarray
    durations: np.ndarray
    fps: float
    paths: np.ndarray

    def stacked(self, kinds: list[str], vid: int) -> np.ndarray:
        """Concatenation over ``kinds`` of video ``vid``'s features: ``(sum D, F)``."""
        return np.concatenate([self.features[k][vid] for k in kinds], axis=0)


@torch.no_grad()
def extract_timeline(method: Method, ctx: EvalContext, manifest: Manifest, kinds: list[str],
                     desc: str = "local features") -> Timeline:
    """Per-frame features of every video in ``manifest`` for each of ``kinds`` (cached per model).

    Kinds listed in ``ctx.timeline_prefetch`` (set by the suite to what the other tasks of the run
    will ask for) are computed in the same pass over the dataset's own manifest, so each window is
    decoded once. Raises ``NotImplementedError`` when the method has no per-step hooks.
    """
    for k in kinds:
        if k not in LOCAL_KINDS:
            raise ValueError(f"unknown local feature kind {k!r}; known: {sorted(LOCAL_KINDS)}")
    ident = (id(method), "timeline", manifest.source, hash(tuple(manifest.paths.tolist())), ctx.data)
    todo = [k for k in kinds if (*ident, k) not in ctx.cache]
    if todo and manifest.source == ctx.manifest_source:
        extra = [k for k in ctx.timeline_prefetch if k not in kinds and (*ident, k) not in ctx.cache]
        # audio kinds only where every file was checked for an audio track (not for a video-only task)
        todo += [k for k in extra if not LOCAL_KINDS[k][1] or ("audio" in method.modalities and "audio" in ctx.needs)]
    if todo:
        with_audio = any(LOCAL_KINDS[k][1] for k in todo)
        t = ctx.data.clip_frames
        durations = video_durations(manifest)
        num_frames = frame_counts(durations, ctx.data.fps)
        windows = WindowSampler(t, ctx.data.fps, num_frames, with_audio=with_audio)
        loader = eval_loader(eval_dataset(manifest, ctx.data, windows, with_audio=with_audio), ctx.data)
        buffers: dict[str, list[np.ndarray | None]] = {k: [None] * len(manifest) for k in todo}
        method.eval()
        for batch in tqdm(loader, desc=desc, disable=not ctx.progress, leave=False):
            batch = to_device(batch, ctx.device)
            for kind in todo:
                with autocast(ctx.device, ctx.dtype):
                    feats = LOCAL_KINDS[kind][0](method, batch).float().cpu().numpy()  # (B, D, T)
                if feats.ndim != 3 or feats.shape[2] != t:
                    raise ValueError(f"local features '{kind}' must be (B, D, {t}); got {feats.shape}")
                for row, (vid, w) in enumerate(zip(batch["index"].tolist(), batch["target/window"].tolist())):
                    buf = buffers[kind][vid]
                    if buf is None:
                        shape = (feats.shape[1], windows.parts(vid) * t)
                        buf = buffers[kind][vid] = np.zeros(shape, dtype=np.float32)
                    buf[:, w * t:(w + 1) * t] = feats[row]
        for kind in todo:
            ctx.cache[(*ident, kind)] = (
                [b[:, : int(n)] for b, n in zip(buffers[kind], num_frames)],  # type: ignore[index]
                num_frames,
                durations,
            )
    feats = {k: ctx.cache[(*ident, k)][0] for k in kinds}
    _, num_frames, durations = ctx.cache[(*ident, kinds[0])]
    return Timeline(feats, num_frames, durations, ctx.data.fps, manifest.paths)


# --------------------------------------------------------------------------------------------------
# segments
# --------------------------------------------------------------------------------------------------
def segment_bounds(duration: float, seconds: float) -> np.ndarray:
    """``(S, 2)`` consecutive ``[j * seconds, (j + 1) * seconds)`` fully inside ``[0, duration]``."""
    if not seconds > 0:
        raise ValueError(f"segment length must be > 0; got {seconds!r}")
    n = int(np.floor(duration / seconds + 1e-6))
    starts = np.arange(n, dtype=np.float64) * seconds
    return np.stack([starts, starts + seconds], axis=1) if n else np.zeros((0, 2))


def frame_bounds(num_frames: int, fps: float) -> np.ndarray:
    """``(F, 2)`` display intervals ``[k / fps, (k + 1) / fps)`` of the frames."""
    k = np.arange(int(num_frames), dtype=np.float64)
    return np.stack([k / fps, (k + 1) / fps], axis=1)


def label_segments(bounds: Any, events: Any) -> np.ndarray:
    """Event (True) / background (False) label of each segment (rule in the module docstring).

    Args:
        bounds: ``(S, 2)`` segment ``[start, end)`` in seconds.
        events: ``(E, 2)`` event ``[onset, offset]`` in seconds (``E`` may be 0).

    Returns:
        ``(S,)`` bool.
    """
    b = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)
    e = np.asarray(events, dtype=np.float64).reshape(-1, 2)
    if e.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros(b.shape[0], dtype=bool)
    if (e[:, 1] < e[:, 0]).any():
        raise DataError("an event's offset precedes its onset")
    a0, a1 = b[:, 0:1], b[:, 1:2]  # (S, 1)
    s, t = e[None, :, 0], e[None, :, 1]  # (1, E)
    overlap = np.clip(np.minimum(a1, t) - np.maximum(a0, s), 0.0, None)
    need = 0.5 * np.minimum(a1 - a0, t - s)
    hit = np.where(t - s > 0, overlap >= need - 1e-9, (a0 <= s) & (s < a1))
    return hit.any(axis=1)


def pool_segments(features: np.ndarray, fps: float, bounds: np.ndarray) -> np.ndarray:
    """Mean per-frame features inside each segment.

    Frame ``k`` belongs to the segment that contains its midpoint ``(k + 0.5) / fps``; a segment
    without any frame midpoint (shorter than a frame) takes the frame under its centre.

    Args:
        features: ``(D, F)``; fps: frames per second; bounds: ``(S, 2)``.

    Returns:
        ``(S, D)``.
    """
    d, f = features.shape
    mid = (np.arange(f) + 0.5) / fps
    out = np.empty((bounds.shape[0], d), dtype=np.float32)
    for j, (a, b) in enumerate(bounds):
        inside = (mid >= a) & (mid < b)
        if inside.any():
            out[j] = features[:, inside].mean(axis=1)
        else:
            out[j] = features[:, min(f - 1, int(np.floor((a + b) / 2 * fps)))]
    return out
