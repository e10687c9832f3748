"""The pretraining config: four small typed sections (data, method, optim, train).

``method`` is the config dataclass of the chosen method (``method.name`` picks it), so each
method validates its own keys. Load with :func:`load_pretrain_config` (YAML + overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from ..config import apply_overrides, build, check_range, load_yaml, to_dict
from ..data.config import DataConfig
from ..errors import ConfigError

__all__ = ["DataConfig", "OptimConfig", "TrainConfig", "PretrainConfig", "load_pretrain_config", "config_from_dict"]


@dataclass
class OptimConfig:
    """Optimizer and per-iteration learning-rate schedule."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    #: also decay biases, normalisation weights and other 1-D parameters (temperatures, scales).
    #: Off by default, as in solo-learn and open_clip: decaying a BatchNorm scale or a bias only
    #: shrinks it toward 0 and regularises nothing (measured in docs/methods_results.md)
    decay_norm_and_bias: bool = False
    momentum: float = 0.9
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    min_lr: float = 1e-6
    scale_lr_with_batch: bool = False  # lr = lr · global_batch / 256

    def validate(self) -> None:
        check_range("optim.lr", self.lr, 0.0, 100.0)
        check_range("optim.momentum", self.momentum, 0.0, 0.9999)
        check_range("optim.min_lr", self.min_lr, 0.0, 100.0)
        check_range("optim.weight_decay", self.weight_decay, 0.0, 10.0)
        check_range("optim.warmup_epochs", self.warmup_epochs, 0.0, 1e6)


@dataclass
class TrainConfig:
    """Loop, scale-out, precision, fault tolerance and bookkeeping (docs/distributed.md).

    ``batch_size`` is **per rank** (per process): under ``torchrun --nproc_per_node W`` an
    optimizer step sees ``batch_size · W · grad_accum`` clips. Negatives come from one
    micro-batch of one rank unless ``method.gather_negatives`` (then all ranks' micro-batches).
    """

    out_dir: str = "runs/pretrain"
    epochs: int = 10
    batch_size: int = 32  # per rank
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # fp16 (+ GradScaler): CUDA only
    channels_last: Literal["auto", "on", "off"] = "auto"
    compile: bool = False  # torch.compile the training step (falls back to eager with a warning)
    compile_backend: str = "inductor"
    grad_accum: int = 1  # micro-batches per optimizer step
    grad_clip: float | None = None  # max global gradient L2 norm
    deterministic: bool = False  # torch.use_deterministic_algorithms(True), no cudnn autotuning
    sync_bn: bool = False  # BatchNorm statistics over all ranks (SyncBatchNorm; any device)
    find_unused_parameters: bool = False  # DDP: only for methods with parameters unused in a step
    dist_timeout_s: float = 1800.0  # collective timeout
    on_nonfinite: Literal["raise", "skip_step"] = "raise"  # NaN/inf loss or gradient
    max_consecutive_skips: int = 10  # skip_step: give up after this many non-finite steps in a row
    log_every: int = 10  # steps between log.csv rows
    save_every_epochs: int = 1
    save_every_steps: int = 0  # also checkpoint every N optimizer steps (0: off)
    keep_last: int = 2  # regular checkpoints kept (best.pt is kept besides)
    best_metric: Literal["auto", "loss", "knn_top1", "none"] = "auto"  # auto: knn_top1 if monitored, else loss
    num_threads: int | None = None
    progress: bool = True
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard package)
    monitor_every_epochs: int = 0  # online kNN monitor every N epochs (0: off)
    monitor_bank_split: str = "train"  # labelled split whose features form the kNN bank
    monitor_query_split: str = "val"  # labelled split classified by kNN (top-1 reported)
    monitor_max_videos: int = 256  # per split (evenly spaced subset)
    monitor_k: int = 20
    #: online diagnostics (docs/diagnostics.md): loss terms vs their chance level, alignment /
    #: uniformity of the contrastive embeddings, attention-map entropy
    diagnostics: bool = True
    chance_warn_epochs: int = 3  # warn when a term is still at chance after this many epochs (0: never)
    chance_tolerance: float = 0.02  # "at chance": less than this fraction below the chance level
    #: linear classifier on detached video features, trained on the labelled training clips
    #: (auto: on when the training split has labels and the method returns its features)
    online_probe: bool | Literal["auto"] = "auto"
    online_probe_lr: float = 1e-3  # Adam

    def validate(self) -> None:
        check_range("train.epochs", self.epochs, 1, 100000)
        check_range("train.batch_size", self.batch_size, 1, 1 << 20)
        check_range("train.keep_last", self.keep_last, 1, 1000)
        check_range("train.grad_accum", self.grad_accum, 1, 1 << 16)
        check_range("train.log_every", self.log_every, 1, 1 << 30)
        check_range("train.save_every_epochs", self.save_every_epochs, 1, 1 << 30)
        check_range("train.save_every_steps", self.save_every_steps, 0, 1 << 30)
        check_range("train.max_consecutive_skips", self.max_consecutive_skips, 1, 1 << 30)
        check_range("train.monitor_every_epochs", self.monitor_every_epochs, 0, 1 << 30)
        check_range("train.monitor_max_videos", self.monitor_max_videos, 2, 1 << 30)
        check_range("train.monitor_k", self.monitor_k, 1, 1 << 16)
        check_range("train.dist_timeout_s", self.dist_timeout_s, 1.0, 1e7)
        check_range("train.chance_warn_epochs", self.chance_warn_epochs, 0, 1 << 30)
        check_range("train.chance_tolerance", self.chance_tolerance, 0.0, 1.0)
        check_range("train.online_probe_lr", self.online_probe_lr, 1e-8, 10.0)
        if self.grad_clip is not None:
            check_range("train.grad_clip", self.grad_clip, 0.0, None)
        if self.best_metric == "knn_top1" and self.monitor_every_epochs == 0:
            raise ConfigError(
                "train.best_metric=knn_top1 needs the online kNN monitor: set train.monitor_every_epochs >= 1"
            )

    @property
    def resolved_best_metric(self) -> str | None:
        """The metric that selects ``best.pt`` (``None``: no best checkpoint)."""
        if self.best_metric == "auto":
            return "knn_top1" if self.monitor_every_epochs > 0 else "loss"
        return None if self.best_metric == "none" else self.best_metric


