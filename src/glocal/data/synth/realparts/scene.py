"""Sampling of one real-parts video's latent scene (pure numpy, one ``np.random.Generator``).

A :class:`RealScene` fixes everything before rendering: the background texture crop and its
pan, the plant clutter, each animal's photo, flip, size, smooth path and pulse times, and the
sound events. Animal 0 is the sound source: it pulses (hop + swell) at the onsets of its
recorded sound; the silent animals pulse at their own times, never within
:func:`min_pulse_gap` of a source onset, so only audio-visual synchrony tells which one sounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RealPartsConfig
from .sources import BACKGROUND_STEMS, CATALOGUE, TEXTURE_NAMES

__all__ = ["BackgroundSpec", "Plant", "Animal", "RealScene", "min_pulse_gap", "sample_real_scene",
           "PULSE_TAU", "PULSE_SWELL", "PULSE_HOP"]

#: Decay time constant (s) of the visual pulse envelope ``exp(-(t - onset) / tau)``.
PULSE_TAU = 0.06
#: Relative size increase at the pulse peak.
PULSE_SWELL = 0.2
#: Upward hop at the pulse peak, as a fraction of the animal's longer side.
PULSE_HOP = 0.15


@dataclass(frozen=True)
class BackgroundSpec:
    """A tinted crop of a real texture, panning at constant velocity.

    Attributes:
        texture: name in :data:`~.sources.TEXTURE_NAMES`.
        rot90, flip: orientation applied to the texture.
        zoom: texture pixels per frame pixel.
        start: ``(x, y)`` texture coordinates of the crop's top-left corner at t = 0.
        velocity: ``(vx, vy)`` texture pixels per second.
        tint: ``(3,)`` RGB multiplier; contrast, brightness: grey-level transform.
    """

    texture: str
    rot90: int
    flip: bool
    zoom: float
    start: tuple[float, float]
    velocity: tuple[float, float]
    tint: tuple[float, float, float]
    contrast: float
    brightness: float


@dataclass(frozen=True)
class Plant:
    """A silent real-photo plant stuck to the background (it pans with it)."""

    stem: str
    center: tuple[float, float]
    size: float
    flip: bool


@dataclass(frozen=True)
class Animal:
    """One animal. ``centers`` is ``(T, 2)`` pixel ``(x, y)`` before the pulse hop; ``size`` the
    longer side in pixels before the swell; ``pulses`` the pulse onset times in seconds."""

    label: str
    stem: str
    flip: bool
    size: float
    centers: np.ndarray
    pulses: np.ndarray


@dataclass(frozen=True)
class RealScene:
    """Everything about one video. ``animals[0]`` is the source; ``depth`` is the drawing order
    (indices into ``animals``, back to front); ``events`` ``(E, 2)`` onset/offset seconds."""

    cfg: RealPartsConfig
    background: BackgroundSpec
    plants: tuple[Plant, ...]
    animals: tuple[Animal, ...]
    depth: tuple[int, ...]
    sound_stem: str
    events: np.ndarray
    gains: np.ndarray
    noise_alpha: float
    snr_db: float
    peak: float
    noise_seed: int

    @property
    def times(self) -> np.ndarray:
        """``(T,)`` frame times ``k / fps``."""
        return np.arange(self.cfg.num_frames) / self.cfg.fps


def min_pulse_gap(fps: int) -> float:
    """Least distance (s) between a silent animal's pulse and any source onset."""
    return max(0.2, 3.0 / fps)


