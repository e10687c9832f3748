"""At most one host synchronisation per optimizer step, for every method, through the real Trainer.

No accelerator needed: a host sync is a read of a tensor's *values* by Python (or a value-dependent
shape), which on a GPU waits for every queued kernel. :class:`HostReads` patches the Python entry
points of such reads and records each call made during the training steps
(``Trainer._train_epoch``) of a tiny run of each method on the generated world:

* ``Tensor.item / tolist / cpu`` and ``__bool__ / __float__ / __int__ / __index__`` (``if t``,
  ``float(t)``, ``int(t)``, ``range(t)``, f-strings through ``item``);
* ``torch.allclose / equal`` and ``Tensor.allclose / equal`` (a Python bool out of a reduction);
* value-dependent shapes: ``nonzero``, ``argwhere``, ``masked_select``, ``unique`` and indexing
  with a boolean mask (``x[mask]``, ``x[mask] = v``).

Not counted, each for a reason that holds on a GPU too:

* ``Tensor.numpy()``: it raises on an accelerator tensor instead of syncing, so it only ever reads
  host memory (``finish_clips`` reads the ``/photo`` parameters the engine keeps on the host);
* ``Tensor.to(...)``: on this CPU-only test every tensor is a host tensor, so host-to-device
  transfers (``to_device``, never a sync) could not be told apart from device-to-host ones;
* the data loader (``torch/utils/data`` on the stack): decoding and augmenting run in worker
  processes on host memory in a real run;
* reads made by ``torch.optim`` itself: non-fused, non-capturable optimizers (the online probe's
  Adam) keep their ``step`` counter on the host and read it there.

Epoch-end work (diagnostic means, checkpoints) is outside ``_train_epoch`` and reads once per
epoch, not per step.
"""

from __future__ import annotations

import collections
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch

import glocal
from glocal.train.config import config_from_dict
from glocal.train.engine import pretrain
from glocal.train.loop import Trainer

GLOCAL_SRC = str(Path(glocal.__file__).parent)
TINY_VIDEO = dict(depth=10, width_mult=0.125, proj_hidden=32, proj_dim=16)
AUDIO = dict(audio_width_mult=0.125, logmel_preset="glcm", n_mels=32)
#: one tiny config per method (queues of 8 keys fill within the run, so AVTS's neighbours switch on)
METHODS: dict[str, dict[str, Any]] = {
    "glcm": dict(width_mult=0.125, fast_width_mult=0.5, audio_width_mult=0.125, stem_pool=False, slow_stride=4,
                 proj_dim_global=16, proj_dim_local=8, n_mels=32),
    "simclr": dict(TINY_VIDEO),
    "moco": {**TINY_VIDEO, "queue_size": 8},
    "avid": {**TINY_VIDEO, **AUDIO, "queue_size": 8},
    "avts": {**TINY_VIDEO, **AUDIO, "queue_size": 8, "nn_k": 2, "pretext_hidden": 16},
    "ctrlaug": {**TINY_VIDEO, "global_frames": 8, "global_stride": 2, "local_frames": 4, "n_local": 3,
                "critic_hidden": 16, "order_hidden": 16},
    "vclr": {"depth": 18, "width_mult": 0.0625, "proj_hidden": 32, "proj_dim": 16, "queue_size": 8},
}

_TENSOR_METHODS = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__", "__index__", "allclose", "equal",
                   "nonzero", "argwhere", "masked_select", "unique")
_TORCH_FUNCTIONS = ("allclose", "equal", "nonzero", "argwhere", "masked_select", "unique")


def _bool_mask(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool and p.dim() > 0 for p in parts)


class HostReads:
    """Patches the read entry points; :attr:`calls` lists ``"file:line function via name"`` of each
    read made inside ``Trainer._train_epoch`` (and outside the exclusions of the module doc)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self._busy = threading.local()
        self._step_code = Trainer._train_epoch.__code__
        for name in _TENSOR_METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(getattr(torch.Tensor, name), name))
        for name in _TORCH_FUNCTIONS:
            monkeypatch.setattr(torch, name, self._wrap(getattr(torch, name), f"torch.{name}"))
        get, put = torch.Tensor.__getitem__, torch.Tensor.__setitem__
        monkeypatch.setattr(torch.Tensor, "__getitem__", self._wrap(get, "x[bool mask]", when=lambda a: _bool_mask(a[1])))
        monkeypatch.setattr(torch.Tensor, "__setitem__", self._wrap(put, "x[bool mask]=", when=lambda a: _bool_mask(a[1])))

    def _wrap(self, fn: Callable[..., Any], name: str,
              when: Callable[[tuple[Any, ...]], bool] | None = None) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not getattr(self._busy, "on", False) and (when is None or when(args)):
                self._busy.on = True
                try:
                    self._record(name)
                finally:
                    self._busy.on = False
            return fn(*args, **kwargs)

        return wrapper

    def _record(self, name: str) -> None:
        frame = sys._getframe(2)  # the caller of the patched entry point
        if "/torch/optim/" in frame.f_code.co_filename:
            return
        where, in_step = None, False
        f = frame
        while f is not None:
            file = f.f_code.co_filename
            if "/torch/utils/data/" in file:
                return
            if where is None and file.startswith(GLOCAL_SRC):
                where = f"{file[len(GLOCAL_SRC) + 1:]}:{f.f_lineno} {f.f_code.co_name}"
            in_step = in_step or f.f_code is self._step_code
            f = f.f_back
        if in_step:
            self.calls.append(f"{where or frame.f_code.co_filename} via {name}")

    def summary(self) -> str:
        return "\n".join(f"{n:4d}  {site}" for site, n in collections.Counter(self.calls).most_common())


@pytest.fixture
def host_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostReads]:
    yield HostReads(monkeypatch)


def _config(tiny_raw: Callable[..., dict[str, Any]], out: Path, name: str, **train: Any):
    raw = tiny_raw(out, epochs=1, batch_size=2, **train)
    raw["method"] = {"name": name, **METHODS[name]}
    return config_from_dict(raw)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_at_most_one_host_read_per_optimizer_step(tmp_path, tiny_raw, host_reads, name):
    """5 steps of 2 clips (diagnostics, online probe and per-step logging on): <= 5 reads."""
    summary = pretrain(_config(tiny_raw, tmp_path / name, name))
    assert summary["steps"] == 5
    assert len(host_reads.calls) <= summary["steps"], f"{name}: {len(host_reads.calls)} host reads in " \
        f"{summary['steps']} steps:\n{host_reads.summary()}"


def test_gradient_accumulation_reads_once_per_step_not_per_micro_batch(tmp_path, tiny_raw, host_reads):
    summary = pretrain(_config(tiny_raw, tmp_path / "accum", "glcm", grad_accum=2, grad_clip=1.0))
    assert summary["steps"] == 2
    assert len(host_reads.calls) <= 2, host_reads.summary()


def test_the_counter_sees_reads_in_the_step(tmp_path, tiny_raw, host_reads, monkeypatch):
    """A method that reads a value, a boolean mask and an allclose per micro-batch: 3 more per step."""
    from glocal.methods.moco import MoCo

    real = MoCo.training_losses

    def reading(self, batch):
        out = real(self, batch)
        loss = out["loss"].detach()
        float(loss), loss.reshape(1)[loss.reshape(1) > 0], torch.allclose(loss, loss)
        return out

    monkeypatch.setattr(MoCo, "training_losses", reading)
    summary = pretrain(_config(tiny_raw, tmp_path / "moco", "moco"))
    assert len(host_reads.calls) == 4 * summary["steps"], host_reads.summary()
