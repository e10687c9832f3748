"""Waveform rendering of a :class:`~.scene.Scene` (mono float32, peak <= 0.9).

Each sound event of the source is a tone with a class-specific timbre (harmonic recipe +
envelope) at the class fundamental (with the video's pitch jitter). Events start with a 4 ms
attack at their onset and end with a 15 ms release at their offset. Coloured background noise
(white/pink/brown, plus an optional mains hum) is added at the video's SNR, where SNR is the
power of the event signal over the whole clip divided by the noise power. Distractors are silent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import NOISE_COLOURS, Scene

__all__ = ["TIMBRES", "ENVELOPES", "class_timbre", "synth_tone", "AudioParts", "render_audio"]

#: Harmonic recipes.
TIMBRES: tuple[str, ...] = ("sine", "odd", "rich", "fm", "noise_band", "bell")
#: Event envelopes.
ENVELOPES: tuple[str, ...] = ("percussive", "sustained", "tremolo")

ATTACK_S = 0.004
RELEASE_S = 0.015


def class_timbre(label: int) -> tuple[str, str]:
    """``(recipe, envelope)`` of class ``label``; unique for every label < 18."""
    return TIMBRES[label % len(TIMBRES)], ENVELOPES[(label + label // len(TIMBRES)) % len(ENVELOPES)]


def _harmonics(
    t: np.ndarray, f0: float, ks: np.ndarray, amps: np.ndarray, phases: np.ndarray, nyq: float
) -> np.ndarray:
    ok = ks * f0 < 0.9 * nyq
    ks, amps, phases = ks[ok], amps[ok], phases[ok]
    if ks.size == 0:
        return np.sin(2 * np.pi * f0 * t)
    return (amps[:, None] * np.sin(2 * np.pi * f0 * ks[:, None] * t[None, :] + phases[:, None])).sum(0)


def synth_tone(
    recipe: str, envelope: str, f0: float, n: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One event: float64 ``(n,)`` with peak 1, starting at sample 0 and silent at sample n."""
    t = np.arange(n, dtype=np.float64) / sample_rate
    nyq = sample_rate / 2
    dur = n / sample_rate
    if recipe == "sine":
        x = np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi)) + 0.15 * np.sin(4 * np.pi * f0 * t)
    elif recipe == "odd":
        ks = np.arange(1, 12, 2, dtype=np.float64)
        x = _harmonics(t, f0, ks, 1.0 / ks, rng.uniform(0, 2 * np.pi, ks.size), nyq)
    elif recipe == "rich":
        ks = np.arange(1, 13, dtype=np.float64)
        x = _harmonics(t, f0, ks, ks**-0.8, rng.uniform(0, 2 * np.pi, ks.size), nyq)
    elif recipe == "fm":
        index = 2.5 * np.exp(-t / max(dur / 2, 1e-3)) + 0.5
        x = np.sin(2 * np.pi * f0 * t + index * np.sin(2 * np.pi * 1.41 * f0 * t))
    elif recipe == "noise_band":
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / sample_rate)
        spec[(f < f0 / 1.25) | (f > f0 * 1.25)] = 0.0
        x = np.fft.irfft(spec, n=n)
    elif recipe == "bell":
        ks = np.array([1.0, 2.76, 5.40, 8.93])
        amps = np.array([1.0, 0.6, 0.4, 0.25])
        parts = amps[:, None] * np.exp(-t[None, :] * ks[:, None] / max(dur, 1e-3))
        ok = ks * f0 < 0.9 * nyq
        x = (parts[ok] * np.sin(2 * np.pi * f0 * ks[ok, None] * t[None, :])).sum(0)
    else:
        raise ValueError(f"unknown timbre {recipe!r}; known: {TIMBRES}")

    if envelope == "percussive":
        env = np.exp(-t / max(0.3 * dur, 1e-3))
    elif envelope == "sustained":
        env = np.ones(n)
    elif envelope == "tremolo":
        env = 0.65 + 0.35 * np.cos(2 * np.pi * 30.0 * t)
    else:
        raise ValueError(f"unknown envelope {envelope!r}; known: {ENVELOPES}")
    env = env * np.clip(t / ATTACK_S, 0.0, 1.0) * np.clip((dur - t) / RELEASE_S, 0.0, 1.0)
    x = x * env
    peak = float(np.abs(x).max()) if n else 0.0
    return x / peak if peak > 0 else x


def _coloured_noise(rng: np.random.Generator, n: int, sample_rate: int, alpha: float) -> np.ndarray:
    """Unit-RMS noise with a ``1/f^alpha`` power spectrum (circular, so it loops seamlessly)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec *= np.maximum(f, 20.0) ** (-alpha / 2)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n=n)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


@dataclass(frozen=True)
class AudioParts:
    """Rendered audio and its components (all float32 ``(N,)``, same final gain applied).

    ``mix = signal + noise``; ``signal`` holds only the source's events.
    """

    mix: np.ndarray
    signal: np.ndarray
    noise: np.ndarray


def render_audio(
    scene: Scene, events: np.ndarray | None = None, amps: np.ndarray | None = None
) -> AudioParts:
    """Render the waveform of ``scene``.

    Args:
        scene: the scene (class, audio parameters, and by default its events).
        events: optional ``(E, 2)`` ``[onset, offset]`` seconds replacing ``scene.events``
            (used for desynchronised fakes; the noise realisation stays the same).
        amps: optional ``(E,)`` event amplitudes for ``events`` (default: the scene's, cycled).

    Returns:
        :class:`AudioParts` with ``N = round(duration * sample_rate)`` samples, peak of
        ``mix`` equal to ``scene.audio.peak`` (<= 0.9).
    """
    sr = scene.sample_rate
    n_total = int(round(scene.duration * sr))
    params = scene.audio
    events = scene.events if events is None else np.asarray(events, dtype=np.float64)
    if amps is None:
        amps = np.resize(params.amps, len(events)) if len(params.amps) else np.ones(len(events))
    recipe, envelope = class_timbre(scene.label)

    rng_events = np.random.default_rng([params.seed, 1])
    signal = np.zeros(n_total, dtype=np.float64)
    for (onset, offset), amp in zip(events, amps):
        start = int(round(onset * sr))
        stop = min(int(round(offset * sr)), n_total)
        if stop <= start:
            continue
        signal[start:stop] += amp * synth_tone(recipe, envelope, params.f0, stop - start, sr, rng_events)

    rng_noise = np.random.default_rng([params.seed, 0])
    noise = _coloured_noise(rng_noise, n_total, sr, NOISE_COLOURS[params.noise_colour])
    if params.hum_freq > 0:
        t = np.arange(n_total, dtype=np.float64) / sr
        ph = rng_noise.uniform(0, 2 * np.pi, size=3)
        hum = sum(
            a * np.sin(2 * np.pi * k * params.hum_freq * t + p)
            for k, a, p in zip((1, 2, 3), (1.0, 0.5, 0.25), ph)
        )
        hum = hum / max(float(np.sqrt(np.mean(hum**2))), 1e-12)
        noise = noise + 10 ** (params.hum_db / 20) * hum
        noise = noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)

    p_signal = float(np.mean(signal**2))
    noise *= np.sqrt(p_signal / 10 ** (params.snr_db / 10)) if p_signal > 0 else 0.1
    mix = signal + noise
    gain = params.peak / max(float(np.abs(mix).max()), 1e-12)
    return AudioParts(
        mix=(mix * gain).astype(np.float32),
        signal=(signal * gain).astype(np.float32),
        noise=(noise * gain).astype(np.float32),
    )
