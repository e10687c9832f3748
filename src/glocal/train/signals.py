"""Graceful stop on SIGTERM / SIGINT: finish the current step, checkpoint, exit cleanly.

Cluster schedulers preempt jobs with SIGTERM (then SIGKILL after a grace period; torchrun
forwards SIGTERM to its workers); Ctrl-C sends SIGINT. :class:`StopRequest` turns the first
signal into a flag that the training loop checks at every step boundary — it then writes a
checkpoint and returns. A second SIGINT aborts at once (``KeyboardInterrupt``).

DataLoader worker processes forked while the handler is installed inherit it; there it ignores
the signal, so the workers keep serving the batch the main process is waiting for.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

__all__ = ["StopRequest"]


class StopRequest:
    """Context manager that records the first SIGTERM / SIGINT instead of dying.

    Attributes:
        signal_name: ``"SIGTERM"`` / ``"SIGINT"`` once a signal arrived, else ``None``.
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT), verbose: bool = True) -> None:
        self.signals = signals
        self.verbose = verbose
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._pid = os.getpid()

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived in this process."""
        return self.signal_name is not None

    def request(self, name: str) -> None:
        """Request a stop programmatically (tests, or a rank told by its peers)."""
        if self.signal_name is None:
            self.signal_name = name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked DataLoader worker: let the main process decide
            return
        name = signal.Signals(signum).name
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal_name is None:
            self.signal_name = name
            if self.verbose:
                print(
                    f"[glocal] {name} received: saving a checkpoint at the end of this step, then exiting"
                    + (" (Ctrl-C again to abort now)" if signum == signal.SIGINT else ""),
                    file=sys.stderr,
                    flush=True,
                )

    def __enter__(self) -> "StopRequest":
        self._pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
