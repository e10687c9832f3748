"""Precision switches: bf16 autocast (+ channels_last_3d) against fp32, fp16 refused on CPU, defaults."""

from __future__ import annotations

import pytest
import torch

from glocal.data.config import DataConfig
from glocal.methods.base import DIAG_PREFIXES
import torch.nn.functional as F

from glocal.errors import ConfigError
from glocal.methods import build_method
from glocal.methods.glcm import GLCMConfig
from glocal.runtime.precision import make_grad_scaler, resolve_precision, use_channels_last

TINY = dict(width_mult=0.125, fast_width_mult=0.5, audio_width_mult=0.125, stem_pool=False, slow_stride=4,
            proj_dim_global=16, proj_dim_local=8, n_mels=32)
ENCODERS = ("slow", "fast", "audio", "v_proj_global", "v_proj_local", "a_proj_global", "a_proj_local")

#: Stated tolerance of bf16 autocast against fp32 for one tiny-GLCM step (bf16 keeps 8 mantissa bits, so
#: ~0.4 % per rounding; measured over 3 seeds: loss within 1.1 %, per-encoder gradient cosine >= 0.87,
#: all-parameter cosine >= 0.92). The loss region runs in fp32 (methods.base.fp32), only the encoders in bf16.
LOSS_RTOL = 0.03
GRAD_COSINE_MIN = 0.8  # each encoder's gradient
TOTAL_GRAD_COSINE_MIN = 0.9  # all parameters together
GRAD_NORM_RATIO = (0.75, 1.33)


def _grads(channels_last: bool, bf16: bool, seed: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    method = build_method(GLCMConfig(**TINY), DataConfig(sample_rate=16000, fps=16.0))
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(4, 3, 8, 32, 32, generator=g)
    if channels_last:
        method = method.to(memory_format=torch.channels_last_3d)
        video = video.contiguous(memory_format=torch.channels_last_3d)
    batch = {"clip/video": video, "clip/audio": 0.3 * torch.randn(4, 8000, generator=g)}
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with ctx:
        losses = method.training_losses(batch)
    losses["loss"].backward()
    terms = {k: float(v.detach()) for k, v in losses.items() if not k.startswith(DIAG_PREFIXES)}
    return terms, {n: p.grad.clone() for n, p in method.named_parameters()}


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last_3d"])
@pytest.mark.parametrize("seed", [1])
def test_bf16_losses_and_gradients_match_fp32(channels_last, seed):
    ref_losses, ref_grads = _grads(False, False, seed)
    losses, grads = _grads(channels_last, True, seed)
    for key, value in ref_losses.items():
        assert losses[key] == pytest.approx(value, rel=LOSS_RTOL), key
    flat = lambda gs, names: torch.cat([gs[n].flatten().float() for n in names])  # noqa: E731
    total = F.cosine_similarity(flat(grads, list(ref_grads)), flat(ref_grads, list(ref_grads)), dim=0)
    assert total >= TOTAL_GRAD_COSINE_MIN
    for enc in ENCODERS:
        names = [n for n in ref_grads if n.startswith(enc + ".")]
        a, b = flat(grads, names), flat(ref_grads, names)
        assert F.cosine_similarity(a, b, dim=0) >= GRAD_COSINE_MIN, enc
        assert GRAD_NORM_RATIO[0] <= float(a.norm() / b.norm()) <= GRAD_NORM_RATIO[1], enc


def test_fp16_needs_cuda_and_defaults():
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="CUDA"):
        make_grad_scaler(cpu, torch.float16)
    assert make_grad_scaler(cpu, torch.bfloat16) is None and make_grad_scaler(cpu, None) is None
    assert resolve_precision("fp32", cpu) is None and resolve_precision("bf16", cpu) is torch.bfloat16
    # auto: bf16 where the CPU has bf16 matrix units, and then channels_last_3d with it
    auto = resolve_precision("auto", cpu)
    assert auto in (None, torch.bfloat16)
    assert use_channels_last("auto", cpu, auto) is (auto is not None)


def test_channels_last_3d_conversion_skips_4d_weights():
    """Regression: models mixing 3-D and 2-D convs (e.g. a 2-D audio ResNet) must convert cleanly."""
    import torch

    from glocal.models import ResNet2DAudio
    from glocal.runtime.precision import to_channels_last_3d

    model = torch.nn.ModuleDict({
        "video": torch.nn.Conv3d(3, 4, 3),
        "audio": ResNet2DAudio(depth=18, width_mult=0.125),
        "image": torch.nn.Conv2d(1, 2, 3),  # a 4-D weight: must be left alone, not crash
    })
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(1, 2, 3).to(memory_format=torch.channels_last_3d)
    to_channels_last_3d(model)
    assert model["video"].weight.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 1, 32, 40)
    assert model["audio"](x).shape[0] == 2
    assert model["image"](x).shape == (2, 2, 30, 38)
