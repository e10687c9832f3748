"""View samplers (methods.md 7.2): each turns a video's timeline into a :class:`SamplePlan`.

Every sampler is a small frozen dataclass with ``plan(rng, origin, duration, fps)``; all
randomness comes from the seeded ``rng`` the dataset passes in (seeded by ``(seed, epoch,
index)``), so a sample is reproducible. ``origin`` is the first frame's time, ``duration`` the
usable video length and ``fps`` the file's native frame rate, all in seconds / Hz. A frame at
time ``t`` stands for ``[t, t + dt)`` where ``dt`` is the view's frame spacing, so a clip of
``T`` frames spaced ``dt`` spans ``T * dt`` seconds.

==========================  ===========================================================
sampler                      views (transform key) and targets
==========================  ===========================================================
ContiguousClipSampler        ``"clip"`` (``"clip"``): ``T`` frames at ``fps`` + co-located audio
                             (GLCM: slow = every k-th frame, taken inside the model)
PairSampler                  ``"a"``, ``"b"`` (``"clip"``): two clips, independent starts
MultiClipSampler             ``"clip"`` (``"clip"``): ``n`` uniformly spaced clips, one item
                             each (eval; a part sampler, see :mod:`glocal.data.eval_samplers`)
SegmentSampler               ``"k{i}"``, ``"q{i}"`` (``"frame"``): 1-frame views, two distinct
                             draws per TSN segment (VCLR); targets ``k_index``, ``q_index``
UniformFrameSampler          ``"clip"`` (``"clip"``): ``n`` frames at a rounded linspace
GlobalLocalSampler           ``"global"`` (``"global"``) + ``"local{i}"`` (``"local"``) with
                             ``region_of="global"``; targets ``boxes`` ``(n_local, 6)`` and
                             ``order`` (CtrlAug)
SpeedDirectionSampler        ``"a"``, ``"b"`` (``"clip"``): frame skip ``2**s``, optional
                             reversal, audio resampled by ``2**s``; targets ``speed_a``,
                             ``speed_b``, ``dir_a``, ``dir_b``, ``order_ab``, ``overlap_ab`` (AVTS)
==========================  ===========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from .config import FPS
from .controllable import place_at_iou
from .views import SamplePlan, ViewRequest

__all__ = [
    "ContiguousClipSampler",
    "PairSampler",
    "MultiClipSampler",
    "SegmentSampler",
    "UniformFrameSampler",
    "GlobalLocalSampler",
    "SpeedDirectionSampler",
    "clip_start",
    "clip_view",
]


def clip_start(
    rng: np.random.Generator | None,
    origin: float,
    duration: float,
    span: float,
    temporal: Literal["random", "center"] = "random",
) -> float:
    """Start time of a window of ``span`` seconds inside ``[origin, origin + duration]``.

    ``"random"``: uniform over the slack; ``"center"``: centred. A window longer than the video
    starts at ``origin`` (its tail repeats the last frame).
    """
    slack = max(0.0, duration - span)
    if temporal == "random":
        if rng is None:
            raise ValueError("temporal='random' needs an rng")
        return origin + float(rng.uniform(0.0, slack)) if slack > 0 else origin
    if temporal == "center":
        return origin + slack / 2
    raise ValueError(f"temporal must be 'random' or 'center', got {temporal!r}")


def clip_view(
    name: str,
    start: float,
    num_frames: int,
    fps: float,
    with_audio: bool,
    audio_duration: float | None,
    transform: str,
) -> ViewRequest:
    """``num_frames`` frames at ``start + k / fps``; audio centred on the clip's span."""
    span = num_frames / fps
    times = start + np.arange(num_frames, dtype=np.float64) / fps
    audio = None
    if with_audio:
        dur = span if audio_duration is None else float(audio_duration)
        audio = (start + (span - dur) / 2, dur)
    return ViewRequest(name, times, audio=audio, transform=transform)


