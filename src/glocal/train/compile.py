"""``train.compile``: whether to ``torch.compile`` the training step, and the compiled step with
its clean fallback to eager.

``auto`` (the default) compiles only where it pays: on CUDA, for runs with at least
:data:`COMPILE_PAYS_AFTER_STEPS` optimizer steps left. Measured on an H200 (issue 14; GLCM at
paper size, batch 32, bf16 + channels_last_3d): eager 685 clips/s, compiled 758 clips/s after
93 s of compilation. Each step then saves 32/685 - 32/758 = 4.5 ms, so the compile time is won
back after about 93 s / 4.5 ms = 20,700 steps (e.g. 3 epochs of 240k clips at batch 32).
Shorter runs and CPU runs stay eager (on CPU, inductor failed on the paper-size Conv3d lowering:
docs/distributed.md section 7). ``on`` compiles anywhere, ``off`` never.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

__all__ = ["COMPILE_PAYS_AFTER_STEPS", "CompiledStep", "resolve_compile"]

#: optimizer steps after which compiling has paid for itself (93 s / 4.5 ms per step, issue 14)
COMPILE_PAYS_AFTER_STEPS = 20_000


def resolve_compile(mode: str, device: torch.device, remaining_steps: int) -> tuple[bool, str]:
    """``(compile?, why)`` for ``train.compile`` = ``mode`` (``auto`` | ``on`` | ``off``) on
    ``device`` with ``remaining_steps`` optimizer steps left in the run."""
    if mode == "on":
        return True, "train.compile=on"
    if mode == "off":
        return False, "train.compile=off"
    if device.type != "cuda":
        return False, f"eager on {device.type} (compiling pays on CUDA only)"
    if remaining_steps < COMPILE_PAYS_AFTER_STEPS:
        return False, (f"eager: {remaining_steps:,} steps left, fewer than the {COMPILE_PAYS_AFTER_STEPS:,} after which "
                       "compiling (about 90 s) pays for itself; train.compile=on forces it")
    return True, (f"compiling the step with torch.compile ({remaining_steps:,} steps left >= "
                  f"{COMPILE_PAYS_AFTER_STEPS:,}; about 90 s before the first step; train.compile=off skips it)")


class CompiledStep:
    """``torch.compile`` of the loss module with a clean fallback to eager on failure.

    Compilation happens lazily at the first call; if it (or the ``torch.compile`` call itself)
    raises a TorchDynamo / Inductor error, a warning names the error and training continues in
    eager mode.
    """

    def __init__(self, module: torch.nn.Module, backend: str) -> None:
        from torch._dynamo.exc import TorchDynamoException

        self._errors = (TorchDynamoException,)
        self.eager = module
        self.compiled = False
        self._checked = False
        try:
            self.fn: Callable[[dict[str, Any]], dict[str, torch.Tensor]] = torch.compile(module, backend=backend)
            self.compiled = True
        except self._errors as exc:
            self._fallback(exc)

    def _fallback(self, exc: BaseException) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        warnings.warn(
            f"train.compile: torch.compile failed ({type(exc).__name__}: {first[:300]}); "
            "continuing without compilation",
            RuntimeWarning,
            stacklevel=3,
        )
        self.fn, self.compiled, self._checked = self.eager, False, True

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self._checked:
            return self.fn(batch)
        try:
            out = self.fn(batch)
        except self._errors as exc:
            self._fallback(exc)
            out = self.fn(batch)
        self._checked = True
        return out