@dataclass
class PretrainConfig:
    """A whole pretraining run."""

    method: Any
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: optional generated-world settings (``glocal demo`` generates ``data.root`` from them)
    world: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def config_from_dict(raw: dict[str, Any]) -> PretrainConfig:
    """Validate a nested dict into a :class:`PretrainConfig`."""
    from ..methods import method_class

    raw = dict(raw)
    allowed = {"method", "data", "optim", "train", "world"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown config section '{key}'; allowed sections: {sorted(allowed)}")
    method_raw = raw.get("method")
    if not isinstance(method_raw, dict) or "name" not in method_raw:
        raise ConfigError("config needs a 'method' section with a 'name' (e.g. method.name=glcm)")
    cls = method_class(str(method_raw["name"]))
    world = raw.get("world")
    if world is not None:
        from ..data.synth import WorldConfig

        build(WorldConfig, world, prefix="world.")  # validate now, not after training
    return PretrainConfig(
        world=dict(world) if world is not None else None,
        method=build(cls.config_class, method_raw, prefix="method."),
        data=build(DataConfig, raw.get("data"), prefix="data."),
        optim=build(OptimConfig, raw.get("optim"), prefix="optim."),
        train=build(TrainConfig, raw.get("train"), prefix="train."),
    )


def load_pretrain_config(path: str | Path | None, overrides: Iterable[str] = ()) -> PretrainConfig:
    """Load a YAML config (or start empty), apply ``key=value`` overrides, validate."""
    raw = load_yaml(path) if path else {}
    return config_from_dict(apply_overrides(raw, overrides))
