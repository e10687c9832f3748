"""Presets adapted to other sample rates keep their millisecond resolution and a valid f_max."""

from __future__ import annotations

import math

import torch

from glocal.data.audio_frontend import build_logmel


def test_rate_adaptation_keeps_milliseconds():
    for sr in (8000, 16000, 22050, 44100, 48000):
        fe = build_logmel("glcm", sr, n_mels=40)
        assert abs(fe.win_length / sr - 0.025) < 1e-3
        assert abs(fe.hop_length / sr - 0.010) < 1e-3
        assert fe.n_fft >= fe.win_length and fe.n_fft & (fe.n_fft - 1) == 0
        assert fe.f_max <= sr / 2


def test_tone_lands_in_right_bin_at_8k():
    sr = 8000
    fe = build_logmel("glcm", sr, n_mels=40)
    t = torch.arange(sr) / sr
    spec = fe(torch.sin(2 * math.pi * 1000 * t)[None])
    assert spec.shape[:2] == (1, 40)
    peak = int(spec[0].mean(-1).argmax())
    quiet = build_logmel("glcm", sr, n_mels=40)(torch.sin(2 * math.pi * 3000 * t)[None])
    assert int(quiet[0].mean(-1).argmax()) > peak
