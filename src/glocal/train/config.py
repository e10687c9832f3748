"""The pretraining config: four small typed sections (data, method, optim, train).

``method`` is the config dataclass of the chosen method (``method.name`` picks it), so each
method validates its own keys. Load with :func:`load_pretrain_config` (YAML + overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from ..config import Range, apply_overrides, build, load_yaml, to_dict
from ..data.config import DataConfig
from ..data.synth.config import WorldConfig
from ..errors import ConfigError

__all__ = ["DataConfig", "OptimConfig", "TrainConfig", "PretrainConfig", "load_pretrain_config", "config_from_dict"]


@dataclass
class OptimConfig:
    """Optimizer and per-iteration learning-rate schedule."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Annotated[float, Range(0.0, 100.0)] = 1e-4
    weight_decay: Annotated[float, Range(0.0, 10.0)] = 0.0
    #: also decay biases, normalisation weights and other 1-D parameters (temperatures, scales).
    #: Off by default, as in solo-learn and open_clip: decaying a BatchNorm scale or a bias only
    #: shrinks it toward 0 and regularises nothing (measured in docs/methods_results.md)
    decay_norm_and_bias: bool = False
    momentum: Annotated[float, Range(0.0, 0.9999)] = 0.9
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: Annotated[float, Range(0.0, 1e6)] = 0.0
    min_lr: Annotated[float, Range(0.0, 100.0)] = 1e-6
    scale_lr_with_batch: bool = False  # lr = lr · global_batch / 256


@dataclass
class TrainConfig:
    """Loop, scale-out, precision, fault tolerance and bookkeeping (docs/distributed.md).

    ``batch_size`` is **per rank** (per process): under ``torchrun --nproc_per_node W`` an
    optimizer step sees ``batch_size · W · grad_accum`` clips. Negatives come from one
    micro-batch of one rank unless ``method.gather_negatives`` (then all ranks' micro-batches).
    """

    out_dir: str = "runs/pretrain"
    epochs: Annotated[int, Range(1, 100000)] = 10
    batch_size: Annotated[int, Range(1, 1 << 20)] = 32  # per rank
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # fp16 (+ GradScaler): CUDA only
    channels_last: Literal["auto", "on", "off"] = "auto"
    #: torch.compile the training step: auto = on CUDA for runs long enough to pay for the compile
    #: (train/compile.py), on, off; falls back to eager with a warning if compilation fails
    compile: Literal["auto", "on", "off"] = "auto"
    compile_backend: str = "inductor"
    grad_accum: Annotated[int, Range(1, 1 << 16)] = 1  # micro-batches per optimizer step
    grad_clip: Annotated[float, Range(0.0)] | None = None  # max global gradient L2 norm
    deterministic: bool = False  # torch.use_deterministic_algorithms(True), no cudnn autotuning
    sync_bn: bool = False  # BatchNorm statistics over all ranks (SyncBatchNorm; any device)
    find_unused_parameters: bool = False  # DDP: only for methods with parameters unused in a step
    dist_timeout_s: Annotated[float, Range(1.0, 1e7)] = 1800.0  # collective timeout
    on_nonfinite: Literal["raise", "skip_step"] = "raise"  # NaN/inf loss or gradient
    max_consecutive_skips: Annotated[int, Range(1, 1 << 30)] = 10  # skip_step: give up after this many non-finite steps in a row
    log_every: Annotated[int, Range(1, 1 << 30)] = 10  # steps between log.csv rows
    save_every_epochs: Annotated[int, Range(1, 1 << 30)] = 1
    save_every_steps: Annotated[int, Range(0, 1 << 30)] = 0  # also checkpoint every N optimizer steps (0: off)
    keep_last: Annotated[int, Range(1, 1000)] = 2  # regular checkpoints kept (best.pt is kept besides)
    best_metric: Literal["auto", "loss", "knn_top1", "none"] = "auto"  # auto: knn_top1 if monitored, else loss
    num_threads: int | None = None
    progress: bool = True
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard package)
    monitor_every_epochs: Annotated[int, Range(0, 1 << 30)] = 0  # online kNN monitor every N epochs (0: off)
    monitor_bank_split: str = "train"  # labelled split whose features form the kNN bank
    monitor_query_split: str = "val"  # labelled split classified by kNN (top-1 reported)
    monitor_max_videos: Annotated[int, Range(2, 1 << 30)] = 256  # per split (evenly spaced subset)
    monitor_k: Annotated[int, Range(1, 1 << 16)] = 20
    #: online diagnostics (docs/diagnostics.md): loss terms vs their chance level, alignment /
    #: uniformity of the contrastive embeddings, attention-map entropy
    diagnostics: bool = True
    chance_warn_epochs: Annotated[int, Range(0, 1 << 30)] = 3  # warn when a term is still at chance after this many epochs (0: never)
    chance_tolerance: Annotated[float, Range(0.0, 1.0)] = 0.02  # "at chance": less than this fraction below the chance level
    #: linear classifier on detached video features, trained on the labelled training clips
    #: (auto: on when the training split has labels and the method returns its features)
    online_probe: bool | Literal["auto"] = "auto"
    online_probe_lr: Annotated[float, Range(1e-8, 10.0)] = 1e-3  # Adam

    def validate(self) -> None:
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
    world: WorldConfig | None = None

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
    return PretrainConfig(
        world=build(WorldConfig, world, prefix="world.") if world is not None else None,
        method=build(cls.config_class, method_raw, prefix="method."),
        data=build(DataConfig, raw.get("data"), prefix="data."),
        optim=build(OptimConfig, raw.get("optim"), prefix="optim."),
        train=build(TrainConfig, raw.get("train"), prefix="train."),
    )


def load_pretrain_config(path: str | Path | None, overrides: Iterable[str] = ()) -> PretrainConfig:
    """Load a YAML config (or start empty), apply ``key=value`` overrides, validate."""
    raw = load_yaml(path) if path else {}
    return config_from_dict(apply_overrides(raw, overrides))
