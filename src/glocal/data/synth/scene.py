"""Sampling of one video's latent scene (pure numpy, driven by one ``np.random.Generator``).

A :class:`Scene` fixes everything about a video before anything is rendered: the background,
the objects (object 0 is the sound source) with their per-frame centres and flash times, the
audio events (onset/offset times following the video's rhythm class) and the audio parameters.
Rendering (:mod:`.render_video`, :mod:`.render_audio`) is a deterministic function of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RHYTHMS, SHAPES, WorldConfig

__all__ = [
    "Background",
    "ObjectTrack",
    "AudioParams",
    "Scene",
    "RHYTHM_PATTERNS",
    "NOISE_COLOURS",
    "sample_scene",
    "sample_onsets",
    "event_offsets",
    "min_flash_gap",
    "class_f0",
    "hsv_to_rgb",
]

#: Inter-onset intervals (seconds, at tempo 1) of each rhythm class; the pattern repeats.
RHYTHM_PATTERNS: dict[str, tuple[float, ...]] = {
    "regular": (0.5,),
    "pairs": (0.16, 0.64),
    "triplets": (0.15, 0.15, 0.8),
    "accelerating": (0.55, 0.38, 0.26, 0.18),
    "swing": (0.4, 0.2),
}
assert tuple(RHYTHM_PATTERNS) == RHYTHMS

#: Background-noise colours: spectral slope exponent alpha of a 1/f^alpha power spectrum.
NOISE_COLOURS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}

#: Flash/pulse decay time constant (seconds) of the visual event envelope.
FLASH_TAU = 0.1
#: Event duration range (seconds) before capping by the next onset.
EVENT_DURATION = (0.10, 0.20)
#: Lowest / highest class fundamental (Hz); class f0s form a geometric ladder between them.
F0_RANGE = (200.0, 2000.0)


@dataclass(frozen=True)
class Background:
    """Two-colour gradient plus a slowly drifting low-frequency texture.

    Attributes:
        color_a, color_b: ``(3,)`` RGB in [0, 1] at the two ends of the gradient.
        angle: gradient direction in radians.
        waves: ``(K, 5)`` rows ``(fx, fy, phase, drift, amplitude)``: spatial frequency in
            cycles per frame (x, y), phase (rad), drift in cycles per second, amplitude.
        tints: ``(K, 3)`` per-wave RGB tint.
    """

    color_a: np.ndarray
    color_b: np.ndarray
    angle: float
    waves: np.ndarray
    tints: np.ndarray

    @property
    def mean_color(self) -> np.ndarray:
        """``(3,)`` mean colour of the gradient."""
        return 0.5 * (self.color_a + self.color_b)


@dataclass(frozen=True)
class ObjectTrack:
    """One object of the scene.

    Attributes:
        shape: shape-class index into :data:`SHAPES`.
        color: ``(3,)`` RGB in [0, 1] (tied to the class only with ``color_mode="class"``).
        radius: base radius in pixels (the unit shape is scaled by it).
        centers: ``(T, 2)`` float64 pixel centre ``(x, y)`` per frame (pixel ``j`` spans
            ``[j, j + 1)``, so the frame spans ``[0, W] x [0, H]``).
        flashes: ``(K,)`` flash onset times in seconds (sound events for the source).
    """

    shape: int
    color: np.ndarray
    radius: float
    centers: np.ndarray
    flashes: np.ndarray

    @property
    def shape_name(self) -> str:
        return SHAPES[self.shape]


@dataclass(frozen=True)
class AudioParams:
    """Per-video audio parameters.

    Attributes:
        f0: fundamental in Hz (class ladder value times the per-video pitch jitter).
        amps: ``(E,)`` per-event amplitude in [0.6, 1].
        noise_colour: key of :data:`NOISE_COLOURS`.
        snr_db: signal-to-noise ratio (event signal power over noise power, whole clip).
        hum_freq: mains-hum frequency in Hz, 0 for none.
        hum_db: hum level relative to the coloured noise in dB.
        peak: final peak amplitude of the mix (<= 0.9).
        seed: seed of the audio rng (noise realisation and per-event phases).
    """

    f0: float
    amps: np.ndarray
    noise_colour: str
    snr_db: float
    hum_freq: float
    hum_db: float
    peak: float
    seed: int


@dataclass(frozen=True)
class Scene:
    """Latent description of one video.

    Attributes:
        index: video index in the world.
        label: class index of the sound source (= the sound class).
        rhythm: rhythm-class index into :data:`RHYTHMS`.
        num_frames, fps, height, width, sample_rate, duration: copied from the config.
        objects: object 0 is the sound source, the others are silent distractors.
        z_order: drawing order (object indices, back to front).
        events: ``(E, 2)`` float64 ``[onset, offset]`` seconds of the source's sound events.
        background: the background.
        audio: audio parameters.
    """

    index: int
    label: int
    rhythm: int
    num_frames: int
    fps: int
    height: int
    width: int
    sample_rate: int
    duration: float
    objects: tuple[ObjectTrack, ...]
    z_order: tuple[int, ...]
    events: np.ndarray
    background: Background
    audio: AudioParams

    @property
    def times(self) -> np.ndarray:
        """``(T,)`` frame times in seconds (frame ``k`` at ``k / fps``)."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    @property
    def onsets(self) -> np.ndarray:
        """``(E,)`` event onsets in seconds."""
        return self.events[:, 0]


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """Convert one HSV colour (all in [0, 1]) to a ``(3,)`` float64 RGB array."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def class_f0(label: int, num_classes: int) -> float:
    """Fundamental (Hz) of class ``label``: geometric ladder over ``F0_RANGE``.

    Neighbouring ladder steps are interleaved (0, 2, 4, ..., 1, 3, ...) so classes that are
    adjacent in index are far apart in pitch.
    """
    lo, hi = F0_RANGE
    order = list(range(0, num_classes, 2)) + list(range(1, num_classes, 2))
    step = order.index(label)
    return float(lo * (hi / lo) ** (step / max(num_classes - 1, 1)))


def _onset_window(duration: float, num_frames: int, fps: int) -> tuple[float, float]:
    """Times allowed for onsets: the event and its visible flash frame must fit in the clip."""
    return 0.05, min(duration - 0.15, (num_frames - 1) / fps)


def sample_onsets(
    rng: np.random.Generator, rhythm: str, duration: float, num_frames: int, fps: int
) -> np.ndarray:
    """Onset times ``(E,)`` (sorted, seconds) of a rhythm pattern with tempo jitter and phase.

    Tempo is scaled by ``U(0.9, 1.1)``, the pattern starts at a random position of its cycle
    at a random phase, and every onset gets a small timing jitter (<= 8 ms). At least one
    onset is always returned.
    """
    iois = np.asarray(RHYTHM_PATTERNS[rhythm]) * rng.uniform(0.9, 1.1)
    cycle = float(iois.sum())
    t_min, t_max = _onset_window(duration, num_frames, fps)
    k = int(rng.integers(len(iois)))
    t = t_min - cycle + rng.uniform(0.0, cycle)
    n_steps = int(np.ceil((t_max - t) / iois.min())) + 2
    steps = iois[(k + np.arange(n_steps)) % len(iois)]
    onsets = t + np.concatenate([[0.0], np.cumsum(steps)])
    onsets = onsets + np.clip(rng.normal(0.0, 0.004, size=onsets.shape), -0.008, 0.008)
    onsets = onsets[(onsets >= t_min) & (onsets <= t_max)]
    if onsets.size == 0:
        onsets = np.array([rng.uniform(t_min, max(t_max, t_min))])
    return np.sort(onsets)


def event_offsets(rng: np.random.Generator, onsets: np.ndarray, duration: float) -> np.ndarray:
    """Offsets ``(E,)``: durations ``U(0.10, 0.20)`` s, capped to end 30 ms before the next onset
    and 10 ms before the end of the clip (never shorter than 50 ms)."""
    d = rng.uniform(*EVENT_DURATION, size=onsets.shape)
    nxt = np.append(onsets[1:], np.inf)
    cap = np.minimum(nxt - onsets - 0.03, duration - onsets - 0.01)
    return onsets + np.maximum(np.minimum(d, cap), 0.05)


def min_flash_gap(fps: int) -> float:
    """Smallest allowed distance (s) between a distractor flash and any sound onset."""
    return max(0.15, 2.5 / fps)


def _sample_background(rng: np.random.Generator, num_waves: int = 3) -> Background:
    color_a = rng.uniform(0.08, 0.8, size=3)
    color_b = rng.uniform(0.08, 0.8, size=3)
    angle = rng.uniform(0.0, 2 * np.pi)
    freq = rng.uniform(0.5, 2.5, size=num_waves)
    direction = rng.uniform(0.0, 2 * np.pi, size=num_waves)
    waves = np.stack(
        [
            freq * np.cos(direction),
            freq * np.sin(direction),
            rng.uniform(0.0, 2 * np.pi, size=num_waves),
            rng.uniform(-0.25, 0.25, size=num_waves),
            rng.uniform(0.03, 0.08, size=num_waves),
        ],
        axis=1,
    )
    tints = rng.uniform(0.3, 1.0, size=(num_waves, 3))
    return Background(color_a, color_b, float(angle), waves, tints)


def _sample_color(rng: np.random.Generator, avoid: np.ndarray, tries: int = 20) -> np.ndarray:
    """Random saturated colour at least 0.3 (RGB distance) away from ``avoid`` if possible."""
    best, best_d = None, -1.0
    for _ in range(tries):
        c = hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.45, 0.85))
        d = float(np.linalg.norm(c - avoid))
        if d > best_d:
            best, best_d = c, d
        if d >= 0.3:
            break
    assert best is not None
    return best


def _class_color(rng: np.random.Generator, shape: int, num_classes: int, jitter: float) -> np.ndarray:
    """Colour of an object of class ``shape``: hue ``shape / num_classes`` + ``U(-jitter, jitter)``
    turns, saturation ``U(0.6, 1)``, value ``U(0.55, 0.9)``."""
    hue = (shape / num_classes + rng.uniform(-jitter, jitter)) % 1.0
    return hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 0.9))


def _sample_path(
    rng: np.random.Generator, times: np.ndarray, radius: float, height: int, width: int
) -> np.ndarray:
    """``(T, 2)`` pixel centres: bouncing linear motion or a slow sinusoidal path."""
    size = np.array([width, height], dtype=np.float64)
    lo = np.full(2, radius)
    span = np.maximum(size - 2 * radius, 1e-6)
    t = times[:, None]
    if rng.uniform() < 0.5:  # bounce off the borders (triangle-wave reflection)
        speed = rng.uniform(0.08, 0.3) * min(height, width)
        theta = rng.uniform(0.0, 2 * np.pi)
        vel = speed * np.array([np.cos(theta), np.sin(theta)])
        start = rng.uniform(0.0, 1.0, size=2) * span
        s = (start + vel * t) % (2 * span)
        return lo + span - np.abs(s - span)
    amp = rng.uniform(0.1, 0.5, size=2) * span / 2
    centre = lo + amp + rng.uniform(0.0, 1.0, size=2) * (span - 2 * amp)
    freq = rng.uniform(0.1, 0.5, size=2)
    phase = rng.uniform(0.0, 2 * np.pi, size=2)
    return centre + amp * np.sin(2 * np.pi * freq * t + phase)


def sample_scene(cfg: WorldConfig, index: int, label: int, rhythm: int) -> Scene:
    """Sample the scene of video ``index`` with class ``label`` and rhythm ``rhythm``.

    Uses ``np.random.default_rng([cfg.seed, index])`` only, so the result is a function of
    ``(cfg, index, label, rhythm)`` and independent of worker scheduling.
    """
    rng = np.random.default_rng([cfg.seed, index])
    T, fps, H, W = cfg.num_frames, cfg.fps, cfg.height, cfg.width
    duration = float(cfg.duration)
    times = np.arange(T, dtype=np.float64) / fps

    background = _sample_background(rng)

    # Sound events of the source, following the rhythm class.
    onsets = sample_onsets(rng, RHYTHMS[rhythm], duration, T, fps)
    events = np.stack([onsets, event_offsets(rng, onsets, duration)], axis=1)

    # Objects: 0 = source (shape = class), then distractors with a different shape.
    n_distractors = int(rng.integers(0, cfg.max_distractors + 1))
    others = [c for c in range(cfg.num_classes) if c != label]
    shapes = [label] + [int(others[i]) for i in rng.integers(0, len(others), size=n_distractors)]
    radii = rng.uniform(*cfg.object_radius, size=len(shapes)) * min(H, W)
    if cfg.color_mode == "class":
        colors = [_class_color(rng, s, cfg.num_classes, float(cfg.class_hue_jitter)) for s in shapes]
    else:
        colors = [_sample_color(rng, background.mean_color) for _ in shapes]

    # Paths: retry a few times so that objects start apart (they may still cross later).
    paths: list[np.ndarray] = []
    for i, r in enumerate(radii):
        best, best_gap = None, -np.inf
        for _ in range(20):
            p = _sample_path(rng, times, float(r), H, W)
            gap = min(
                (np.linalg.norm(p[0] - q[0]) - 0.8 * (r + radii[j]) for j, q in enumerate(paths)),
                default=np.inf,
            )
            if gap > best_gap:
                best, best_gap = p, gap
            if gap >= 0:
                break
        assert best is not None
        paths.append(best)

    # Distractor flashes: their own rhythm/phase, kept away from every sound onset.
    gap = min_flash_gap(fps)
    flashes = [onsets]
    for _ in range(n_distractors):
        f = sample_onsets(rng, RHYTHMS[int(rng.integers(len(RHYTHMS)))], duration, T, fps)
        far = np.abs(f[:, None] - onsets[None, :]).min(axis=1) >= gap
        flashes.append(f[far])

    objects = tuple(
        ObjectTrack(shapes[i], colors[i], float(radii[i]), paths[i], flashes[i])
        for i in range(len(shapes))
    )
    z_order = tuple(int(i) for i in rng.permutation(len(objects)))

    hum = rng.uniform() < 0.5
    audio = AudioParams(
        f0=class_f0(label, cfg.num_classes) * float(rng.uniform(0.97, 1.03)),
        amps=rng.uniform(0.6, 1.0, size=len(onsets)),
        noise_colour=str(list(NOISE_COLOURS)[int(rng.integers(len(NOISE_COLOURS)))]),
        snr_db=float(rng.uniform(*cfg.noise_snr_db)),
        hum_freq=float(rng.choice([50.0, 60.0])) if hum else 0.0,
        hum_db=float(rng.uniform(-6.0, 6.0)),
        peak=float(rng.uniform(0.5, 0.9)),
        seed=int(rng.integers(2**62)),
    )
    return Scene(
        index=index,
        label=label,
        rhythm=rhythm,
        num_frames=T,
        fps=fps,
        height=H,
        width=W,
        sample_rate=cfg.sample_rate,
        duration=duration,
        objects=objects,
        z_order=z_order,
        events=events,
        background=background,
        audio=audio,
    )
