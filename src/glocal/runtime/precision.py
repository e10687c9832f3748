"""Device, precision and memory-format selection (detect fast bf16; fall back cleanly)."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import torch

__all__ = [
    "resolve_device",
    "cpu_has_fast_bf16",
    "resolve_precision",
    "autocast",
    "use_channels_last",
    "make_grad_scaler",
    "configure_determinism",
    "precision_name",
]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from ..errors import ConfigError

        raise ConfigError("train.device=cuda but no CUDA device is available; use train.device=auto or cpu")
    return torch.device(name)


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix units (AMX or AVX512-BF16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``name`` (``None`` = full fp32). ``auto`` picks bf16 where it is fast."""
    if name == "fp32":
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        if device.type != "cuda":
            from ..errors import ConfigError

            raise ConfigError("train.precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """An autocast context for ``dtype`` or a no-op for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_channels_last(setting: str, device: torch.device, dtype: torch.dtype | None) -> bool:
    """``auto`` → channels_last_3d when training in reduced precision (where it pays off)."""
    if setting == "on":
        return True
    if setting == "off":
        return False
    return dtype is not None


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32`` / ``bf16`` / ``fp16`` for an autocast dtype."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


def make_grad_scaler(device: torch.device, dtype: torch.dtype | None) -> "torch.amp.GradScaler | None":
    """A GradScaler for fp16 autocast (CUDA only); ``None`` for fp32 and bf16 (no underflow)."""
    if dtype != torch.float16:
        return None
    if device.type != "cuda":
        from ..errors import ConfigError

        raise ConfigError("train.precision=fp16 (with a GradScaler) needs a CUDA device; use bf16 or fp32 on CPU")
    return torch.amp.GradScaler("cuda")


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """``True``: deterministic kernels only (errors on ops without one), no cuDNN autotuning.
    ``False``: let cuDNN pick the fastest convolution algorithms."""
    import os

    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = device.type == "cuda"


def to_channels_last_3d(module: torch.nn.Module) -> torch.nn.Module:
    """Put every 5-D parameter/buffer (3-D conv weights) in ``channels_last_3d``, leave the rest.

    ``module.to(memory_format=torch.channels_last_3d)`` fails on models that also hold 4-D
    weights (2-D convs, e.g. a 2-D audio ResNet); this converts only what the format applies to.
    """
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.dim() == 5:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last_3d)
    return module

