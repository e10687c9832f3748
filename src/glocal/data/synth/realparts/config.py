"""Configuration of the real-parts development set (``docs/real_parts.md``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Mapping

from glocal.config import Interval, Range, build
from glocal.errors import ConfigError

from .sources import CATALOGUE, DEFAULT_CLASSES, is_reserved

__all__ = ["RealPartsConfig"]


@dataclass(frozen=True)
class RealPartsConfig:
    """Options of :func:`~.generate.generate_real_parts`.

    Attributes:
        classes: animal classes (keys of :data:`~.sources.CATALOGUE`), 2..10.
        num_videos: number of videos.
        duration, fps, height, width, sample_rate: media format.
        object_size: range of an animal's longer side, as a fraction of ``min(H, W)``.
        min_distractors, max_distractors: silent animals per video (uniform in the range).
        num_events: range of sound events of the source per video.
        event_duration: range of one event's length in seconds (capped by the recording).
        snr_db: range of the events-to-background-noise ratio in dB.
        num_plants: range of silent plant photos drawn on the background.
        shared_background: every video over the same background (the one video 0 draws); the
            rest of each scene is drawn as usual. A diagnostic: it removes the per-video
            background that video-only instance discrimination matches on.
        train_fraction, val_fraction, test_fraction: split sizes (stratified per class).
        seed: master seed.

    Build it with :meth:`from_dict` / :func:`glocal.config.build` (checked); an instance made
    directly is checked by :func:`~.generate.generate_real_parts` (:func:`glocal.config.check`).
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    num_videos: Annotated[int, Range(1)] = 600
    duration: Annotated[float, Range(1.0, 60.0)] = 4.0
    fps: Annotated[int, Range(15, 60)] = 16
    height: Annotated[int, Range(32, 1024, multiple_of=2)] = 64
    width: Annotated[int, Range(32, 1024, multiple_of=2)] = 64
    sample_rate: Annotated[int, Range(8000, 48000)] = 16000
    object_size: Annotated[tuple[float, float], Interval(0.05, 0.6)] = (0.15, 0.35)
    min_distractors: Annotated[int, Range(0, 3)] = 1
    max_distractors: Annotated[int, Range(0, 3)] = 1
    num_events: Annotated[tuple[int, int], Interval(1, 12)] = (2, 4)
    event_duration: Annotated[tuple[float, float], Interval(0.1, 3.0)] = (0.35, 0.9)
    snr_db: Annotated[tuple[float, float], Interval(-20.0, 80.0)] = (5.0, 25.0)
    num_plants: Annotated[tuple[int, int], Interval(0, 8)] = (0, 3)
    shared_background: bool = False
    train_fraction: Annotated[float, Range(0.0, 1.0)] = 0.7
    val_fraction: Annotated[float, Range(0.0, 1.0)] = 0.1
    test_fraction: Annotated[float, Range(0.0, 1.0)] = 0.2
    seed: Annotated[int, Range(0)] = 0

    def validate(self) -> None:
        """The class list and the rules between fields; the bounds are on the fields."""
        unknown = [c for c in self.classes if c not in CATALOGUE]
        if unknown:
            raise ConfigError(f"classes: unknown {unknown}; allowed {sorted(CATALOGUE)}")
        if any(is_reserved(c) for c in self.classes):
            raise ConfigError(f"classes: {self.classes} contains a reserved animal")
        if not 2 <= len(self.classes) <= 10 or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"classes: 2..10 distinct names; got {self.classes}")
        if self.min_distractors > self.max_distractors:
            raise ConfigError("need 0 <= min_distractors <= max_distractors <= 3")
        fr = (self.train_fraction, self.val_fraction, self.test_fraction)
        if abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions must lie in [0, 1] and sum to 1; got {fr}")

    @property
    def num_frames(self) -> int:
        return int(round(self.duration * self.fps))

    @property
    def num_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RealPartsConfig":
        """Build and check from a mapping (:func:`glocal.config.build`)."""
        return build(cls, d)
