"""Configuration of the real-parts development set (``docs/real_parts.md``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

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
        train_fraction, val_fraction, test_fraction: split sizes (stratified per class).
        seed: master seed.
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    num_videos: int = 600
    duration: float = 4.0
    fps: int = 16
    height: int = 64
    width: int = 64
    sample_rate: int = 16000
    object_size: tuple[float, float] = (0.15, 0.35)
    min_distractors: int = 1
    max_distractors: int = 1
    num_events: tuple[int, int] = (2, 4)
    event_duration: tuple[float, float] = (0.35, 0.9)
    snr_db: tuple[float, float] = (5.0, 25.0)
    num_plants: tuple[int, int] = (0, 3)
    train_fraction: float = 0.7
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for f in ("classes", "object_size", "num_events", "event_duration", "snr_db", "num_plants"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad option."""
        unknown = [c for c in self.classes if c not in CATALOGUE]
        if unknown:
            raise ConfigError(f"classes: unknown {unknown}; allowed {sorted(CATALOGUE)}")
        if any(is_reserved(c) for c in self.classes):
            raise ConfigError(f"classes: {self.classes} contains a reserved animal")
        if not 2 <= len(self.classes) <= 10 or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"classes: 2..10 distinct names; got {self.classes}")
        if self.num_videos < 1:
            raise ConfigError(f"num_videos must be >= 1; got {self.num_videos}")
        if not 1.0 <= self.duration <= 60.0:
            raise ConfigError(f"duration must be in [1, 60] s; got {self.duration}")
        if not 15 <= self.fps <= 60:
            raise ConfigError(f"fps must be in [15, 60]; got {self.fps}")
        for name in ("height", "width"):
            v = getattr(self, name)
            if v % 2 or not 32 <= v <= 1024:
                raise ConfigError(f"{name} must be an even integer in [32, 1024]; got {v}")
        if not 8000 <= self.sample_rate <= 48000:
            raise ConfigError(f"sample_rate must be in [8000, 48000]; got {self.sample_rate}")
        ranges = {
            "object_size": (0.05, 0.6), "num_events": (1, 12), "event_duration": (0.1, 3.0),
            "snr_db": (-20.0, 80.0), "num_plants": (0, 8),
        }
        for name, (lo, hi) in ranges.items():
            a, b = getattr(self, name)
            if not lo <= a <= b <= hi:
                raise ConfigError(f"{name} must be (low, high) with {lo} <= low <= high <= {hi}; got {(a, b)}")
        if not 0 <= self.min_distractors <= self.max_distractors <= 3:
            raise ConfigError("need 0 <= min_distractors <= max_distractors <= 3")
        fr = (self.train_fraction, self.val_fraction, self.test_fraction)
        if any(not 0 <= f <= 1 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions must lie in [0, 1] and sum to 1; got {fr}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0; got {self.seed}")

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
        names = {f.name for f in fields(cls)}
        bad = sorted(set(d) - names)
        if bad:
            raise ConfigError(f"unknown real-parts option(s) {bad}; allowed {sorted(names)}")
        return cls(**dict(d))
