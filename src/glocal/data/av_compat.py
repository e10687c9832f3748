"""The few PyAV calls whose form differs between the supported PyAV versions (18 and 19).

Older releases are not supported: ``AudioResampler(options=)`` is new in 18,
``VideoFrame.rotation`` in 15 (see docs/data_formats.md, "PyAV versions").

Every PyAV keyword that only some versions accept, and every value whose type changed, is
decided here once, so the readers (:mod:`glocal.data.io`, :mod:`glocal.data.scan`) call PyAV the
same way on every version:

- ``av.open(..., metadata_errors=...)``: removed in PyAV 19 (metadata is always decoded as
  UTF-8 with ``surrogateescape`` there, so it can no longer fail); older versions raise
  ``UnicodeDecodeError`` on a non-UTF-8 tag unless told to ignore it.
- ``VideoReformatter.reformat(..., threads=...)``: only PyAV >= 17, which threads every
  reformat by default (costly on small frames); older versions have one thread anyway.
- Rational attributes (``time_base``, ``average_rate``, ...): ``fractions.Fraction`` or None
  up to PyAV 18, ``av.AVRational`` that is falsy when unset (never None) from PyAV 19. Test
  them with ``not x``, never ``x is None``.
- ``av.AudioLayout(int)``: refused from PyAV 13; :func:`channel_layout` builds a layout from a
  channel count by name.
"""

from __future__ import annotations

import os

import av

__all__ = ["AV_MAJOR", "OPEN_KWARGS", "SWS_ONE_THREAD", "open_kwargs", "reformat_kwargs", "open_input",
           "channel_layout"]

#: Major version of the installed PyAV.
AV_MAJOR = int(av.__version__.split(".")[0])



def open_kwargs(major: int) -> dict[str, str]:
    """Keyword arguments of ``av.open`` for reading under PyAV ``major``: undecodable metadata
    is ignored where PyAV would otherwise raise (from 19 on it never raises and the keyword is gone)."""
    return {"metadata_errors": "ignore"} if major < 19 else {}


def reformat_kwargs(major: int) -> dict[str, int]:
    """Keyword arguments of ``VideoReformatter.reformat`` for a one-thread swscale under PyAV
    ``major`` (``threads`` exists from 17 on; older versions use one thread anyway)."""
    return {"threads": 1} if major >= 17 else {}


#: ``open_kwargs`` of the installed PyAV.
OPEN_KWARGS = open_kwargs(AV_MAJOR)
#: ``reformat_kwargs`` of the installed PyAV.
SWS_ONE_THREAD = reformat_kwargs(AV_MAJOR)

# FFmpeg's default layout names by channel count (``av_channel_layout_default``).
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1",
                    10: "5.1.4", 12: "7.1.4", 16: "hexadecagonal", 24: "22.2"}


def open_input(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """``av.open(path)`` for reading with the version's metadata keywords (errors propagate)."""
    return av.open(str(path), mode="r", **OPEN_KWARGS)


def channel_layout(channels: int) -> av.AudioLayout:
    """The default channel layout for ``channels`` channels (``channels < 1`` counts as mono).

    Raises :class:`ValueError` for a count FFmpeg has no default layout for (e.g. 9)."""
    n = max(1, int(channels))
    if n not in _DEFAULT_LAYOUTS:
        raise ValueError(f"no default channel layout for {n} channels")
    return av.AudioLayout(_DEFAULT_LAYOUTS[n])
