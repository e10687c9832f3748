"""The training loop behind ``glocal pretrain`` (single process or one rank under torchrun).

One optimizer step = ``train.grad_accum`` micro-batches of ``train.batch_size`` clips on each of
the ``W`` ranks. The loss terms of the micro-batches are summed on the device; after the last
micro-batch of a step the ranks all-reduce one small vector — every loss term (for logging and
the non-finite check) and a stop flag (SIGTERM/SIGINT) — so every rank takes the same decision at
the same step. That vector and the gradient norm are read on the host together: one host
synchronisation per optimizer step (``tests/train/test_host_syncs.py`` counts them). Rank 0
alone prints, logs and writes checkpoints; the others wait at a barrier.

Fault tolerance: checkpoints are atomic and carry the sampler position (completed epochs +
batches of the current one) and every RNG state, so a run killed at any point and restarted with
``--resume auto`` reproduces the uninterrupted loss trajectory (``train.deterministic=true``,
fp32, one thread per process for bit-exactness). See ``docs/distributed.md``.

Loader: persistent workers when ``data.num_workers > 0`` (no restart per epoch); the batch
sampler yields ``(epoch, index)`` items, so the workers' copies of the dataset need no
``set_epoch`` and every epoch's samples equal those of a fresh loader (or of no workers).
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..data.loader import pretrain_loader
from ..data.manifest import Manifest
from ..data.photometric import finish_batch
from ..data.preflight import preflight_notes
from ..errors import DataError, GlocalError
from ..methods import Method, build_method
from ..runtime.checkpoint import (
    BEST_NAME,
    capture_rng_state,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from ..runtime.distributed import (
    DistContext,
    DistributedBatchSampler,
    convert_sync_batchnorm,
    init_distributed,
    shutdown_distributed,
)
from ..runtime.precision import (
    autocast,
    configure_determinism,
    make_grad_scaler,
    precision_name,
    resolve_precision,
    use_channels_last,
    to_channels_last_3d,
)
from ..runtime.rundir import prepare_run_dir
from .compile import CompiledStep, resolve_compile
from .config import PretrainConfig
from .diagnostics import EpochDiagnostics, chance_columns, chance_lines, split_outputs
from .loss_module import LossModule
from .online_probe import OnlineProbe
from .runlog import CSVLog, TensorBoardLog, check_tensorboard, open_tensorboard
from .schedule import build_optimizer, build_scheduler
from .signals import StopRequest

__all__ = ["NonFiniteLoss", "Trainer", "seed_all"]


class NonFiniteLoss(GlocalError):
    """A loss term (or the gradient) became NaN or inf."""


def seed_all(seed: int) -> None:
    """Seed torch, numpy's global generator and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool) -> dict[str, Any]:
    """Move tensors to ``device``, finish uint8 clips there (``data.augment_on_device``:
    :func:`~glocal.data.photometric.finish_batch`; their ``/photo`` parameters stay on the host,
    where they are read), 5-D float clips to channels_last_3d."""
    moved = {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) and not k.endswith("/photo") else v)
             for k, v in batch.items()}
    out = finish_batch(moved)
    if channels_last:
        for k, v in out.items():
            if isinstance(v, torch.Tensor) and v.dim() == 5 and v.is_floating_point():
                out[k] = v.contiguous(memory_format=torch.channels_last_3d)
    return out


