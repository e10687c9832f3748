"""Audio augmentations: each returns what it did, and does exactly that."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal.data.audio_frontend import build_logmel
from glocal.data.audio_transforms import (
    LogMelAugment,
    WaveformAugment,
    change_speed,
    freq_mask,
    random_gain,
    reverse,
    time_mask,
    time_stretch,
)

SR = 16000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * np.pi * freq * t)).float()


def dominant(x: torch.Tensor) -> float:
    spec = np.abs(np.fft.rfft(x.numpy() * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def test_gain_within_ten_percent_and_reported():
    x = tone(440)
    gains = []
    for i in range(50):
        y, p = random_gain(x, np.random.default_rng(i))
        assert torch.allclose(y, x * p["gain"])
        gains.append(p["gain"])
    assert 0.9 <= min(gains) and max(gains) <= 1.1 and max(gains) - min(gains) > 0.1
    y, p = WaveformAugment(gain=0.0)(x, np.random.default_rng(0))
    assert y is x and p == {}


def test_time_and_frequency_masks():
    spec = torch.randn(2, 20, 50)
    out, p = time_mask(spec, np.random.default_rng(1), max_width=10, n_masks=2)
    keep = torch.ones(50, dtype=torch.bool)
    for start, width in p["time_masks"]:
        assert 0 <= width <= 10 and start + width <= 50
        assert torch.all(out[..., start : start + width] == p["fill"])
        keep[start : start + width] = False
    assert torch.equal(out[..., keep], spec[..., keep])
    assert p["fill"] == pytest.approx(float(spec.mean()))
    out, p = freq_mask(spec, np.random.default_rng(2), max_width=8, value=0.0)
    ((start, width),) = p["freq_masks"]
    assert torch.all(out[:, start : start + width] == 0)
    rest = torch.ones(20, dtype=torch.bool)
    rest[start : start + width] = False
    assert torch.equal(out[:, rest], spec[:, rest])


def test_reverse_is_exact():
    x = torch.randn(3, 100)
    y, p = reverse(x)
    assert p == {"reversed": True} and torch.equal(y, x[:, torch.arange(99, -1, -1)])


@pytest.mark.parametrize("mode", ["sinc", "linear"])
@pytest.mark.parametrize("speed", [2.0, 4.0, 0.5])
def test_speed_changes_length_and_pitch(mode, speed):
    x = tone(440)
    y, p = change_speed(x, speed, mode=mode)
    assert p == {"speed": speed, "mode": mode}
    assert y.shape == (round(SR / speed),)
    assert abs(dominant(y) - 440 * speed) < 3 * speed
    assert abs(rms(y) - rms(x)) < 0.03  # no gain change in the pass band


@pytest.mark.parametrize("speed", [2.0, 4.0, 0.5, 1.5])
def test_stretch_changes_length_but_not_pitch(speed):
    x = tone(440)
    y, p = change_speed(x, speed, mode="stretch")
    assert p == {"speed": speed, "mode": "stretch"}
    assert y.shape == (round(SR / speed),)
    assert abs(dominant(y) - 440) < 3  # a resampler would move it to 440 * speed
    assert abs(rms(y[600:-600]) - rms(x)) < 0.15 * rms(x)  # level kept (phase-vocoder ripple aside)
    chord = tone(300) + tone(1200)
    spec = np.abs(np.fft.rfft(time_stretch(chord, speed).numpy()))
    freqs = np.fft.rfftfreq(round(SR / speed), 1 / SR)
    top2 = sorted(freqs[np.argsort(spec)[-2:]])
    assert abs(top2[0] - 300) < 5 and abs(top2[1] - 1200) < 5


def _stretch_loop(x: torch.Tensor, rate: float, n_out: int, n_fft: int = 512) -> torch.Tensor:
    """Frame-by-frame phase vocoder (the obviously-correct reference for ``time_stretch``)."""
    hop = n_fft // 4
    win = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(x.double(), n_fft, hop, window=win, center=True, pad_mode="constant", return_complex=True)
    n_bins, frames = spec.shape
    spec = torch.cat([spec, torch.zeros(n_bins, 1, dtype=spec.dtype)], dim=1)
    advance = [2 * np.pi * hop * f / n_fft for f in range(n_bins)]
    phase = [float(torch.angle(spec[f, 0])) for f in range(n_bins)]
    cols, j = [], 0
    while (pos := j * rate) < frames:
        k = int(np.floor(pos + 1e-9))
        a = max(pos - k, 0.0)
        col = torch.zeros(n_bins, dtype=spec.dtype)
        for f in range(n_bins):
            mag = (1 - a) * abs(complex(spec[f, k])) + a * abs(complex(spec[f, k + 1]))
            col[f] = complex(mag * np.cos(phase[f]), mag * np.sin(phase[f]))
            d = float(torch.angle(spec[f, k + 1]) - torch.angle(spec[f, k])) - advance[f]
            d -= 2 * np.pi * round(d / (2 * np.pi))
            phase[f] += advance[f] + d
        cols.append(col)
        j += 1
    return torch.istft(torch.stack(cols, dim=1), n_fft, hop, window=win, center=True, length=n_out).float()


@pytest.mark.parametrize("rate", [1.7, 0.6])
def test_stretch_equals_frame_by_frame_reference(rate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, generator=g) * 0.3 + tone(700)[:3000]
    n_out = round(3000 / rate)
    fast = time_stretch(x, rate)
    torch.testing.assert_close(fast, _stretch_loop(x, rate, n_out), atol=1e-5, rtol=0)
    batched = time_stretch(torch.stack([x, 2 * x]), rate)  # leading dims are independent signals
    torch.testing.assert_close(batched[1], 2 * fast, atol=1e-5, rtol=0)


def test_sinc_speed_filters_what_would_alias():
    x = tone(6000)  # 12 kHz after a 2x speed-up: above the 8 kHz Nyquist frequency
    sinc, _ = change_speed(x, 2.0, mode="sinc")
    linear, _ = change_speed(x, 2.0, mode="linear")
    assert rms(sinc[100:-100]) < 0.02 < rms(linear)  # linear folds it back to 4 kHz


def test_speed_one_and_num_out():
    x = torch.randn(1000)
    y, _ = change_speed(x, 1.0)
    assert torch.equal(y, x)
    y, _ = change_speed(x, 2.0, num_out=480)
    assert y.shape == (480,)
    # Output sample k is the input at k * speed: a ramp stays a ramp with twice the slope.
    ramp = torch.arange(200, dtype=torch.float32)
    fast, _ = change_speed(ramp, 2.0, mode="linear")
    assert torch.allclose(fast, 2 * torch.arange(100, dtype=torch.float32))


def test_logmel_augment_shape_and_params():
    frontend = build_logmel("glcm", SR, n_mels=40)
    aug = LogMelAugment(frontend, gain=0.1, time_masks=1, freq_masks=1)
    spec, p = aug(tone(440, 0.5), np.random.default_rng(0))
    assert spec.shape == (40, 1 + 8000 // 160)
    assert {"gain", "time_masks", "freq_masks"} <= set(p)


@pytest.mark.parametrize("k", [2, 4])
def test_integer_speed_fast_path_equals_general_filter(k):
    from glocal.data.audio_transforms import _sinc_decimate, _sinc_gather

    x = torch.randn(2, 3000)
    fast = _sinc_decimate(x, k, 3000 // k, 16)
    slow = _sinc_gather(x, float(k), 3000 // k, 16)
    assert torch.allclose(fast, slow, atol=1e-5)
