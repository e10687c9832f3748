"""Value checks of loss inputs that cost no host synchronisation.

``if bool((x < 0).any()): raise`` reads a device value on the host: on a GPU it waits for every
queued kernel, every step. :func:`check_all` asks the device instead
(:func:`torch._assert_async`): on the CPU the check runs at once and raises :class:`ValueError`
as before; on CUDA it is queued with the computation and a failure surfaces as a device-side
assertion at the next synchronisation (the CUDA context is then unusable: these checks guard
against programming errors, not against data a run should survive).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_all"]

#: devices whose ``_assert_async`` runs on the device (elsewhere :func:`check_all` reads the value)
_ASYNC_DEVICES = ("cpu", "cuda")


def check_all(ok: Tensor, message: str) -> None:
    """Raise ``ValueError(message)`` unless every element of the boolean ``ok`` is true (an empty
    ``ok`` passes), without a host sync on CPU or CUDA (module doc)."""
    if ok.numel() == 0:
        return
    if ok.device.type not in _ASYNC_DEVICES:
        if not bool(ok.all()):
            raise ValueError(message)
        return
    try:
        torch._assert_async(ok.all(), message)
    except RuntimeError as exc:  # CPU: raised at once
        if message not in str(exc):
            raise
        raise ValueError(message) from None
