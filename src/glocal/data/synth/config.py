"""Configuration of the generated audio-visual world.

:class:`WorldConfig` holds every knob of the generator: a typed config dataclass whose bounds sit
on its fields, built and checked by :func:`glocal.config.build` (``glocal synth key=value``, the
``world:`` section of a pretraining config, :meth:`WorldConfig.from_dict`), so a bad value fails
early with a :class:`~glocal.errors.ConfigError` that names the option and the allowed range. The
config round-trips through plain dicts (``to_dict`` / ``from_dict``), which is how it is stored in
``world.json`` and read from YAML configs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, Mapping, get_args

from glocal.config import Interval, Range, build
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
ColorMode = Literal["random", "class"]
COLOR_MODES: tuple[str, ...] = get_args(ColorMode)

#: Split names, in manifest order.
Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = get_args(Split)

#: Number of ESC-50-style folds (``fold`` column takes values ``1..NUM_FOLDS``).
NUM_FOLDS = 5


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

    Build it with :meth:`from_dict` / :func:`glocal.config.build` (checked); an instance made
    directly is checked by :func:`~glocal.data.synth.generate_world` (:func:`glocal.config.check`).
    """

    num_videos: Annotated[int, Range(1, 10_000_000)] = 600
    duration: Annotated[float, Range(1.0, 600.0)] = 4.0
    # The fastest rhythm has ~0.135 s between onsets; below 15 fps two onsets can land in
    # adjacent frames and their flashes merge, so the "one flash peak per sound onset,
    # within one frame" guarantee needs fps >= 15.
    fps: Annotated[int, Range(15, 60)] = 16
    height: Annotated[int, Range(32, 1024, multiple_of=2)] = 64
    width: Annotated[int, Range(32, 1024, multiple_of=2)] = 64
    sample_rate: Annotated[int, Range(8000, 48000)] = 16000
    num_classes: Annotated[int, Range(2, len(SHAPES))] = 6
    num_rhythms: Annotated[int, Range(1, len(RHYTHMS))] = 3
    max_distractors: Annotated[int, Range(0, 6)] = 2
    noise_snr_db: Annotated[tuple[float, float], Interval(-20.0, 80.0)] = (0.0, 20.0)
    object_radius: Annotated[tuple[float, float], Interval(0.04, 0.45)] = (0.12, 0.22)
    color_mode: ColorMode = "class"
    class_hue_jitter: Annotated[float, Range(0.0, 0.5)] = 0.04
    fake_fraction: Annotated[float, Range(0.0, 1.0)] = 1.0
    fake_splits: tuple[Split, ...] = ("test",)
    train_fraction: Annotated[float, Range(0.0, 1.0)] = 0.7
    val_fraction: Annotated[float, Range(0.0, 1.0)] = 0.1
    test_fraction: Annotated[float, Range(0.0, 1.0)] = 0.2
    seed: Annotated[int, Range(0)] = 0

    def validate(self) -> None:
        """The rules between fields (and the one list rule); the bounds are on the fields."""
        if len(set(self.fake_splits)) != len(self.fake_splits):
            raise ConfigError(f"WorldConfig.fake_splits must be distinct names from {list(SPLITS)}; "
                              f"got {list(self.fake_splits)}")
        total = float(self.train_fraction) + float(self.val_fraction) + float(self.test_fraction)
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"WorldConfig.train_fraction + val_fraction + test_fraction must sum to 1; got {total:g}"
            )
        if self.num_frames < 4:
            raise ConfigError(f"WorldConfig.duration * fps must give at least 4 frames; got {self.num_frames}")

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
    def from_dict(cls, d: Mapping[str, Any], prefix: str = "") -> "WorldConfig":
        """Build and check from a mapping (:func:`glocal.config.build`); unknown keys and bad values
        raise :class:`ConfigError`."""
        return build(cls, d, prefix=prefix)
