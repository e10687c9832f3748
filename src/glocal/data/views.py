"""The multi-view sample description shared by every method's data pipeline.

A method's :class:`ViewSampler` looks at one video's timeline and returns a :class:`SamplePlan`:
the views to cut (:class:`ViewRequest`) and the pretext targets (speed labels, 3-D boxes, order).
:class:`~glocal.data.dataset.MultiViewDataset` decodes the *union* of all views' windows once per
sample and cuts every view from it, so adding views costs transforms, not decodes.

Conventions
-----------
- Times are seconds on the file's own timeline (the first frame is at ``origin``, normally 0).
  ``ViewRequest.times[k]`` asks for the frame *on screen* at that time; any order is allowed (a
  reversed clip simply lists its times in descending order) and repeats are allowed (a time past
  the last frame repeats the last frame).
- ``audio=(start, duration)`` is the co-located audio window *before* any speed change; with
  ``audio_speed = s`` the window is resampled to ``duration / s`` seconds (tempo and pitch change
  together) and with ``reverse_audio`` it is time-reversed afterwards. Audio starts are rounded
  to the dataset's sample grid (less than half a sample).
- ``region_of`` / ``region``: the view's spatial crop is the box ``region = (x0, y0, x1, y1)``,
  normalised to ``[0, 1]`` in the *displayed* (cropped, possibly flipped) frame of the view
  ``region_of``; the view inherits that view's flip so its pixels are exactly that region (its
  photometric augmentation is drawn independently). The parent must not be a per-frame view.
- ``transform`` names an entry of the dataset's video transform dict (and, if present, of its
  audio transform dict).
- ``targets`` values become tensors ``"target/{key}"`` in the sample: Python ints -> int64,
  floats -> float32, numpy arrays keep integer dtypes and become float32 otherwise.
- ``seed`` fixes the draws of the view's audio-visual edit (the dataset's ``av_transforms``, e.g. a
  fingerprinting edit seeded by ``(seed, video, edit)``); None draws them from the dataset's
  ``(seed, epoch, index)`` generators like every other transform.

A :class:`ViewSampler` plans one sample per video from a seeded generator (training). A
:class:`PartSampler` fixes the samples up front (evaluation): ``parts(video)`` samples of each
video, each planned without randomness (uniform clips, sliding windows, a centre clip, an audio
track).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["ViewRequest", "SamplePlan", "ViewSampler", "PartSampler", "validate_plan"]


@dataclass(frozen=True, eq=False)
class ViewRequest:
    """One view of a sample (see the module docstring for the conventions).

    Immutable; compared by identity (``times`` is an array, so field-wise ``==`` is undefined).

    name: unique within a sample (``"clip"``, ``"global"``, ``"local0"``, ``"a"``, ``"q0"`` ...).
    times: float64 ``(T,)`` seconds on the file timeline; ``T = 0`` for an audio-only view.
    audio: ``(start, duration)`` seconds of co-located audio, or None for no audio.
    audio_speed: > 1 plays the audio window faster (resampled to ``duration / audio_speed`` s).
    reverse_audio: time-reverse the (speed-changed) audio.
    transform: key of the dataset's transform dicts.
    region_of: name of another view whose crop contains this view's crop, or None.
    region: ``(x0, y0, x1, y1)`` normalised in ``region_of``'s displayed crop (with ``region_of``).
    seed: seed sequence of the view's audio-visual edit draws, or None (the dataset's generators).
    """

    name: str
    times: np.ndarray
    audio: tuple[float, float] | None = None
    audio_speed: float = 1.0
    reverse_audio: bool = False
    transform: str = "clip"
    region_of: str | None = None
    region: tuple[float, float, float, float] | None = None
    seed: tuple[int, ...] | None = None


@dataclass
class SamplePlan:
    """The views of one sample plus its targets (e.g. ``{"order": 2, "boxes": (N, 6) array}``)."""

    views: list[ViewRequest]
    targets: dict[str, float | int | np.ndarray] = field(default_factory=dict)

    def view(self, name: str) -> ViewRequest:
        """The view called ``name`` (KeyError if absent)."""
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(f"no view named {name!r} in this plan (views: {[v.name for v in self.views]})")


@runtime_checkable
class ViewSampler(Protocol):
    """Draws the views of one sample from a video's timeline with the given seeded ``rng``.

    origin: time of the first frame (s); duration: length of the usable video (s); fps: the
    video's native frame rate (used by samplers that index frames, e.g. TSN segments).
    """

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        ...


@runtime_checkable
class PartSampler(Protocol):
    """Samples fixed up front: ``parts(video)`` samples of manifest row ``video``, part ``p`` planned by
    ``plan_part(video, p, origin, duration, fps)`` (the timeline as for :class:`ViewSampler`).

    A dataset given a part sampler has one item per ``(video, part)``, videos in manifest order.
    """

    def parts(self, video: int) -> int:
        ...

    def plan_part(self, video: int, part: int, origin: float, duration: float, fps: float) -> SamplePlan:
        ...


def validate_plan(plan: SamplePlan) -> list[ViewRequest]:
    """Check a plan and return its views ordered so that every ``region_of`` parent comes first.

    Raises ValueError for duplicate names, a view with neither frames nor audio, a bad
    ``region`` box, an unknown ``region_of`` or a cycle, and a non-positive ``audio_speed``.
    """
    names = [v.name for v in plan.views]
    if len(set(names)) != len(names):
        raise ValueError(f"view names must be unique, got {names}")
    by_name = {v.name: v for v in plan.views}
    for v in plan.views:
        times = np.asarray(v.times)
        if times.ndim != 1:
            raise ValueError(f"view {v.name!r}: times must be (T,), got shape {times.shape}")
        if times.size == 0 and v.audio is None:
            raise ValueError(f"view {v.name!r} asks for neither frames nor audio")
        if not v.audio_speed > 0:
            raise ValueError(f"view {v.name!r}: audio_speed must be > 0, got {v.audio_speed}")
        if (v.region_of is None) != (v.region is None):
            raise ValueError(f"view {v.name!r}: region_of and region go together")
        if v.region_of is not None:
            if v.region_of not in by_name:
                raise ValueError(f"view {v.name!r}: region_of={v.region_of!r} is not a view of this plan")
            x0, y0, x1, y1 = v.region  # type: ignore[misc]
            if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
                raise ValueError(
                    f"view {v.name!r}: region {v.region} must satisfy 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1"
                )
            if times.size == 0:
                raise ValueError(f"view {v.name!r}: an audio-only view cannot have a region")
    ordered: list[ViewRequest] = []
    placed: set[str] = set()
    pending = list(plan.views)
    while pending:
        ready = [v for v in pending if v.region_of is None or v.region_of in placed]
        if not ready:
            raise ValueError(f"region_of forms a cycle among {[v.name for v in pending]}")
        for v in ready:
            ordered.append(v)
            placed.add(v.name)
        pending = [v for v in pending if v.name not in placed]
    return ordered
