"""Audio-visual "fakes": the original frames with manipulated audio.

Two manipulations, picked at random per video:

* ``audio_shift``: the whole waveform is shifted circularly by ``s`` seconds,
  ``|s| in [0.3, min(1.0, duration - 0.3)]``, random sign (positive = audio delayed);
* ``event_desync``: the audio is re-rendered with the same class, rhythm, timbre and noise
  but with the onsets re-drawn (new tempo jitter and phase), so it no longer matches the flashes.

For rhythmic audio a shift or re-draw could land the events back on the flashes (e.g. a shift
by one beat period). Candidates are therefore re-drawn until the median distance between the
new onsets and the nearest original onset is at least :data:`MIN_DESYNC` seconds (the best of
:data:`TRIES` candidates is kept otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RHYTHMS
from .render_audio import AudioParts, render_audio
from .scene import Scene, event_offsets, sample_onsets

__all__ = ["MANIPULATIONS", "MIN_DESYNC", "FakeAudio", "make_fake"]

MANIPULATIONS: tuple[str, ...] = ("audio_shift", "event_desync")
MIN_DESYNC = 0.08
TRIES = 30


@dataclass(frozen=True)
class FakeAudio:
    """A manipulated waveform.

    Attributes:
        manipulation: one of :data:`MANIPULATIONS`.
        shift: signed time shift in seconds for ``audio_shift`` (0.0 for ``event_desync``).
        audio: float32 ``(N,)`` waveform.
        events: ``(E, 2)`` onset/offset seconds of the events in the fake audio.
    """

    manipulation: str
    shift: float
    audio: np.ndarray
    events: np.ndarray


def _median_gap(candidate: np.ndarray, reference: np.ndarray, period: float | None) -> float:
    """Median over ``candidate`` of the distance to the nearest ``reference`` onset."""
    d = np.abs(candidate[:, None] - reference[None, :])
    if period is not None:
        d = np.minimum(d, period - d)
    return float(np.median(d.min(axis=1)))


def make_fake(scene: Scene, audio: AudioParts, seed: int) -> FakeAudio:
    """Build the fake audio of ``scene`` from its rendered ``audio`` (deterministic in seed)."""
    rng = np.random.default_rng([seed, scene.index, 1])
    manipulation = MANIPULATIONS[int(rng.integers(len(MANIPULATIONS)))]
    onsets = scene.onsets
    duration = scene.duration
    sr = scene.sample_rate
    n = audio.mix.shape[0]
    if manipulation == "audio_shift":
        hi = min(1.0, duration - 0.3)
        best, best_gap = 0.0, -1.0
        for _ in range(TRIES):
            s = float(rng.uniform(0.3, hi) * rng.choice([-1.0, 1.0]))
            s = round(s * sr) / sr
            gap = _median_gap((onsets + s) % duration, onsets, duration)
            if gap > best_gap:
                best, best_gap = s, gap
            if gap >= MIN_DESYNC:
                break
        k = int(round(best * sr))
        events = scene.events + best
        events = np.where(events >= duration, events - duration, events)
        events = np.where(events < 0, events + duration, events)
        return FakeAudio(manipulation, best, np.roll(audio.mix, k), events)

    rhythm = RHYTHMS[scene.rhythm]
    best_events, best_gap = scene.events, -1.0
    for _ in range(TRIES):
        new_on = sample_onsets(rng, rhythm, duration, scene.num_frames, scene.fps)
        gap = _median_gap(new_on, onsets, None)
        if gap > best_gap:
            best_events = np.stack([new_on, event_offsets(rng, new_on, duration)], axis=1)
            best_gap = gap
        if gap >= MIN_DESYNC:
            break
    parts = render_audio(scene, events=best_events)
    return FakeAudio(manipulation, 0.0, parts.mix, best_events)