def _check_positive(**values: float) -> None:
    for key, v in values.items():
        if not v > 0:
            raise ValueError(f"{key} must be > 0, got {v}")


@dataclass(frozen=True)
class ContiguousClipSampler:
    """One clip of ``num_frames`` consecutive frames at ``fps`` plus co-located audio (GLCM).

    ``temporal``: ``"random"`` start (training) or ``"center"``. ``audio_duration``: seconds of
    audio centred on the clip's span (default: exactly the span, ``num_frames / fps``).
    """

    num_frames: int
    fps: float
    temporal: Literal["random", "center"] = "random"
    with_audio: bool = True
    name: str = "clip"
    transform: str = "clip"
    audio_duration: float | None = None

    def __post_init__(self) -> None:
        _check_positive(num_frames=self.num_frames, fps=self.fps)

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        start = clip_start(rng, origin, duration, self.num_frames / self.fps, self.temporal)
        view = clip_view(
            self.name, start, self.num_frames, self.fps, self.with_audio, self.audio_duration, self.transform
        )
        return SamplePlan([view], {})


@dataclass(frozen=True)
class PairSampler:
    """Two clips ``names`` of the same video with independent random starts (SimCLR/MoCo/AVID)."""

    num_frames: int
    fps: float
    with_audio: bool = True
    names: tuple[str, str] = ("a", "b")
    transform: str = "clip"
    audio_duration: float | None = None

    def __post_init__(self) -> None:
        _check_positive(num_frames=self.num_frames, fps=self.fps)

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        span = self.num_frames / self.fps
        views = [
            clip_view(n, clip_start(rng, origin, duration, span), self.num_frames, self.fps,
                       self.with_audio, self.audio_duration, self.transform)
            for n in self.names
        ]
        return SamplePlan(views, {})


@dataclass(frozen=True)
class MultiClipSampler:
    """``n_clips`` uniformly spaced clips per video (evaluation), a :class:`~glocal.data.views.PartSampler`:
    part ``i`` is clip ``i`` as the single view ``name``.

    Clip ``i`` starts at ``origin + slack * (i + 0.5) / n`` (the centre clip when ``n == 1``),
    ``slack = max(0, duration - num_frames / fps)``.
    """

    n_clips: int
    num_frames: int
    fps: float
    with_audio: bool = True
    name: str = "clip"
    transform: str = "clip"
    audio_duration: float | None = None

    def __post_init__(self) -> None:
        _check_positive(n_clips=self.n_clips, num_frames=self.num_frames, fps=self.fps)

    def start(self, clip: int, origin: float, duration: float) -> float:
        """Start time of clip ``clip``."""
        slack = max(0.0, duration - self.num_frames / self.fps)
        return origin + slack * (clip + 0.5) / self.n_clips

    def parts(self, video: int) -> int:
        """Clips per video."""
        return self.n_clips

    def plan_part(self, video: int, part: int, origin: float, duration: float, fps: float) -> SamplePlan:
        """Clip ``part``, as the view ``name``."""
        if not 0 <= part < self.n_clips:
            raise ValueError(f"part must be in [0, {self.n_clips}), got {part}")
        start = self.start(part, origin, duration)
        view = clip_view(self.name, start, self.num_frames, self.fps, self.with_audio, self.audio_duration,
                          self.transform)
        return SamplePlan([view], {})


def _frame_count(duration: float, fps: float, frames_per_video: int | None) -> int:
    """Frames of the video: ``frames_per_video`` when set (missing ones repeat the last frame),
    else ``round(duration * fps)`` (at least 1)."""
    if frames_per_video is not None:
        return int(frames_per_video)
    return max(1, int(round(duration * fps)))