def _path(rng: np.random.Generator, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smooth 1-D path inside ``[lo, hi]``: two slow sinusoids around a random centre."""
    half = max((hi - lo) / 2.0, 0.0)
    amp = half * rng.uniform(0.3, 1.0)
    mid = rng.uniform(lo + amp, hi - amp) if hi - amp > lo + amp else (lo + hi) / 2.0
    f = rng.uniform(0.05, 0.3, size=2)
    ph = rng.uniform(0, 2 * np.pi, size=2)
    w = rng.uniform(0.5, 0.8)
    return mid + amp * (w * np.sin(2 * np.pi * f[0] * t + ph[0]) + (1 - w) * np.sin(2 * np.pi * f[1] * t + ph[1]))


def _events(rng: np.random.Generator, cfg: RealPartsConfig, sound_len: float) -> np.ndarray:
    """``(E, 2)`` non-overlapping events, >= 0.15 s apart, inside the clip."""
    lo_d, hi_d = cfg.event_duration
    for n in range(rng.integers(cfg.num_events[0], cfg.num_events[1] + 1), 0, -1):
        for _ in range(100):
            durs = np.minimum(rng.uniform(lo_d, hi_d, size=n), sound_len)
            slack = cfg.duration - 0.35 - durs.sum() - 0.15 * (n - 1)
            if slack <= 0:
                break
            gaps = np.diff(np.sort(rng.uniform(0, slack, size=n)), prepend=0.0)
            onsets = 0.1 + np.cumsum(gaps) + np.concatenate([[0.0], np.cumsum(durs[:-1] + 0.15)])
            return np.stack([onsets, onsets + durs], axis=1)
    d = min(sound_len, lo_d, cfg.duration - 0.35)
    return np.array([[0.1, 0.1 + d]])


def _pulses(rng: np.random.Generator, cfg: RealPartsConfig, avoid: np.ndarray) -> np.ndarray:
    """Pulse times of a silent animal, >= ``min_pulse_gap`` from ``avoid`` and >= 0.3 s apart."""
    want = int(rng.integers(cfg.num_events[0], cfg.num_events[1] + 1))
    gap = min_pulse_gap(cfg.fps)
    chosen: list[float] = []
    for _ in range(200):
        if len(chosen) == want:
            break
        t = float(rng.uniform(0.1, cfg.duration - 0.25))
        if np.all(np.abs(avoid - t) >= gap) and all(abs(c - t) >= 0.3 for c in chosen):
            chosen.append(t)
    return np.sort(np.array(chosen, dtype=np.float64))


def _draw_background(cfg: RealPartsConfig, rng: np.random.Generator) -> BackgroundSpec:
    """A video's background: texture, orientation, zoom, pan, tint and grey levels, from ``rng``."""
    H, W = cfg.height, cfg.width
    zoom = float(rng.uniform(1.5, 3.5))
    speed = float(rng.uniform(2.0, 10.0))
    ang = float(rng.uniform(0, 2 * np.pi))
    vel = (speed * np.cos(ang), speed * np.sin(ang))
    tex_side = 512.0
    span = [abs(v) * cfg.duration for v in vel]
    start = tuple(
        float(rng.uniform(max(0.0, -v * cfg.duration), max(0.0, -v * cfg.duration) + tex_side - n * zoom - s))
        for v, n, s in zip(vel, (W, H), span)
    )
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.1, 0.5)
    tint = tuple(float(1 - sat + sat * (0.5 + 0.5 * np.cos(2 * np.pi * (hue - k / 3)))) for k in range(3))
    return BackgroundSpec(
        texture=TEXTURE_NAMES[int(rng.integers(len(TEXTURE_NAMES)))], rot90=int(rng.integers(4)),
        flip=bool(rng.integers(2)), zoom=zoom, start=start, velocity=vel, tint=tint,  # type: ignore[arg-type]
        contrast=float(rng.uniform(0.7, 1.3)), brightness=float(rng.uniform(0.6, 1.1)),
    )


def sample_real_scene(cfg: RealPartsConfig, index: int, label: int, sound_len: dict[str, float]) -> RealScene:
    """The scene of video ``index`` with source class ``cfg.classes[label]``, drawn from
    ``default_rng([cfg.seed, index])`` only. ``sound_len`` maps sound stems to their length (s)."""
    rng = np.random.default_rng([cfg.seed, index])
    H, W = cfg.height, cfg.width
    t = np.arange(cfg.num_frames) / cfg.fps

    bg = _draw_background(cfg, rng)
    if cfg.shared_background:  # drawn and dropped above, so the rest of the scene is the usual one
        bg = _draw_background(cfg, np.random.default_rng([cfg.seed, 0]))
    plants = tuple(
        Plant(
            stem=BACKGROUND_STEMS[int(rng.integers(len(BACKGROUND_STEMS)))],
            center=(float(rng.uniform(0, W)), float(rng.uniform(0, H))),
            size=float(rng.uniform(0.25, 0.6) * min(H, W)), flip=bool(rng.integers(2)),
        )
        for _ in range(int(rng.integers(cfg.num_plants[0], cfg.num_plants[1] + 1)))
    )

    name = cfg.classes[label]
    sound_stem = CATALOGUE[name][1][int(rng.integers(len(CATALOGUE[name][1])))]
    events = _events(rng, cfg, sound_len[sound_stem])
    n_dis = int(rng.integers(cfg.min_distractors, cfg.max_distractors + 1))
    others = [c for c in cfg.classes if c != name]
    labels = [name] + [others[int(k)] for k in rng.choice(len(others), size=min(n_dis, len(others)), replace=False)]
    animals = []
    for k, lab in enumerate(labels):
        photos = CATALOGUE[lab][0]
        size = float(rng.uniform(*cfg.object_size) * min(H, W))
        margin = 0.5 * size * (1 + PULSE_SWELL) + 1.0
        cx = _path(rng, t, margin, W - margin)
        cy = _path(rng, t, margin + PULSE_HOP * size, H - margin)
        pulses = events[:, 0].copy() if k == 0 else _pulses(rng, cfg, events[:, 0])
        animals.append(Animal(lab, photos[int(rng.integers(len(photos)))], bool(rng.integers(2)), size,
                              np.stack([cx, cy], axis=1), pulses))
    depth = tuple(int(i) for i in rng.permutation(len(animals)))
    return RealScene(
        cfg=cfg, background=bg, plants=plants, animals=tuple(animals), depth=depth,
        sound_stem=sound_stem, events=events, gains=rng.uniform(0.6, 1.0, size=len(events)),
        noise_alpha=float(rng.choice([0.0, 1.0, 2.0])), snr_db=float(rng.uniform(*cfg.snr_db)),
        peak=float(rng.uniform(0.5, 0.9)), noise_seed=int(rng.integers(2**32)),
    )