@dataclass
class _State:
    """Where the run stands; saved in (and restored from) checkpoints."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # micro-batches of the current epoch already trained
    step: int = 0  # optimizer steps (skipped ones included)
    skipped_steps: int = 0
    consecutive_skips: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    epoch_sums: dict[str, float] = field(default_factory=dict)  # loss-term sums of the current epoch
    epoch_steps: int = 0

    def metrics(self) -> dict[str, Any]:
        return {
            "skipped_steps": self.skipped_steps,
            "consecutive_skips": self.consecutive_skips,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "epoch_sums": dict(self.epoch_sums),
            "epoch_steps": self.epoch_steps,
        }

    def load_metrics(self, m: dict[str, Any]) -> None:
        self.skipped_steps = int(m.get("skipped_steps", 0))
        self.consecutive_skips = int(m.get("consecutive_skips", 0))
        self.best_value = None if m.get("best_value") is None else float(m["best_value"])
        self.best_epoch = None if m.get("best_epoch") is None else int(m["best_epoch"])
        self.epoch_sums = {k: float(v) for k, v in dict(m.get("epoch_sums", {})).items()}
        self.epoch_steps = int(m.get("epoch_steps", 0))


class Trainer:
    """Builds everything from a :class:`PretrainConfig` and runs it; see :func:`glocal.train.engine.pretrain`."""

    def __init__(self, cfg: PretrainConfig, resume: str | None = None, overwrite: bool = False) -> None:
        self.cfg = cfg
        self.resume = resume
        self.overwrite = overwrite

    # ------------------------------------------------------------------ entry point
    def run(self) -> dict[str, Any]:
        """Train; returns a summary (paths, steps, last losses, stop signal, ...)."""
        det_before = torch.are_deterministic_algorithms_enabled()
        cudnn_before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
        ctx = init_distributed(self.cfg.train.device, self.cfg.train.dist_timeout_s)
        try:
            return self._run(ctx)
        finally:
            torch.use_deterministic_algorithms(det_before)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn_before
            # drop the DDP wrapper (its Reducer holds the process group) before destroying the
            # group: a gloo group torn down under a live Reducer can hang in its destructor
            for name in ("forward", "module"):
                self.__dict__.pop(name, None)
            self.__dict__.pop("loader", None)  # its persistent workers end with it
            gc.collect()
            shutdown_distributed(ctx)

    # ------------------------------------------------------------------ setup
    def _augment_on_device(self) -> bool:
        """``data.augment_on_device`` resolved: ``"auto"`` is on when training runs on CUDA, off
        on CPU, where it would move work from the loader workers onto the cores the step needs."""
        value = self.cfg.data.augment_on_device
        return self.device.type == "cuda" if value == "auto" else bool(value)

    def _say(self, msg: str) -> None:
        if self.ctx.is_main:
            print(f"[glocal] {msg}", flush=True)

    def _setup(self, ctx: DistContext) -> None:
        cfg, t = self.cfg, self.cfg.train
        self.ctx = ctx
        self.out = Path(t.out_dir)
        # before any work: a writable folder that holds no other run (see glocal.runtime.rundir)
        for note in self._on_main(lambda: prepare_run_dir(self.out, resume=self.resume, overwrite=self.overwrite)):
            self._say(note)
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        self.device = ctx.device
        self.dtype = resolve_precision(t.precision, self.device)
        self.scaler = make_grad_scaler(self.device, self.dtype)
        self.channels_last = use_channels_last(t.channels_last, self.device, self.dtype)
        configure_determinism(t.deterministic, self.device)
        self.tb: TensorBoardLog | None = None
        if t.tensorboard:
            check_tensorboard()  # every rank checks the import: a clear error everywhere, before any work

        seed_all(t.seed)  # same initial weights on every rank
        method = build_method(cfg.method, cfg.data).to(self.device)
        if t.sync_bn and ctx.enabled:
            method = convert_sync_batchnorm(method, self.device)
        if self.channels_last:
            method = to_channels_last_3d(method)
        self.method: Method = method
        self.dataset = method.pretrain_dataset(seed=t.seed, augment_on_device=self._augment_on_device())
        manifest = getattr(self.dataset, "manifest", None)
        if ctx.is_main and isinstance(manifest, Manifest):  # once, before the first step
            for note in preflight_notes(manifest, cfg.data, with_video="video" in method.modalities):
                self._say(note)
        # (epoch, index) items: the epoch reaches the persistent workers with every index
        self.sampler = DistributedBatchSampler(
            len(self.dataset), t.batch_size, t.seed, ctx.rank, ctx.world_size, with_epoch=True
        )
        self.accum = t.grad_accum
        self.steps_per_epoch = self.sampler.batches_per_epoch // self.accum
        if self.steps_per_epoch == 0:
            raise GlocalError(
                f"one epoch has {self.sampler.batches_per_epoch} batches, fewer than train.grad_accum={self.accum}"
            )
        self.loader = pretrain_loader(self.dataset, self.sampler, num_workers=cfg.data.num_workers,
                                      pin_memory=self.device.type == "cuda", seed=t.seed + ctx.rank)
        self.global_batch = t.batch_size * ctx.world_size * self.accum
        self.optimizer = build_optimizer(method.parameters(), cfg.optim, self.global_batch)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.steps_per_epoch, t.epochs)
        self.state = _State()
        self.monitor = None
        if t.monitor_every_epochs:
            from .monitor import KNNMonitor

            self.monitor = KNNMonitor(cfg, method.modalities, self.device, self.dtype)
        self.best_metric = t.resolved_best_metric
        self.best_criterion = best_criterion(self.best_metric)
        self.diag = EpochDiagnostics() if t.diagnostics else None
        self.probe = self._build_probe(manifest)

        resumed = self._resume()
        if not resumed:
            seed_all(t.seed + ctx.rank)  # rank-specific stream for anything random in the step
        if ctx.is_main:
            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            self.log = CSVLog(self.out / "log.csv")
            self.epoch_log = CSVLog(self.out / "epochs.csv")
            # the logs describe exactly the trajectory of the checkpoint we start from
            self.log.truncate("step", self.state.step)
            self.epoch_log.truncate("epoch", self.state.epoch)
            if t.tensorboard:  # TensorBoard drops the events after the checkpoint's step too
                self.tb = open_tensorboard(self.out, purge_step=self.state.step + 1)

        module: torch.nn.Module = LossModule(method)
        if ctx.enabled:
            module = DistributedDataParallel(
                module,
                device_ids=[ctx.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=t.find_unused_parameters,
            )
        self.module = module
        self.forward: Callable[[dict[str, Any]], dict[str, torch.Tensor]] = module
        remaining = self.steps_per_epoch * t.epochs - self.state.step
        compile_it, why = resolve_compile(t.compile, self.device, remaining)
        if ctx.is_main and t.compile == "auto" and self.device.type == "cuda":
            self._say(f"train.compile=auto: {why}")
        if compile_it:
            self.forward = CompiledStep(module, t.compile_backend)

    def _build_probe(self, manifest: Any) -> OnlineProbe | None:
        """The online linear probe (``train.online_probe``), or None."""
        mode = self.cfg.train.online_probe
        if mode is False:
            return None
        labelled = isinstance(manifest, Manifest) and bool((manifest.labels >= 0).any())
        classes = len(manifest.class_names) if isinstance(manifest, Manifest) else 0
        if not labelled or classes < 2:
            if mode is True:
                raise GlocalError("train.online_probe=true needs labelled training videos of >= 2 classes; "
                                  "set train.online_probe=auto or false")
            return None
        return OnlineProbe(classes, self.cfg.train.online_probe_lr, self.device)

    def _resume(self) -> bool:
        """Load the checkpoint chosen by ``--resume``; returns True if one was loaded."""
        ctx = self.ctx
        if not self.resume:
            return False  # a folder holding another run was refused (or emptied by --overwrite) already
        state = self._on_main(self._load_resume_state)
        if state is None:
            return False
        if state.get("method") != self.cfg.method.name:
            raise DataError(
                f"checkpoint {state['_path']} is a '{state.get('method')}' run, not '{self.cfg.method.name}'"
            )
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._replan_lr(state)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        diag = state.get("diagnostics") or {}
        if self.diag is not None and diag.get("epoch"):
            self.diag.load_state(diag["epoch"])
        if self.probe is not None and diag.get("probe"):
            self.probe.load_state_dict(diag["probe"])
        s = self.state
        s.epoch, s.step = int(state["epoch"]), int(state["step"])
        batch = int(state.get("batch_in_epoch", 0))
        old_global = int(state.get("global_micro_batch", self.sampler.global_batch))
        if batch and old_global != self.sampler.global_batch:
            # another world size / batch: restart at the first batch not fully trained before
            new_batch = (batch * old_global) // self.sampler.global_batch
            self._say(
                f"warning: the checkpoint was written with {old_global} clips per micro-batch over all ranks, this run "
                f"has {self.sampler.global_batch}; resuming the epoch at batch {new_batch} instead of {batch}"
            )
            batch = new_batch
        batch = min(batch, self.steps_per_epoch * self.accum)
        s.batch_in_epoch = batch - batch % self.accum
        s.load_metrics(dict(state.get("metrics", {})))
        ranks = state.get("rng_ranks")
        if ranks is not None and len(ranks) == ctx.world_size:
            restore_rng_state(ranks[ctx.rank])
        elif "rng" in state:
            restore_rng_state(state["rng"])
            if ctx.world_size > 1:
                self._say("note: the checkpoint has no per-rank RNG states for this world size; ranks share rank 0's")
        self._say(
            f"resumed from {state['_path']}: {s.epoch} epochs + {s.batch_in_epoch} batches done, step {s.step}"
        )
        return True

    def _replan_lr(self, state: dict[str, Any]) -> None:
        """A resumed run whose schedule length changed (``train.epochs``, steps per epoch) continues on
        the schedule planned for *this* run, from the checkpoint's step, and says so (the lr moves)."""
        old_train = dict(dict(state.get("config", {})).get("train", {}))
        old_epochs = old_train.get("epochs", self.cfg.train.epochs)
        sched = self.scheduler
        changed = []
        for group, base, fn in zip(self.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
            planned = base * fn(sched.last_epoch)
            if not math.isclose(planned, group["lr"], rel_tol=1e-9, abs_tol=1e-15):
                changed.append((group["lr"], planned))
                group["lr"] = planned
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]  # what get_last_lr() reports
        if changed:
            was, now = changed[0]
            self._say(
                f"note: the learning-rate schedule is re-planned for this run ({self.cfg.optim.schedule} over "
                f"{self.cfg.train.epochs} epochs x {self.steps_per_epoch} steps; the checkpoint's run planned "
                f"{old_epochs} epochs): at step {sched.last_epoch} the lr is {now:.4g} instead of {was:.4g}"
            )

    def _load_resume_state(self) -> dict[str, Any] | None:
        """Rank 0: the checkpoint ``--resume`` names (``auto``: newest valid one), or None."""
        if self.resume == "auto":
            path = latest_checkpoint(self.out)
            if path is None:
                print(f"[glocal] --resume auto: no usable checkpoint in {self.out}; starting from scratch")
                return None
        else:
            path = Path(str(self.resume))
        state = load_checkpoint(path)
        state["_path"] = str(path)
        return state

    def _on_main(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0 and hand its result to every rank; a user-facing error raised there is
        raised on every rank (instead of leaving the others waiting for rank 0)."""
        result, error = None, None
        if self.ctx.is_main:
            try:
                result = fn()
            except GlocalError as exc:
                if not self.ctx.enabled:
                    raise
                error = (type(exc).__name__, str(exc))
        if not self.ctx.enabled:
            return result
        result, error = self.ctx.broadcast_object((result, error))
        if error is not None:
            cls = DataError if error[0] == "DataError" else GlocalError
            raise cls(f"(on rank 0) {error[1]}")
        return result

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self, rng_ranks: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.state
        state: dict[str, Any] = {
            "method": self.cfg.method.name,
            "config": self.cfg.to_dict(),
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": s.epoch,
            "batch_in_epoch": s.batch_in_epoch,
            "step": s.step,
            "world_size": self.ctx.world_size,
            "global_micro_batch": self.sampler.global_batch,
            "rng": rng_ranks[0],
            "rng_ranks": rng_ranks,
            "metrics": s.metrics(),
            "diagnostics": {"epoch": None if self.diag is None else self.diag.state(),
                            "probe": None if self.probe is None else self.probe.state_dict()},
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def _save(self, best: bool = False, regular: bool = True) -> Path | None:
        """Collective: every rank contributes its RNG state; rank 0 writes; all wait."""
        rng_ranks = self.ctx.gather_objects(capture_rng_state())
        path = None
        if self.ctx.is_main:
            state = self._checkpoint_state(rng_ranks)
            if regular:
                path = save_checkpoint(state, self.out / checkpoint_name(self.state.epoch, self.state.batch_in_epoch))
                prune_checkpoints(self.out, self.cfg.train.keep_last)
            if best:
                save_checkpoint(state, self.out / BEST_NAME)
        self.ctx.barrier()
        return path

    # ------------------------------------------------------------------ one optimizer step
    @staticmethod
    def _accumulate(sums: dict[str, torch.Tensor], losses: dict[str, torch.Tensor]) -> None:
        """Add a micro-batch's loss terms to the step's float64 sums, on the device (no host sync).

        ``Σ_micro float64(term)``: the same IEEE additions as summing Python floats of the terms."""
        for name, value in losses.items():
            term = value.detach().double()
            sums[name] = sums[name] + term if name in sums else term

    def _read_step(self, sums: dict[str, torch.Tensor], grad_norm: torch.Tensor | None,
                   stop: bool) -> tuple[dict[str, float], float, bool]:
        """The step's one host synchronisation: the mean of every loss term over micro-batches and
        ranks, the gradient norm and the OR of the ranks' stop flags, read together.

        ``term = Σ_ranks (Σ_micro term / accum) / W`` (float64). Returns ``(terms, grad_norm, stop)``
        (``grad_norm`` nan when ``None`` is given)."""
        names = list(sums)
        ctx = self.ctx
        on_device = not ctx.enabled or ctx.backend == "nccl"  # where the all-reduce runs
        dev = self.device if on_device else torch.device("cpu")
        flag = torch.full((1,), 1.0 if stop else 0.0, dtype=torch.float64, device=self.device)
        parts = [torch.stack([sums[n] for n in names]) / self.accum] if names else []
        vec = torch.cat([*parts, flag])  # (terms..., stop) on the training device
        norm = (grad_norm.detach().double() if grad_norm is not None
                else torch.tensor(math.nan, dtype=torch.float64)).reshape(1).to(self.device)
        if not on_device:  # gloo: the one device-to-host copy carries the norm too
            host = torch.cat([vec, norm]).cpu()
            vec, norm = host[:-1], host[-1:]
        if ctx.enabled:
            vec = ctx.all_reduce_sum(vec.to(dev))
            vec[:-1] /= ctx.world_size
        values = torch.cat([vec, norm.to(vec.device)]).tolist()  # the read
        return dict(zip(names, values)), values[-1], values[-2] > 0

    def _grad_norm(self) -> torch.Tensor:
        """The 2-norm of every gradient (unscaled first under a grad scaler), on the device."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grads = [p.grad for p in self.method.parameters() if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.device)
        return torch.nn.utils.get_total_norm(grads, norm_type=2.0)

    def _optimizer_step(self, terms: dict[str, float], norm: float, norm_t: torch.Tensor, epoch: int) -> bool:
        """Check, clip, step (gradients already unscaled); returns whether the step was applied.
        Raises or skips on non-finite loss terms or gradient norm (``train.on_nonfinite``)."""
        t, s = self.cfg.train, self.state
        bad = [n for n, v in terms.items() if not math.isfinite(v)]
        if not bad and not math.isfinite(norm) and self.scaler is None:
            bad = ["grad_norm"]
        if bad:
            detail = ", ".join(f"loss term '{n}' = {terms[n]}" if n in terms else f"gradient norm = {norm}"
                               for n in bad)
            where = f"at epoch {epoch + 1}, step {s.step + 1}"
            if t.on_nonfinite == "raise":
                raise NonFiniteLoss(
                    f"non-finite {detail} {where}; lower optim.lr, use train.precision=fp32, set "
                    "train.grad_clip, check the data, or set train.on_nonfinite=skip_step to skip such steps"
                )
            s.skipped_steps += 1
            s.consecutive_skips += 1
            self._say(
                f"non-finite {detail} {where}: step skipped (train.on_nonfinite=skip_step; "
                f"{s.skipped_steps} skipped so far)"
            )
            if s.consecutive_skips >= t.max_consecutive_skips:
                raise NonFiniteLoss(
                    f"{s.consecutive_skips} consecutive non-finite steps (last {where}: {detail}); giving up "
                    "(train.max_consecutive_skips)"
                )
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.update()  # unscale_ was called: close the scaler's iteration
            return False
        if t.grad_clip:
            torch.nn.utils.clip_grads_with_norm_(self.method.parameters(), t.grad_clip, norm_t)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        s.consecutive_skips = 0
        return True

    # ------------------------------------------------------------------ epoch
    def _train_epoch(self, epoch: int, stop: StopRequest, run_t0: float, run_steps0: int) -> tuple[bool, list[str]]:
        """Train (the rest of) ``epoch``; returns (stopped by a signal, skipped-sample messages)."""
        t, s, ctx = self.cfg.train, self.state, self.ctx
        self.sampler.set_epoch(epoch, s.batch_in_epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.method.train()
        clips_per_batch = t.batch_size * ctx.world_size
        usable = self.steps_per_epoch * self.accum - s.batch_in_epoch  # trailing partial accumulation dropped
        bar = tqdm(
            total=usable * clips_per_batch, desc=f"epoch {epoch + 1}/{t.epochs}", unit="clip",
            disable=not (t.progress and ctx.is_main), leave=False, dynamic_ncols=True,
        )
        skipped: list[str] = []
        sums: dict[str, torch.Tensor] = {}  # the step's loss-term sums, on the device
        micro = 0
        t_log, clips_log, t_step = time.perf_counter(), 0, time.perf_counter()
        total_steps = self.steps_per_epoch * t.epochs
        stopped = False
        self.optimizer.zero_grad(set_to_none=True)
        # The one int64 a non-persistent DataLoader drew from the global generator at every epoch's
        # iterator (its worker seed): drawn here on every epoch, persistent workers or not, so the
        # global random stream, hence every number of a run and of its resume, is what it was.
        torch.empty((), dtype=torch.int64).random_()
        for i, batch in enumerate(self.loader):
            if i >= usable:
                break
            skipped.extend(batch.pop("skipped", []))
            batch = to_device(batch, self.device, self.channels_last)
            last_micro = micro == self.accum - 1
            no_sync = self.module.no_sync() if ctx.enabled and not last_micro else contextlib.nullcontext()
            with no_sync:  # type: ignore[attr-defined]
                with autocast(self.device, self.dtype):
                    losses, extras = split_outputs(self.forward(batch))
                loss = losses["loss"] / self.accum
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            self._diagnose(extras, batch)
            self._accumulate(sums, losses)
            micro += 1
            bar.update(clips_per_batch)
            if not last_micro:
                continue
            # ---- end of an optimizer step
            norm_t = self._grad_norm()
            terms, grad_norm, stop_now = self._read_step(sums, norm_t, stop.requested)  # the one host sync
            chance = self.method.trained_loss_chance(batch) if self.diag is not None else {}
            lr = self.optimizer.param_groups[0]["lr"]
            applied = self._optimizer_step(terms, grad_norm, norm_t, epoch)
            with warnings.catch_warnings():  # a skipped first step is intended, not an ordering mistake
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
                self.scheduler.step()
            if applied:
                self.method.on_step_end()
            self.optimizer.zero_grad(set_to_none=True)
            s.step += 1
            s.batch_in_epoch += self.accum
            if applied:  # epoch means over the steps that updated the model
                s.epoch_steps += 1
                for name, value in terms.items():
                    s.epoch_sums[name] = s.epoch_sums.get(name, 0.0) + value
                if self.diag is not None:
                    self.diag.add_chance(chance)
            sums, micro = {}, 0
            now = time.perf_counter()
            step_time, t_step = now - t_step, now
            clips_log += clips_per_batch * self.accum
            self.last = terms
            if ctx.is_main:
                done = s.step - run_steps0
                eta = (now - run_t0) / max(done, 1) * (total_steps - s.step)
                bar.set_postfix({**{k: f"{v:.3f}" for k, v in terms.items()}, "run_eta": _hms(eta)}, refresh=False)
                if s.step % t.log_every == 0 or s.step == total_steps:
                    row = {"epoch": epoch + 1, "step": s.step, "lr": lr, **terms, "grad_norm": grad_norm,
                           "clips_per_s": clips_log / max(now - t_log, 1e-9), "step_time_s": step_time,
                           "skipped_steps": s.skipped_steps, **chance_columns(terms, chance)}
                    self.log.write(row)
                    if self.tb is not None:
                        self.tb.write(row, s.step)
                    t_log, clips_log = now, 0
            end_of_epoch = s.batch_in_epoch >= self.steps_per_epoch * self.accum
            if stop_now:
                stop.request("a peer rank's signal")  # keeps this rank's own signal name if it got one
                stopped = True
            if end_of_epoch:
                break  # the epoch-end code saves (and stops, if asked)
            if stopped:
                self._save()
                break
            if t.save_every_steps and s.step % t.save_every_steps == 0:
                self._save()
        bar.close()
        return stopped, skipped

    def _diagnose(self, extras: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        """Embedding / attention metrics of a micro-batch and one online-probe update (no host sync)."""
        if self.diag is not None:
            self.diag.add_extras(extras)
        if self.probe is not None and "feat/video" in extras and "label" in batch:
            self.probe.step(extras["feat/video"], batch["label"])

    def _epoch_diagnostics(self, means: dict[str, float]) -> dict[str, float]:
        """Epoch columns: diagnostic means, each term's fraction below chance, probe training top-1."""
        row: dict[str, float] = {}
        if self.diag is not None:
            diag = self.diag.means()
            chance = {k[: -len("/chance")]: v for k, v in diag.items() if k.endswith("/chance")}
            row.update(chance_columns(means, chance))
            row.update({k: v for k, v in diag.items() if not k.endswith("/chance")})
        if self.probe is not None:
            top1 = self.probe.epoch_top1()
            if top1 is not None:
                row["probe_train_top1"] = top1
        return row

    def _end_epoch(self, epoch: int, epoch_t0: float, stopping: bool, skipped: list[str]) -> bool:
        """Epoch summary, monitor, best / regular checkpoints; returns whether a regular one was saved."""
        t, s, ctx = self.cfg.train, self.state, self.ctx
        s.epoch, s.batch_in_epoch = epoch + 1, 0
        means = {k: v / max(s.epoch_steps, 1) for k, v in s.epoch_sums.items()}
        row: dict[str, Any] = {"epoch": epoch + 1, "step": s.step, **means, **self._epoch_diagnostics(means)}
        if self.monitor is not None and ((epoch + 1) % t.monitor_every_epochs == 0 or epoch + 1 == t.epochs):
            monitor, probe = self.monitor, self.probe
            row.update(self._on_main(lambda: monitor.run(self.method, probe=probe)))
        row["epoch_time_s"] = time.perf_counter() - epoch_t0
        row["skipped_steps"] = s.skipped_steps
        s.epoch_sums, s.epoch_steps = {}, 0
        metric = self.best_metric
        is_best = False
        if metric is not None and metric in row and math.isfinite(float(row[metric])):
            value = float(row[metric])
            better = s.best_value is None or (value > s.best_value if metric == "knn_top1" else value < s.best_value)
            if better:
                s.best_value, s.best_epoch, is_best = value, epoch + 1, True
        regular = (
            (epoch + 1) % t.save_every_epochs == 0
            or epoch + 1 == t.epochs
            or stopping
            or bool(t.save_every_steps and s.step % t.save_every_steps == 0)
        )
        if regular or is_best:
            self._save(best=is_best, regular=regular)
        all_skipped = [m for part in ctx.gather_objects(skipped) for m in part]
        if ctx.is_main:
            self.epoch_log.write(row)
            if self.tb is not None:
                self.tb.write({k: v for k, v in row.items() if k != "epoch"}, s.step, prefix="epoch/")
            if all_skipped:
                print(f"[glocal] epoch {epoch + 1}: skipped {len(all_skipped)} bad samples: {all_skipped[:3]}")
                self.all_skipped.extend(all_skipped)
            shown = ", ".join(f"{k}={v:.4f}" for k, v in row.items()
                              if k not in ("epoch", "step", "skipped_steps") and isinstance(v, float)
                              and math.isfinite(v))
            best = f" (best.pt: {self.best_criterion})" if is_best else ""
            print(f"[glocal] epoch {epoch + 1}/{t.epochs} done: {shown}{best}", flush=True)
            lines, warns = chance_lines(row, epoch + 1, t.chance_warn_epochs, t.chance_tolerance,
                                        self.method.active_chance_hints())
            for line in lines + warns:
                print(f"[glocal]   {line}", flush=True)
        return regular

    # ------------------------------------------------------------------ main loop
    def _run(self, ctx: DistContext) -> dict[str, Any]:
        self._setup(ctx)
        cfg, t, s = self.cfg, self.cfg.train, self.state
        self.last: dict[str, float] = {}
        self.all_skipped: list[str] = []
        self._say(
            f"pretraining {cfg.method.name} on {len(self.dataset)} videos: {ctx.world_size} rank(s) x "
            f"{t.batch_size} clips x {self.accum} accumulation = {self.global_batch} clips/step, "
            f"{self.steps_per_epoch} steps/epoch, device={self.device.type}, precision={precision_name(self.dtype)}, "
            f"channels_last_3d={self.channels_last}, compile={isinstance(self.forward, CompiledStep)}, sync_bn={t.sync_bn and ctx.enabled}; "
            f"best.pt: {self.best_criterion}"
        )
        stopped_by: str | None = None
        run_t0, run_steps0 = time.perf_counter(), s.step
        with StopRequest(verbose=ctx.is_main) as stop:
            for epoch in range(s.epoch, t.epochs):
                epoch_t0 = time.perf_counter()
                # `stopped` is agreed by all ranks (reduced with the step's loss terms)
                stopped, skipped = self._train_epoch(epoch, stop, run_t0, run_steps0)
                if s.batch_in_epoch >= self.steps_per_epoch * self.accum:
                    saved = self._end_epoch(epoch, epoch_t0, stopped, skipped)
                    if not stopped:  # a signal during the epoch-end work: agree, save, stop
                        stopped = self._read_step({}, None, stop.requested)[2]
                        if stopped and not saved:
                            self._save()
                if stopped:
                    stop.request("a peer rank's signal")
                    stopped_by = stop.signal_name
                    self._say(
                        f"stopped by {stopped_by} after step {s.step}; checkpoint saved in {self.out}; "
                        "continue with `glocal pretrain ... --resume auto`"
                    )
                    break
        if self.tb is not None:
            self.tb.close()
        if ctx.is_main and self.all_skipped:
            (self.out / "skipped.txt").write_text("\n".join(self.all_skipped) + "\n")
            print(f"[glocal] {len(self.all_skipped)} samples were skipped in total; list in {self.out / 'skipped.txt'}")
        final = (list_checkpoints(self.out) or [None])[-1] if ctx.is_main else None
        best = self.out / BEST_NAME
        return {
            "run_dir": str(self.out),
            "checkpoint": str(final) if final else None,
            "best_checkpoint": str(best) if ctx.is_main and best.exists() else None,
            "best_metric": self.best_metric,
            "best_criterion": self.best_criterion,
            "best_value": s.best_value,
            "last_losses": self.last,
            "skipped": len(self.all_skipped),
            "skipped_steps": s.skipped_steps,
            "steps": s.step,
            "epochs_done": s.epoch,
            "world_size": ctx.world_size,
            "global_batch": self.global_batch,
            "stopped_by": stopped_by,
        }


def best_criterion(metric: str | None) -> str:
    """What ``best.pt`` holds, in words (printed in the banner, the epoch lines and the summary)."""
    if metric is None:
        return "not written (train.best_metric=none)"
    if metric == "knn_top1":
        return "highest online kNN top-1 (knn_top1)"
    return f"lowest epoch-mean {metric} (train.best_metric={metric}; the kNN monitor is off)"


def _hms(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    h, rem = divmod(seconds, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
