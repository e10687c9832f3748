"""CPU time of a DataLoader's worker processes, for the loader benchmarks (``decode.py``, ``feed.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import DataLoader

__all__ = ["worker_cpu"]


def worker_cpu(loader: DataLoader) -> float:
    """CPU seconds (user + system) used so far by the loader's live worker processes (Linux
    ``/proc``; 0 without workers)."""
    total = 0.0
    for w in getattr(getattr(loader, "_iterator", None), "_workers", None) or []:
        try:
            fields = Path(f"/proc/{w.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