def _frame_times(origin: float, fps: float, indices: np.ndarray) -> np.ndarray:
    """Times of frame indices: the middle of each frame's display interval would be safer for
    variable frame rates, but ``origin + i / fps`` is what frame-folder pipelines do; the
    dataset picks the frame on screen at that time."""
    return origin + np.asarray(indices, dtype=np.float64) / fps


@dataclass(frozen=True)
class SegmentSampler:
    """TSN segments with ``per_segment`` distinct draws each (VCLR, methods.md 2.2).

    The video's ``N`` frames (``frames_per_video``, default ``round(duration * fps)``; missing
    frames repeat the last one) are split into ``num_segments`` segments of ``N // K`` frames,
    the last taking the remainder. Training: from each segment ``per_segment`` frames are drawn
    without replacement (with replacement only if the segment is shorter); draw ``j`` of segment
    ``i`` becomes the 1-frame view ``f"{prefixes[j]}{i}"`` (default ``("k", "q")``: first draw ->
    key tuple, second -> query tuple). Targets ``f"{prefix}_index"`` ``(K,)`` frame indices.
    ``seco_anchor=True`` also adds view ``"x1"``: the query frame of segment 0 or K-1 (p = 0.5)
    again, for a fresh augmentation; target ``anchor`` is that segment index.
    Evaluation (``train=False``, ``test_mode="center"``): the centre frame of each segment as
    views ``f"{prefixes[-1]}{i}"``.
    """

    num_segments: int = 3
    per_segment: int = 2
    frames_per_video: int | None = None
    test_mode: Literal["center"] = "center"
    train: bool = True
    prefixes: tuple[str, ...] = ("k", "q")
    seco_anchor: bool = False
    transform: str = "frame"

    def __post_init__(self) -> None:
        _check_positive(num_segments=self.num_segments, per_segment=self.per_segment)
        if len(self.prefixes) != self.per_segment:
            raise ValueError(f"need one view prefix per draw: per_segment={self.per_segment}, prefixes={self.prefixes}")
        if self.test_mode != "center":
            raise ValueError(f"test_mode must be 'center', got {self.test_mode!r}")

    def segments(self, n: int) -> list[tuple[int, int]]:
        """``[lo, hi)`` frame ranges of the segments of an ``n``-frame video."""
        k = self.num_segments
        length = n // k
        if length == 0:  # fewer frames than segments: one frame each, clamped
            return [(min(i, n - 1), min(i, n - 1) + 1) for i in range(k)]
        return [(i * length, (i + 1) * length if i < k - 1 else n) for i in range(k)]

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        n = _frame_count(duration, fps, self.frames_per_video)
        segs = self.segments(n)
        if not self.train:
            idx = np.array([(lo + hi - 1) // 2 for lo, hi in segs], dtype=np.int64)
            views = [
                ViewRequest(f"{self.prefixes[-1]}{i}", _frame_times(origin, fps, idx[i : i + 1]), transform=self.transform)
                for i in range(len(segs))
            ]
            return SamplePlan(views, {f"{self.prefixes[-1]}_index": idx})
        draws = np.zeros((self.per_segment, len(segs)), dtype=np.int64)
        for i, (lo, hi) in enumerate(segs):
            replace = hi - lo < self.per_segment
            draws[:, i] = lo + rng.choice(hi - lo, size=self.per_segment, replace=replace)
        views: list[ViewRequest] = []
        targets: dict[str, float | int | np.ndarray] = {}
        for j, prefix in enumerate(self.prefixes):
            targets[f"{prefix}_index"] = draws[j].copy()
            for i in range(len(segs)):
                times = _frame_times(origin, fps, draws[j, i : i + 1])
                views.append(ViewRequest(f"{prefix}{i}", times, transform=self.transform))
        if self.seco_anchor:
            anchor = 0 if rng.random() < 0.5 else len(segs) - 1
            times = _frame_times(origin, fps, draws[-1, anchor : anchor + 1])
            views.append(ViewRequest("x1", times, transform=self.transform))
            targets["anchor"] = int(anchor)
        return SamplePlan(views, targets)


@dataclass(frozen=True)
class UniformFrameSampler:
    """``n`` frames at ``round(linspace(0, N - 1, n))`` of the video's ``N`` frames, one view."""

    n: int
    frames_per_video: int | None = None
    name: str = "clip"
    transform: str = "clip"

    def __post_init__(self) -> None:
        _check_positive(n=self.n)

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        count = _frame_count(duration, fps, self.frames_per_video)
        idx = np.round(np.linspace(0, count - 1, self.n)).astype(np.int64)
        view = ViewRequest(self.name, _frame_times(origin, fps, idx), transform=self.transform)
        return SamplePlan([view], {"frame_index": idx})


@dataclass(frozen=True)
class GlobalLocalSampler:
    """A global view plus ``n_local`` local clips with exact normalised 3-D boxes (CtrlAug, 3.2).

    Global: ``global_frames`` frames spaced ``global_stride`` native frames (or spread over
    ``global_span`` seconds when given; both shrink to fit a shorter video), random start.
    Local clip ``i`` (view ``f"{local_prefix}{i}"``): temporal length a fraction ``U(local_span)``
    of the global window, sampled densely with ``local_frames`` frames (``local_span=None``:
    ``local_stride`` native frames apart instead), starting uniformly inside the global window;
    spatial box of area ``U(local_area)`` of the global view's crop and aspect ratio
    ``exp(U(log local_ratio))``, placed uniformly inside it. The box becomes the view's
    ``region`` (``region_of`` the global view, so it shares its flip).

    ``with_audio`` adds each view's co-located audio; its length follows the view's span (which
    varies with the video's frame rate and the drawn local span), so such samples only collate
    with a fixed-length audio transform.

    Controllable placement (spec 3.2 step 4, :mod:`glocal.data.controllable`): with
    ``iou_range`` each local box keeps its drawn size but is placed so that its 3-D IoU with a
    random cell of the ``iou_grid`` grid over the global view is a target from ``U(iou_range)``
    (targets ``ref_cell``, ``ref_iou``: the cell and the IoU reached). ``iou_range_final`` with
    ``iou_epochs``: the range moves linearly to it over that many epochs (a curriculum;
    :meth:`at_epoch`, which the dataset calls in ``set_epoch``).

    Targets: ``boxes`` float ``(n_local, 6)`` = ``(t0, t1, x0, y0, x1, y1)`` normalised to the
    global view (``t`` over its window ``[start, start + global frames * spacing)``, ``x, y`` over
    its displayed crop), and ``order`` int64 ``(n_local,)`` = the local indices sorted by ``t0``.
    """

    global_frames: int = 16
    global_stride: int = 4
    local_frames: int = 16
    local_stride: int = 1
    n_local: int = 4
    local_span: tuple[float, float] | None = (0.1, 0.3)
    local_area: tuple[float, float] = (0.2, 0.6)
    local_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    global_span: float | None = None
    temporal: Literal["random", "center"] = "random"
    with_audio: bool = False
    global_name: str = "global"
    local_prefix: str = "local"
    global_transform: str = "global"
    local_transform: str = "local"
    iou_range: tuple[float, float] | None = None
    iou_grid: tuple[int, int, int] = (2, 4, 4)
    iou_range_final: tuple[float, float] | None = None
    iou_epochs: int = 0

    def at_epoch(self, epoch: int) -> "GlobalLocalSampler":
        """This sampler with the IoU range of ``epoch`` on the curriculum (itself without one)."""
        if self.iou_range is None or self.iou_range_final is None or self.iou_epochs <= 0:
            return self
        f = min(1.0, max(0, int(epoch)) / self.iou_epochs)
        lo, hi = ((1 - f) * a + f * b for a, b in zip(self.iou_range, self.iou_range_final))
        return replace(self, iou_range=(lo, hi), iou_range_final=None, iou_epochs=0)

    def __post_init__(self) -> None:
        for name in ("iou_range", "iou_range_final"):
            r = getattr(self, name)
            if r is not None and not 0 <= r[0] <= r[1] <= 1:
                raise ValueError(f"{name} must satisfy 0 <= lo <= hi <= 1, got {r}")
        if min(self.iou_grid) < 1:
            raise ValueError(f"iou_grid needs entries >= 1, got {self.iou_grid}")
        _check_positive(global_frames=self.global_frames, global_stride=self.global_stride,
                        local_frames=self.local_frames, local_stride=self.local_stride, n_local=self.n_local)
        if self.local_span is not None and not 0 < self.local_span[0] <= self.local_span[1] <= 1:
            raise ValueError(f"local_span must satisfy 0 < lo <= hi <= 1, got {self.local_span}")
        if not 0 < self.local_area[0] <= self.local_area[1] <= 1:
            raise ValueError(f"local_area must satisfy 0 < lo <= hi <= 1, got {self.local_area}")

    def _box(self, rng: np.random.Generator) -> tuple[float, float, float, float]:
        """Normalised ``(x0, y0, x1, y1)`` with the sampled area and aspect ratio."""
        log_r = (math.log(self.local_ratio[0]), math.log(self.local_ratio[1]))
        area = float(rng.uniform(*self.local_area))
        for _ in range(10):
            ratio = math.exp(rng.uniform(*log_r))
            w, h = math.sqrt(area * ratio), math.sqrt(area / ratio)
            if w <= 1 and h <= 1:
                break
        w = min(w, 1.0)
        h = min(area / w, 1.0)
        x0 = float(rng.uniform(0.0, 1.0 - w))
        y0 = float(rng.uniform(0.0, 1.0 - h))
        return x0, y0, min(1.0, x0 + w), min(1.0, y0 + h)

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        if self.global_span is not None:
            span_g = float(self.global_span)
        else:
            span_g = self.global_frames * self.global_stride / fps
        span_g = min(span_g, duration) if duration > 0 else span_g
        dg = span_g / self.global_frames
        tg0 = clip_start(rng, origin, duration, span_g, self.temporal)
        g_times = tg0 + np.arange(self.global_frames, dtype=np.float64) * dg
        views = [ViewRequest(self.global_name, g_times, audio=(tg0, span_g) if self.with_audio else None,
                             transform=self.global_transform)]
        boxes = np.zeros((self.n_local, 6), dtype=np.float64)
        ref_cell = np.zeros(self.n_local, dtype=np.int64)
        ref_iou = np.zeros(self.n_local, dtype=np.float64)
        for i in range(self.n_local):
            if self.local_span is not None:
                span_l = float(rng.uniform(*self.local_span)) * span_g
            else:
                span_l = min(self.local_frames * self.local_stride / fps, span_g)
            dl = span_l / self.local_frames
            if self.iou_range is None:
                t0 = tg0 + float(rng.uniform(0.0, span_g - span_l))
                region = self._box(rng)
            else:  # size first, then the position that gives the drawn IoU with a reference cell
                x0, y0, x1, y1 = self._box(rng)
                box, ref_cell[i], ref_iou[i] = place_at_iou(
                    rng, (span_l / span_g, x1 - x0, y1 - y0), self.iou_grid, self.iou_range)
                t0 = tg0 + float(box[0]) * span_g
                region = (float(box[2]), float(box[3]), float(box[4]), float(box[5]))
            times = t0 + np.arange(self.local_frames, dtype=np.float64) * dl
            views.append(ViewRequest(
                f"{self.local_prefix}{i}", times, audio=(t0, span_l) if self.with_audio else None,
                transform=self.local_transform, region_of=self.global_name, region=region,
            ))
            boxes[i] = ((t0 - tg0) / span_g, (t0 + span_l - tg0) / span_g, *region)
        order = np.argsort(boxes[:, 0], kind="stable").astype(np.int64)
        targets: dict = {"boxes": boxes, "order": order}
        if self.iou_range is not None:
            targets.update(ref_cell=ref_cell, ref_iou=ref_iou)
        return SamplePlan(views, targets)


@dataclass(frozen=True)
class SpeedDirectionSampler:
    """Two clips with playback speed and direction labels (AVTS, methods.md 4.2).

    Clip ``c`` in ``names``: speed class ``s ~ U{0..s_max}`` with
    ``s_max = min(floor(log2(N / T)), n_speeds - 1)`` (``N = floor(duration * fps)`` frames at
    ``fps``, ``T = num_frames``; 0 when ``N < T``), frame skip ``2**s`` so the clip spans
    ``T * 2**s / fps <= duration`` seconds; random start; with probability ``reverse_p`` the time
    list is reversed (an exact reversal of the forward clip). Audio: the clip's span before the
    speed change, ``audio_speed = 2**s`` (so every clip carries ``T / fps`` s of audio) and
    ``reverse_audio`` = the direction; with ``audio_duration = A`` instead ``A * 2**s`` seconds
    centred on the clip's span (every clip then carries ``A`` s of audio after the speed change).
    ``non_overlapping=True`` redraws the second start (up to 10 times) so that the spans do not
    overlap when the video allows it.

    Targets: ``speed_{c}`` (s), ``dir_{c}`` (1 = backward), ``order_ab`` (1 if clip a starts
    before clip b), ``overlap_ab`` (1 if their spans overlap).
    """

    num_frames: int = 16
    fps: float = FPS
    n_speeds: int = 4
    reverse_p: float = 0.5
    with_audio: bool = True
    names: tuple[str, str] = ("a", "b")
    transform: str = "clip"
    non_overlapping: bool = False
    audio_duration: float | None = None

    def __post_init__(self) -> None:
        _check_positive(num_frames=self.num_frames, fps=self.fps, n_speeds=self.n_speeds)
        if self.audio_duration is not None:
            _check_positive(audio_duration=self.audio_duration)

    def max_speed(self, duration: float) -> int:
        """Largest speed class the video length allows."""
        n = int(math.floor(duration * self.fps + 1e-9))
        if n < self.num_frames:
            return 0
        return min(int(math.floor(math.log2(n / self.num_frames) + 1e-12)), self.n_speeds - 1)

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        s_max = self.max_speed(duration)
        views: list[ViewRequest] = []
        targets: dict[str, float | int | np.ndarray] = {}
        spans: list[tuple[float, float]] = []
        for c, name in enumerate(self.names):
            s = int(rng.integers(0, s_max + 1))
            skip = 2**s
            span = self.num_frames * skip / self.fps
            start = clip_start(rng, origin, duration, span)
            if c == 1 and self.non_overlapping:
                a0, a1 = spans[0]
                for _ in range(10):
                    if start + span <= a0 or start >= a1:
                        break
                    start = clip_start(rng, origin, duration, span)
            backward = bool(rng.random() < self.reverse_p)
            times = start + np.arange(self.num_frames, dtype=np.float64) * skip / self.fps
            if backward:
                times = times[::-1].copy()
            audio = None
            if self.with_audio:
                a_span = span if self.audio_duration is None else self.audio_duration * skip
                audio = (start + (span - a_span) / 2, a_span)
            views.append(ViewRequest(
                name, times, audio=audio, audio_speed=float(skip), reverse_audio=backward, transform=self.transform,
            ))
            spans.append((start, start + span))
            targets[f"speed_{name}"] = s
            targets[f"dir_{name}"] = int(backward)
        (a0, a1), (b0, b1) = spans
        targets["order_ab"] = int(a0 < b0)
        targets["overlap_ab"] = int(a0 < b1 and b0 < a1)
        return SamplePlan(views, targets)
