"""VCLR sample plans (methods.md 2.2): TSN segment tuples, the SeCo anchor and order labels.

:class:`VCLRSampler` composes :class:`~glocal.data.samplers.SegmentSampler` (``K`` segments, two
distinct draws per segment: the first to the key tuple ``k0..k{K-1}``, the second to the query
tuple ``q0..q{K-1}``, plus ``x1`` = the query item of segment 0 or ``K-1`` again for a fresh
augmentation) and adds:

- **clips instead of frames** (3-D encoders): every drawn frame index ``i`` becomes the clip of
  ``clip_frames`` frames at ``i, i + s, ...`` (``s = clip_stride`` native frames); the segments
  then split the ``N - (clip_frames - 1)·s`` admissible clip starts, so clips stay inside the
  video. ``clip_frames = 1`` is the paper's single-frame sampling;
- **order labels**: independently with probability ``shuffle_p`` each tuple is presented in an
  admissible permutation (never identity nor reversal; ``K = 3``: 4 permutations, uniform) —
  label ``order = 1·[query shuffled] + 2·[key shuffled]`` (0 none, 1 query, 2 key, 3 both).

Views stay named by their segment (``q{i}`` is segment ``i``); the presented order is the
target ``q_perm`` / ``k_perm`` ``(K,)``: position ``j`` of the presented tuple shows segment
``perm[j]`` (identity when not shuffled). Targets: ``k_index``, ``q_index`` (frame indices),
``anchor`` (the segment of ``x1``), ``q_perm``, ``k_perm``, ``order``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..objectives.pretext import order_permutations
from .samplers import SegmentSampler
from .views import SamplePlan

__all__ = ["VCLRSampler", "order_label"]


def order_label(query_shuffled: bool, key_shuffled: bool) -> int:
    """VCLR's 4-way order class: 0 none, 1 query tuple shuffled, 2 key tuple shuffled, 3 both."""
    return int(query_shuffled) + 2 * int(key_shuffled)


@dataclass(frozen=True)
class VCLRSampler:
    """Segment tuples for VCLR (see the module docstring).

    segments: the underlying :class:`SegmentSampler` (must use ``per_segment=2``,
        ``prefixes=("k", "q")`` and ``seco_anchor=True``).
    clip_frames, clip_stride: frames per item and their spacing in native frames.
    shuffle_p: probability of shuffling each tuple independently (release: 0.5).
    """

    segments: SegmentSampler = field(default_factory=lambda: SegmentSampler(seco_anchor=True))
    clip_frames: int = 1
    clip_stride: int = 1
    shuffle_p: float = 0.5

    def __post_init__(self) -> None:
        s = self.segments
        if s.per_segment != 2 or tuple(s.prefixes) != ("k", "q") or not s.seco_anchor or not s.train:
            raise ValueError("VCLRSampler needs SegmentSampler(per_segment=2, prefixes=('k', 'q'), seco_anchor=True, train=True)")
        if s.num_segments < 3:
            raise ValueError(f"VCLR order labels need num_segments >= 3 (admissible permutations), got {s.num_segments}")
        if self.clip_frames < 1 or self.clip_stride < 1:
            raise ValueError(f"clip_frames and clip_stride must be >= 1, got {self.clip_frames}, {self.clip_stride}")
        if not 0.0 <= self.shuffle_p <= 1.0:
            raise ValueError(f"shuffle_p must be in [0, 1], got {self.shuffle_p}")

    @property
    def permutations(self) -> list[tuple[int, ...]]:
        """The admissible shuffles of a ``K``-tuple (no identity, no reversal)."""
        return order_permutations(self.segments.num_segments)

    def _perm(self, rng: np.random.Generator) -> tuple[bool, np.ndarray]:
        k = self.segments.num_segments
        if rng.random() >= self.shuffle_p:
            return False, np.arange(k, dtype=np.int64)
        perms = self.permutations
        return True, np.asarray(perms[int(rng.integers(len(perms)))], dtype=np.int64)

    def plan(self, rng: np.random.Generator, origin: float, duration: float, fps: float) -> SamplePlan:
        # segments are laid over the admissible clip *starts*, so every clip ends inside the video
        extra = (self.clip_frames - 1) * self.clip_stride
        if self.segments.frames_per_video is None:
            base = self.segments.plan(rng, origin, max(duration - extra / fps, 1.0 / fps), fps)
        else:
            segments = replace(self.segments, frames_per_video=max(1, self.segments.frames_per_video - extra))
            base = segments.plan(rng, origin, duration, fps)
        offsets = np.arange(self.clip_frames, dtype=np.float64) * self.clip_stride / fps
        views = [replace(v, times=v.times[0] + offsets) for v in base.views]
        q_shuffled, q_perm = self._perm(rng)
        k_shuffled, k_perm = self._perm(rng)
        targets = dict(base.targets)
        targets.update(q_perm=q_perm, k_perm=k_perm, order=order_label(q_shuffled, k_shuffled))
        return SamplePlan(views, targets)
