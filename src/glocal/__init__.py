"""glocal: self-supervised global-local audio-visual video representation learning."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# Large CPU tensors on transparent huge pages (PyTorch's own switch, read once when torch
# starts): a batch of float clips is tens of MB, and first-touching it page by page cost as much
# as the rest of the collation -- stacking 8 clips of 3x32x112x112 took 20 ms on 4 KiB pages,
# 5 ms on huge pages (benchmarks/decode.py). Only effective when glocal is imported before
# torch (the CLI does); a user's own THP_MEM_ALLOC_ENABLE wins. See docs/data_formats.md.
if "torch" not in _sys.modules:
    _os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def load(checkpoint, device="auto", **kwargs):
    """Load a ``glocal pretrain`` checkpoint's encoders: see :func:`glocal.api.load` and docs/api.md.

    torch is imported here, on first use, not by ``import glocal``."""
    from .api import load as _load

    return _load(checkpoint, device, **kwargs)
