"""LogMel frontend: filterbank vs a slow loop reference, sine peaks, frame counts, presets."""

from __future__ import annotations

import math

import pytest
import torch

from glocal.data.logmel import (
    LOGMEL_PRESETS,
    LogMel,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
    resize_time,
)
from glocal.errors import ConfigError


def _mel(f: float, scale: str) -> float:
    if scale == "htk":
        return 2595.0 * math.log10(1.0 + f / 700.0)
    return 3.0 * f / 200.0 if f < 1000.0 else 15.0 + 27.0 * math.log(f / 1000.0) / math.log(6.4)


def _hz(m: float, scale: str) -> float:
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return 200.0 * m / 3.0 if m < 15.0 else 1000.0 * math.exp((m - 15.0) * math.log(6.4) / 27.0)


def _slow_filterbank(
    sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float, scale: str, norm: str | None
) -> torch.Tensor:
    """Explicit loops straight from the definition of a triangular mel filterbank."""
    lo_mel, hi_mel = _mel(f_min, scale), _mel(f_max, scale)
    corners = [_hz(lo_mel + i * (hi_mel - lo_mel) / (n_mels + 1), scale) for i in range(n_mels + 2)]
    rows = []
    for m in range(n_mels):
        left, centre, right = corners[m], corners[m + 1], corners[m + 2]
        row = []
        for k in range(n_fft // 2 + 1):
            f = k * sr / n_fft
            if left < f <= centre:
                w = (f - left) / (centre - left)
            elif centre < f < right:
                w = (right - f) / (right - centre)
            else:
                w = 0.0
            if norm == "slaney":
                w *= 2.0 / (right - left)
            row.append(w)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, f_min, f_max, scale, norm",
    [
        (16000, 512, 80, 0.0, 8000.0, "htk", None),
        (16000, 512, 40, 50.0, 7000.0, "slaney", "slaney"),
        (24000, 1024, 64, 20.0, 12000.0, "htk", "slaney"),
    ],
)
def test_filterbank_matches_slow_reference(sr, n_fft, n_mels, f_min, f_max, scale, norm) -> None:
    fast = mel_filterbank(sr, n_fft, n_mels, f_min, f_max, scale, norm)
    slow = _slow_filterbank(sr, n_fft, n_mels, f_min, f_max, scale, norm)
    assert fast.shape == (n_mels, n_fft // 2 + 1)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)


def test_mel_scale_roundtrip_and_anchor_points() -> None:
    f = torch.tensor([0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0])
    for scale in ("htk", "slaney"):
        torch.testing.assert_close(mel_to_hz(hz_to_mel(f, scale), scale), f.double())
    assert abs(float(hz_to_mel(1000.0, "htk")) - 1000.0) < 0.1  # HTK: 1 kHz ~ 1000 mel
    assert abs(float(hz_to_mel(1000.0, "slaney")) - 15.0) < 1e-9


@pytest.mark.parametrize("preset", ["glcm", "avts"])
def test_filter_rows_nonnegative_and_cover_their_range(preset: str) -> None:
    lm = LogMel.from_preset(preset)
    fb = lm.fb
    assert fb is not None and (fb >= 0).all()
    freqs = torch.arange(lm.n_fft // 2 + 1) * lm.sample_rate / lm.n_fft
    mels = torch.linspace(
        float(hz_to_mel(lm.f_min)), float(hz_to_mel(lm.f_max)), lm.n_mels + 2, dtype=torch.float64
    )
    corners = mel_to_hz(mels).float()
    for m in range(lm.n_mels):
        lo, hi = corners[m].item(), corners[m + 2].item()
        inside = (freqs > lo) & (freqs < hi)
        assert (fb[m][inside] > 0).any(), f"filter {m} has no FFT bin in ({lo:.1f}, {hi:.1f}) Hz"
        assert (fb[m][~inside] == 0).all(), f"filter {m} leaks outside its range"
        assert fb[m].max() <= 1.0 + 1e-6
    # peak-normalised triangles form a partition of unity between the first and last centre
    between = (freqs >= corners[1]) & (freqs <= corners[-2])
    torch.testing.assert_close(fb[:, between].sum(0), torch.ones(int(between.sum())))


def test_sine_peaks_in_mel_bin_nearest_1khz() -> None:
    lm = LogMel.from_preset("glcm")
    t = torch.arange(16000) / 16000.0
    wave = 0.5 * torch.sin(2 * math.pi * 1000.0 * t)
    spec = lm(wave[None])  # (1, 80, 101)
    mels = torch.linspace(float(hz_to_mel(0.0)), float(hz_to_mel(8000.0)), 82, dtype=torch.float64)
    centres = mel_to_hz(mels)[1:-1]
    nearest = int((centres - 1000.0).abs().argmin())
    assert int(spec[0, :, 5:-5].mean(dim=1).argmax()) == nearest


def test_power_spectrum_level_of_a_sine() -> None:
    # 1 kHz is exactly FFT bin 32 at 16 kHz / n_fft 512: power = (A * sum(window) / 2)^2
    lm = LogMel(n_mels=None, log="ln", eps=1e-12)
    t = torch.arange(8000) / 16000.0
    wave = 0.5 * torch.sin(2 * math.pi * 1000.0 * t)
    power = lm.power_spectrogram(wave[None].float())
    expected = (0.5 * torch.hann_window(400).sum() / 2) ** 2
    assert int(power[0, :, 10].argmax()) == 32
    torch.testing.assert_close(power[0, 32, 5:-5], expected.expand(power.shape[-1] - 10), rtol=1e-3, atol=0)


@pytest.mark.parametrize("n", [1, 100, 159, 160, 161, 16000, 16001])
def test_frame_count_formula(n: int) -> None:
    lm = LogMel.from_preset("glcm")
    out = lm(torch.randn(2, n))
    assert out.shape == (2, 80, 1 + n // 160) == (2, 80, lm.num_frames(n))
    assert torch.isfinite(out).all()


def test_multichannel_is_mixed_to_mono_and_float32_under_autocast() -> None:
    lm = LogMel.from_preset("glcm")
    wave = torch.randn(2, 2, 3200)
    ref = lm(wave.mean(dim=1))
    torch.testing.assert_close(lm(wave), ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lm(wave.bfloat16().float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, lm(wave.bfloat16().float()))


def test_ln_db_and_top_db_match_direct_formulas() -> None:
    torch.manual_seed(0)
    wave = torch.randn(1, 3200)
    lm = LogMel()
    mel = lm.fb @ lm.power_spectrogram(wave)
    torch.testing.assert_close(lm(wave), torch.log(mel + 1e-6))
    db = LogMel(log="db", eps=1e-10)(wave)
    torch.testing.assert_close(db, 10 * torch.log10(mel.clamp(min=1e-10)))
    click = torch.zeros(1, 3200)
    click[0, 1600] = 1.0  # most frames are silent -> clipped at peak - 60 dB
    out = LogMel(log="db", eps=1e-10, top_db=60.0)(click)
    assert math.isclose((out.max() - out.min()).item(), 60.0, rel_tol=1e-4)


def test_norm_stats() -> None:
    mean, std = torch.linspace(-1, 1, 80), torch.linspace(1, 2, 80)
    torch.manual_seed(0)
    w = torch.randn(1, 1600)
    expected = (LogMel()(w) - mean[:, None]) / std[:, None]
    torch.testing.assert_close(LogMel(norm_stats=(mean, std))(w), expected)
    with pytest.raises(ConfigError, match="norm_stats"):
        LogMel(norm_stats=(mean[:10], std[:10]))


def test_presets_and_overrides() -> None:
    assert set(LOGMEL_PRESETS) == {"glcm", "avid", "avts"}
    g = LogMel.from_preset("glcm")
    assert (g.sample_rate, g.n_fft, g.win_length, g.hop_length, g.n_bins, g.log) == (
        16000, 512, 400, 160, 80, "ln")
    a = LogMel.from_preset("avid")
    assert a.sample_rate == 24000 and a.n_bins == 257 and a.log == "db"
    assert a(torch.randn(1, 48000)).shape == (1, 257, 201)  # 2 s at 100 frames/s
    assert LogMel.from_preset("glcm", n_mels=40).n_bins == 40
    with pytest.raises(ConfigError, match="preset"):
        LogMel.from_preset("vggish")


@pytest.mark.parametrize(
    "kwargs, word",
    [(dict(log="log10"), "log"), (dict(win_length=1024), "win_length"),
     (dict(f_max=9000.0), "f_max"), (dict(hop_length=0), "hop_length"),
     (dict(mel_scale="bark"), "mel_scale"), (dict(norm="area"), "norm"), (dict(n_mels=0), "n_mels")],
)
def test_bad_config(kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        LogMel(**kwargs)


def test_resize_time() -> None:
    spec = torch.arange(12.0).view(1, 2, 6)
    out = resize_time(spec, 3)
    assert out.shape == (1, 2, 3)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 2.0, 4.0]))  # nearest picks every 2nd
    assert resize_time(torch.randn(2, 80, 101), 96).shape == (2, 80, 96)
    assert resize_time(torch.randn(80, 101), 96, mode="linear").shape == (80, 96)
    assert resize_time(torch.randn(2, 80, 50), 96, mode="area").shape == (2, 80, 96)
    with pytest.raises(ConfigError, match="mode"):
        resize_time(spec, 3, mode="cubic")
    with pytest.raises(ConfigError, match="steps"):
        resize_time(spec, 0)
