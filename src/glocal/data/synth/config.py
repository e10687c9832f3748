"""Configuration of the generated audio-visual world.

:class:`WorldConfig` holds every knob of the generator. It is validated on construction, so a
bad value fails early with a :class:`~glocal.errors.ConfigError` that names the option and the
allowed range. The config round-trips through plain dicts (``to_dict`` / ``from_dict``), which
is how it is stored in ``world.json`` and read from YAML configs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from glocal.errors import ConfigError

__all__ = ["WorldConfig", "SHAPES", "RHYTHMS", "SPLITS", "NUM_FOLDS", "COLOR_MODES"]

#: Shape classes, in class-index order. Class ``c`` of a world with ``num_classes = C`` is
#: ``SHAPES[c]`` for ``c < C``. Shapes never rotate, so ``hbar`` and ``vbar`` are distinct.
SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "cross",
    "ring",
    "star",
    "hbar",
    "vbar",
    "crescent",
)

#: Rhythm classes (fine-grained temporal labels), in rhythm-index order.
RHYTHMS: tuple[str, ...] = ("regular", "pairs", "triplets", "accelerating", "swing")

#: Object colouring modes (see ``WorldConfig.color_mode``).
COLOR_MODES: tuple[str, ...] = ("random", "class")

#: Split names, in manifest order.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Number of ESC-50-style folds (``fold`` column takes values ``1..NUM_FOLDS``).
NUM_FOLDS = 5


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(float(x))


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of a generated world (all videos share them).

    Attributes:
        num_videos: number of (real) videos, >= 1.
        duration: length of every video in seconds, in [1, 600].
        fps: frame rate (integer), in [15, 60] (every sound onset must get its own visible
            flash peak); a video has ``round(duration * fps)`` frames.
        height: frame height in pixels; even, in [32, 1024].
        width: frame width in pixels; even, in [32, 1024].
        sample_rate: audio sample rate in Hz, in [8000, 48000]; mono audio.
        num_classes: number of object / sound classes, in [2, len(SHAPES)].
        num_rhythms: number of rhythm classes, in [1, len(RHYTHMS)].
        max_distractors: each video has ``U{0..max_distractors}`` silent distractors, in [0, 6].
        object_radius: ``(low, high)`` range of object radii as a fraction of the smaller frame
            side, each in [0.04, 0.45], low <= high (larger objects: easier shapes, and a
            median-binarised localisation map can reach cIoU >= 0.5).
        color_mode: ``"class"`` (default: each shape class has its own hue, jittered per
            object by ``class_hue_jitter``, like real categories whose members share an
            appearance; distractors wear their own class's hue) or ``"random"`` (object colours
            independent of the class: shape is the only visual class cue, a much harder world).
        class_hue_jitter: half-width of the uniform per-object hue jitter (in turns) of
            ``color_mode="class"``, in [0, 0.5].
        noise_snr_db: ``(low, high)`` range of the per-video signal-to-noise ratio in dB, each
            in [-20, 80], low <= high.
        fake_fraction: fraction of the videos of each split in ``fake_splits`` that get a fake
            counterpart (1.0 = every one), in [0, 1].
        fake_splits: splits whose videos get fake counterparts (subset of ``SPLITS``).
        train_fraction, val_fraction, test_fraction: split fractions, each in [0, 1], summing
            to 1 (stratified per class).
        seed: non-negative integer seed; video ``i`` is generated from
            ``np.random.default_rng([seed, i])`` so results do not depend on the worker count.
    """

    num_videos: int = 600
    duration: float = 4.0
    fps: int = 16
    height: int = 64
    width: int = 64
    sample_rate: int = 16000
    num_classes: int = 6
    num_rhythms: int = 3
    max_distractors: int = 2
    noise_snr_db: tuple[float, float] = (0.0, 20.0)
    object_radius: tuple[float, float] = (0.12, 0.22)
    color_mode: str = "class"
    class_hue_jitter: float = 0.04
    fake_fraction: float = 1.0
    fake_splits: tuple[str, ...] = ("test",)
    train_fraction: float = 0.7
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        # Normalise sequences coming from YAML/JSON (lists) to tuples so configs compare equal.
        if isinstance(self.noise_snr_db, list):
            object.__setattr__(self, "noise_snr_db", tuple(self.noise_snr_db))
        if isinstance(self.object_radius, list):
            object.__setattr__(self, "object_radius", tuple(self.object_radius))
        if isinstance(self.fake_splits, (list, str)):
            splits = (self.fake_splits,) if isinstance(self.fake_splits, str) else self.fake_splits
            object.__setattr__(self, "fake_splits", tuple(splits))
        if _is_int(self.duration):
            object.__setattr__(self, "duration", float(self.duration))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad option and its allowed range."""

        def int_in(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if not _is_int(v) or not lo <= v <= hi:
                raise ConfigError(f"WorldConfig.{name} must be an integer in [{lo}, {hi}]; got {v!r}")

        def real_in(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if not _is_real(v) or not lo <= float(v) <= hi:
                raise ConfigError(f"WorldConfig.{name} must be a number in [{lo}, {hi}]; got {v!r}")

        int_in("num_videos", 1, 10_000_000)
        real_in("duration", 1.0, 600.0)
        # The fastest rhythm has ~0.135 s between onsets; below 15 fps two onsets can land in
        # adjacent frames and their flashes merge, so the "one flash peak per sound onset,
        # within one frame" guarantee needs fps >= 15.
        int_in("fps", 15, 60)
        for name in ("height", "width"):
            v = getattr(self, name)
            if not _is_int(v) or not 32 <= v <= 1024 or v % 2:
                raise ConfigError(
                    f"WorldConfig.{name} must be an even integer in [32, 1024]; got {v!r}"
                )
        int_in("sample_rate", 8000, 48000)
        int_in("num_classes", 2, len(SHAPES))
        int_in("num_rhythms", 1, len(RHYTHMS))
        int_in("max_distractors", 0, 6)
        if self.color_mode not in COLOR_MODES:
            raise ConfigError(
                f"WorldConfig.color_mode must be one of {list(COLOR_MODES)}; got {self.color_mode!r}"
            )
        real_in("class_hue_jitter", 0.0, 0.5)
        rad = self.object_radius
        if (
            not isinstance(rad, tuple)
            or len(rad) != 2
            or not all(_is_real(x) and 0.04 <= float(x) <= 0.45 for x in rad)
            or float(rad[0]) > float(rad[1])
        ):
            raise ConfigError(
                f"WorldConfig.object_radius must be (low, high) with 0.04 <= low <= high <= 0.45; got {rad!r}"
            )
        snr = self.noise_snr_db
        if (
            not isinstance(snr, tuple)
            or len(snr) != 2
            or not all(_is_real(x) and -20.0 <= float(x) <= 80.0 for x in snr)
            or float(snr[0]) > float(snr[1])
        ):
            raise ConfigError(
                "WorldConfig.noise_snr_db must be a (low, high) pair of numbers in [-20, 80] "
                f"with low <= high; got {snr!r}"
            )
        real_in("fake_fraction", 0.0, 1.0)
        if not all(isinstance(s, str) and s in SPLITS for s in self.fake_splits) or len(
            set(self.fake_splits)
        ) != len(self.fake_splits):
            raise ConfigError(
                f"WorldConfig.fake_splits must be distinct names from {list(SPLITS)}; "
                f"got {self.fake_splits!r}"
            )
        for name in ("train_fraction", "val_fraction", "test_fraction"):
            real_in(name, 0.0, 1.0)
        total = float(self.train_fraction) + float(self.val_fraction) + float(self.test_fraction)
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                "WorldConfig.train_fraction + val_fraction + test_fraction must sum to 1; "
                f"got {total:g}"
            )
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"WorldConfig.seed must be a non-negative integer; got {self.seed!r}")
        if self.num_frames < 4:
            raise ConfigError(
                f"WorldConfig.duration * fps must give at least 4 frames; got {self.num_frames}"
            )

    # ------------------------------------------------------------------ derived values
    @property
    def num_frames(self) -> int:
        """Frames per video: ``round(duration * fps)``."""
        return int(round(float(self.duration) * self.fps))

    @property
    def num_samples(self) -> int:
        """Audio samples per video: ``round(duration * sample_rate)``."""
        return int(round(float(self.duration) * self.sample_rate))

    @property
    def classes(self) -> list[str]:
        """Class names, index = class id."""
        return list(SHAPES[: self.num_classes])

    @property
    def rhythm_classes(self) -> list[str]:
        """Rhythm names, index = rhythm id."""
        return list(RHYTHMS[: self.num_rhythms])

    @property
    def split_fractions(self) -> dict[str, float]:
        """``{"train": ..., "val": ..., "test": ...}``."""
        return {
            "train": float(self.train_fraction),
            "val": float(self.val_fraction),
            "test": float(self.test_fraction),
        }

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["noise_snr_db"] = [float(x) for x in self.noise_snr_db]
        d["object_radius"] = [float(x) for x in self.object_radius]
        d["fake_splits"] = list(self.fake_splits)
        d["duration"] = float(self.duration)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WorldConfig":
        """Build from a mapping; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown WorldConfig option(s) {unknown}; allowed: {sorted(known)}"
            )
        return cls(**dict(d))
