"""Fingerprinting edits: output shapes, determinism, and what each edit does."""

from __future__ import annotations

import numpy as np
import pytest

from glocal.eval.edits import EDITS, add_noise, apply_edit, blur, speed

T, N, FPS, SR = 8, 4000, 8.0, 4000


def _source(span: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = int(np.ceil(T * span))
    frames = rng.integers(0, 256, size=(t, 32, 32, 3), dtype=np.uint8)
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(np.ceil(N * span))) / SR)).astype(np.float32)
    return frames, audio


@pytest.mark.parametrize("name", sorted(EDITS))
def test_edit_shape_and_determinism(name):
    frames, audio = _source(EDITS[name].span)
    out1, a1 = apply_edit(name, frames, audio, num_frames=T, num_samples=N, fps=FPS, sample_rate=SR, seed=(0, 1))
    out2, a2 = apply_edit(name, frames, audio, num_frames=T, num_samples=N, fps=FPS, sample_rate=SR, seed=(0, 1))
    assert out1.shape == (T, 32, 32, 3) and out1.dtype == np.uint8
    assert a1 is not None and a1.shape == (N,) and a1.dtype == np.float32 and np.isfinite(a1).all()
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(out1, frames[:T])  # every edit changes the pixels
    no_audio, none = apply_edit(name, frames, None, num_frames=T, num_samples=N, fps=FPS, sample_rate=SR)
    assert none is None and no_audio.shape == (T, 32, 32, 3)


def test_random_edits_depend_on_the_seed():
    frames, audio = _source()
    a = apply_edit("crop", frames, audio, num_frames=T, num_samples=N, fps=FPS, sample_rate=SR, seed=1)[0]
    b = apply_edit("crop", frames, audio, num_frames=T, num_samples=N, fps=FPS, sample_rate=SR, seed=2)[0]
    assert not np.array_equal(a, b)


def test_blur_keeps_flat_frames_and_smooths_noise():
    flat = np.full((2, 16, 16, 3), 100, dtype=np.uint8)
    assert np.array_equal(blur(flat, None)[0], flat)
    frames, _ = _source()
    assert blur(frames, None)[0].astype(float).std() < frames.astype(float).std() / 2


def test_noise_snr_and_speed_resampling():
    frames, audio = _source()
    _, noisy = add_noise(frames, audio, np.random.default_rng(0), snr_db=10.0)
    noise = noisy - audio
    snr = 10 * np.log10(np.mean(audio.astype(float) ** 2) / np.mean(noise.astype(float) ** 2))
    assert snr == pytest.approx(10.0, abs=0.5)
    src = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    out, a = speed(src, np.arange(10, dtype=np.float32), 8, 8, factor=1.25)
    assert out[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 5, 6, 7, 8]  # floor(k * 1.25)
    np.testing.assert_allclose(a, np.arange(8) * 1.25)


def test_unknown_edit():
    frames, audio = _source()
    with pytest.raises(ValueError, match="unknown edit"):
        apply_edit("rotate", frames, audio, num_frames=T, num_samples=N, fps=FPS, sample_rate=SR)
