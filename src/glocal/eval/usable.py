"""Which files an evaluation task can use: each file is probed once, the others are left out, counted, named.

A file is *unusable* for a task when it cannot be opened or its first frame cannot be decoded
(missing, empty, corrupt, ...), when the task reads video and the file has no video stream, or when
the task reads audio and the file has no audio track. :func:`usable_mask` leaves such rows out and
records ``name -> reason`` in a :class:`SkipLog` (``on_error="skip"``, the evaluation default) or
raises a one-line :class:`~glocal.errors.DataError` naming the first one (``on_error="raise"``).
The probe (:func:`glocal.data.io.probe`: open + first video frame) is cheap; damage further into a
file is only found by ``glocal scan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ..data.io import probe
from ..errors import DataError

__all__ = ["FileState", "SkipLog", "file_state", "unusable_reason", "usable_mask", "OnError"]

OnError = Literal["skip", "raise"]

#: files named in the one-line report / in ``meta.skipped`` of the results
SHOWN, RECORDED = 3, 20


@dataclass(frozen=True)
class FileState:
    """What the probe found: why the file does not decode (None when it does) and its streams."""

    problem: str | None
    has_video: bool = False
    has_audio: bool = False


def file_state(path: str) -> FileState:
    """Probe ``path`` once (never raises for a bad file)."""
    try:
        info = probe(path)
    except DataError as exc:
        text = str(exc)
        return FileState(text[len(path) + 2:] if text.startswith(f"{path}: ") else text)
    return FileState(None, info.has_video, info.has_audio)


def unusable_reason(state: FileState, needs: Sequence[str]) -> str | None:
    """Why a file in ``state`` cannot serve a task reading ``needs`` (``"video"``, ``"audio"``), else None."""
    if state.problem is not None:
        return state.problem
    if "video" in needs and not state.has_video:
        return "no video stream"
    if "audio" in needs and not state.has_audio:
        return "no audio stream"
    return None


@dataclass
class SkipLog:
    """Files left out of a task: ``files[name] = reason`` (names relative to the dataset root)."""

    files: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    def examples(self, limit: int = SHOWN) -> str:
        """``a.mp4 (reason), b.mp4 (reason) and 3 more``."""
        shown = ", ".join(f"{name} ({reason})" for name, reason in list(self.files.items())[:limit])
        more = len(self.files) - limit
        return shown + (f" and {more} more" if more > 0 else "")

    def line(self, task: str, total: int | None = None) -> str:
        """The one-line report printed when a task starts."""
        of = f" of {total}" if total is not None else ""
        return (f"task '{task}': left out {len(self)}{of} files it cannot use: {self.examples()} "
                "(all in meta.skipped of the results; `glocal scan` checks a whole dataset)")

    def as_meta(self) -> dict[str, object]:
        """``{"count": n, "files": {name: reason}}`` (the first :data:`RECORDED` files) for the results JSON."""
        return {"count": len(self), "files": dict(list(self.files.items())[:RECORDED])}


def usable_mask(paths: np.ndarray, names: np.ndarray, *, needs: Sequence[str], states: dict[str, FileState],
                log: SkipLog, on_error: OnError = "skip", source: str = "") -> np.ndarray:
    """Boolean mask of the usable rows of ``paths`` (probed once each; results kept in ``states``).

    Unusable rows are recorded in ``log`` (``on_error="skip"``) or raise a one-line
    :class:`DataError` naming the first (``"raise"``). Nothing usable left is an error either way.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    keep = np.ones(len(paths), dtype=bool)
    for i, (path, name) in enumerate(zip(paths.tolist(), names.tolist())):
        if path not in states:
            states[path] = file_state(path)
        reason = unusable_reason(states[path], needs)
        if reason is None:
            continue
        if on_error == "raise":
            raise DataError(f"{name}: {reason} (in {source}); leave such files out with --on-error skip "
                            "(the default) or list them with `glocal scan`")
        keep[i] = False
        log.files[name] = reason
    if len(paths) and not keep.any():
        raise DataError(f"no usable file in {source}: all {len(paths)} left out, e.g. {log.examples()}; "
                        "check the data with `glocal scan`")
    return keep
