"""Atomic checkpoints that load with ``torch.load(weights_only=True)``; keep-last-N plus best.

A checkpoint is a dict of tensors and plain Python values: ``format``, ``method``, ``config``
(plain dict), ``model`` (state dict: encoders, heads, momentum encoders, queues), ``optimizer``,
``scheduler``, ``scaler`` (fp16 only), ``epoch`` (completed epochs), ``batch_in_epoch`` (batches of
the current epoch already trained: the sampler skips them on resume), ``step`` (optimizer steps),
``rng`` (torch, numpy, python and CUDA generator states; ``rng_ranks`` holds every rank's), and
``metrics`` (best value so far, skipped steps, ...).

Files in the run folder:

* ``ckpt_epoch{E:04d}.pt`` — written after epoch ``E`` (``E`` completed epochs);
* ``ckpt_epoch{E:04d}_batch{K:06d}.pt`` — mid-epoch (``train.save_every_steps`` or a stop
  signal): ``E`` completed epochs plus ``K`` batches of the next one;
* ``best.pt`` — the checkpoint with the best monitored metric (never pruned, not used by
  ``--resume auto``).

Writes go to a temporary file in the same folder, are flushed and fsynced, then renamed over the
target, so a crash or SIGKILL during the write leaves every earlier checkpoint intact; the
leftover ``.*.tmp-PID`` file is removed by :func:`clean_partial_writes` on the next start.
"""

from __future__ import annotations

import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .files import atomic_path

__all__ = [
    "FORMAT",
    "BEST_NAME",
    "checkpoint_name",
    "save_checkpoint",
    "load_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "prune_checkpoints",
    "clean_partial_writes",
    "capture_rng_state",
    "restore_rng_state",
]

FORMAT = "glocal-ckpt-v1"
BEST_NAME = "best.pt"
_PATTERN = re.compile(r"^ckpt_epoch(\d+)(?:_batch(\d+))?\.pt$")
_TMP_PATTERN = re.compile(r"^\..+\.tmp-\d+$")


def checkpoint_name(epochs_done: int, batch_in_epoch: int = 0) -> str:
    """File name of a checkpoint after ``epochs_done`` epochs and ``batch_in_epoch`` more batches."""
    if batch_in_epoch:
        return f"ckpt_epoch{epochs_done:04d}_batch{batch_in_epoch:06d}.pt"
    return f"ckpt_epoch{epochs_done:04d}.pt"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    state = {"format": FORMAT, **state}
    # disk full, quota, read-only; torch.save wraps some of them as RuntimeError
    with atomic_path(path, what="checkpoint", errors=(OSError, RuntimeError),
                     fix=f"the earlier checkpoints in {path.parent} are intact: free space there and continue "
                         "with --resume auto") as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a glocal checkpoint safely; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"checkpoint {path} is empty (0 bytes); use another checkpoint of the run")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is another file
        raise DataError(
            f"{path} is not a glocal checkpoint (not a file written by `glocal pretrain`; those are "
            "ckpt_epochNNNN.pt or best.pt in its train.out_dir)"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # its text suggests unsafe loading: never repeat that to a user
        raise DataError(f"{path} is not a glocal checkpoint (it holds objects glocal never saves)") from None
    except Exception as exc:  # a torn or damaged archive
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise DataError(f"checkpoint {path} is corrupt or incomplete: {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path} is not a glocal checkpoint (format {FORMAT} expected)")
    return state


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Regular checkpoints in ``run_dir`` (not ``best.pt``), oldest first by (epoch, batch)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [
        ((int(m.group(1)), int(m.group(2) or 0)), p) for p in run_dir.iterdir() if (m := _PATTERN.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """Newest checkpoint that loads; corrupt or partial ones are reported and the previous used."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            load_checkpoint(path)
        except DataError as exc:
            print(f"[glocal] skipping unusable checkpoint (trying the previous one): {exc}")
            continue
        return path
    return None


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` regular checkpoints; returns the deleted paths."""
    doomed = list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def clean_partial_writes(run_dir: str | Path) -> list[Path]:
    """Remove temporary files left by a write that was killed (``.NAME.tmp-PID``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    leftovers = [p for p in run_dir.iterdir() if _TMP_PATTERN.match(p.name) and p.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


# ---------------------------------------------------------------------------- RNG states
def capture_rng_state() -> dict[str, Any]:
    """Every generator a training step may touch, as ``weights_only``-loadable values."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (missing entries are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state(
            ("MT19937", s["keys"].numpy().astype(np.uint32), int(s["pos"]), int(s["has_gauss"]),
             float(s["cached_gaussian"]))
        )
    if "python" in state:
        s = state["python"]
        random.setstate((int(s["version"]), tuple(int(v) for v in s["internal"].tolist()), s["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [t.cpu() for t in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
