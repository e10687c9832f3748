"""The study config: datasets, arms, seeds, evaluation tasks, CPU budget, parallelism and claims.

Loaded from YAML with ``key=value`` overrides (:func:`load_study_config`) and built by
:func:`glocal.config.build`, so every key is typed and bounded where it is declared::

    data: {world: data/world, real_parts: data/rp_big}
    arms:
      - {name: glcm, config: {world: configs/demo.yaml, real_parts: configs/real/glcm.yaml}}
      - {name: glcm_global_only, config: ..., overrides: [method.weight_local=0]}
    seeds: [0, 1, 2]
    tasks: [linear, retrieval, sound, localization]
    budget: {total_cpu_minutes: 3000, estimate_cpu_minutes: {world: 16, real_parts: 40}}
    claims:
      - {name: glcm_global_local, text: ..., arms: [glcm], baselines: [glcm_global_only],
         metrics: [linear/top1, localization/pointing]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Iterable

from ..config import Range, apply_overrides, build, load_yaml
from ..errors import ConfigError
from ..eval.cli import TASK_NAMES

__all__ = ["ArmConfig", "ClaimConfig", "BudgetConfig", "StudyConfig", "RANDOM_INIT", "load_study_config"]

#: the baseline name that means "each arm's own random-init twin" (same seed, same test videos)
RANDOM_INIT = "random_init"
_Cost = Annotated[float, Range(0.0, 1e3, lo_open=True)]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(key: str, name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"config key '{key}' = {name!r} must be a folder name: letters, digits, '_', '.', '-'")


@dataclass
class ArmConfig:
    """One arm: a pretraining recipe (a config per dataset, or one for all) and its overrides."""

    name: str
    #: base pretraining YAML for every dataset, or ``{dataset: path}`` (one per dataset of the study)
    config: str | dict[str, str]
    overrides: list[str] = field(default_factory=list)  # key=value on top, e.g. method.weight_local=0
    #: CPU cost of a cell relative to budget.estimate_cpu_minutes of its dataset (for estimates before
    #: a cell of this arm finished): one factor, or ``{dataset: factor}`` (missing datasets: 1)
    cost: _Cost | dict[str, _Cost] = 1.0

    def cost_for(self, dataset: str) -> float:
        return self.cost.get(dataset, 1.0) if isinstance(self.cost, dict) else self.cost

    def config_for(self, dataset: str) -> str:
        """The base config path of this arm on ``dataset``."""
        if isinstance(self.config, str):
            return self.config
        if dataset not in self.config:
            raise ConfigError(f"arm '{self.name}' has no config for dataset '{dataset}'; "
                              f"add arms[].config.{dataset}=PATH (it has {sorted(self.config)})")
        return self.config[dataset]


@dataclass
class ClaimConfig:
    """A claim: every arm of ``arms`` beats every arm of ``baselines`` on every metric of ``metrics``."""

    name: str
    text: str
    arms: list[str]
    #: arm names, or ``random_init``: each arm's own random-init twin (same seed)
    baselines: list[str]
    #: ``task/metric`` keys of the eval JSON that decide (higher is better), e.g. ``linear/top1``
    metrics: list[str]
    datasets: list[str] | None = None  # None: every dataset of the study
    note: str = ""


@dataclass
class BudgetConfig:
    """CPU budget (user + system CPU of every process of a cell, in minutes)."""

    total_cpu_minutes: Annotated[float, Range(0.0, None, lo_open=True)] | None = None
    cell_cpu_minutes: Annotated[float, Range(0.0, None, lo_open=True)] | None = None
    #: CPU minutes of one cell (train + eval) per dataset, for an arm of cost 1, used until cells of
    #: that dataset have finished (then their measured mean, scaled by cost, is used)
    estimate_cpu_minutes: dict[str, Annotated[float, Range(0.0, None, lo_open=True)]] = field(default_factory=dict)


@dataclass
class StudyConfig:
    """A whole study: the grid arm x dataset x seed, its evaluation and its claims."""

    data: dict[str, str]  # dataset name -> data.root of every arm on it
    arms: list[ArmConfig]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    tasks: list[str] = field(default_factory=lambda: ["linear", "retrieval", "sound", "localization"])
    #: extra tasks on some datasets, e.g. ``{world: [temporal, deepfake]}`` (labels only the world has)
    dataset_tasks: dict[str, list[str]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)  # key=value applied to every arm before its own
    eval_overrides: list[str] = field(default_factory=list)  # glocal eval options, e.g. clips_per_video=2
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    parallel: Annotated[int, Range(1, 1024)] | None = None  # cells at once (None: usable cores // threads)
    threads_per_cell: Annotated[int, Range(1, 1024)] = 1  # train.num_threads and eval --threads
    claims: list[ClaimConfig] = field(default_factory=list)
    #: arms compared in the report's "which method for which task" table (None: the arms without overrides)
    table_arms: list[str] | None = None
    #: localisation contact sheets (``glocal localize``) of this many test videos per cell of a method
    #: that runs ``localization`` (the same videos for every cell); 0: none
    sheet_videos: Annotated[int, Range(0, 64)] = 0
    sheet_options: list[str] = field(default_factory=lambda: ["frames=4", "tile=96", "video=false"])
    alpha: Annotated[float, Range(0.0, 0.5, lo_open=True)] = 0.05  # significance level of the verdicts
    min_seeds: Annotated[int, Range(2, 1000)] = 3  # fewer paired seeds: inconclusive
    #: run only the cells of these datasets / arms (empty: all), e.g. ``only_datasets=[world]
    #: only_arms=[glcm,glcm_global_only]``: a part of a big study now, the rest later into the same
    #: folder (finished cells are kept; a claim whose arms did not run is inconclusive)
    only_datasets: list[str] = field(default_factory=list)
    only_arms: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if not self.data:
            raise ConfigError("config key 'data' needs at least one dataset, e.g. data.world=data/world")
        if not self.arms:
            raise ConfigError("config key 'arms' needs at least one arm")
        if not self.seeds:
            raise ConfigError("config key 'seeds' needs at least one seed, e.g. seeds=[0,1,2]")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"config key 'seeds' = {self.seeds} repeats a seed")
        for name in self.data:
            _check_name(f"data.{name}", name)
        names = [a.name for a in self.arms]
        for i, name in enumerate(names):
            _check_name(f"arms[{i}].name", name)
            if name == RANDOM_INIT:
                raise ConfigError(f"arms[{i}].name = '{RANDOM_INIT}' is reserved for the random-init twins")
            if names.count(name) > 1:
                raise ConfigError(f"arms[{i}].name = '{name}' names two arms; arm names must differ")
        for i, arm in enumerate(self.arms):
            for dataset in self.data:
                arm.config_for(dataset)
        unknown = [t for t in self.tasks if t not in TASK_NAMES]
        if unknown or not self.tasks:
            raise ConfigError(f"config key 'tasks' = {self.tasks}: unknown or none; choose from {list(TASK_NAMES)}")
        for dataset, extra in self.dataset_tasks.items():
            if dataset not in self.data:
                raise ConfigError(f"dataset_tasks.{dataset}: no such dataset (datasets: {sorted(self.data)})")
            bad = [t for t in extra if t not in TASK_NAMES]
            if bad:
                raise ConfigError(f"config key 'dataset_tasks.{dataset}' = {extra}: unknown {bad}; choose from "
                                  f"{list(TASK_NAMES)}")
        for dataset in self.budget.estimate_cpu_minutes:
            if dataset not in self.data:
                raise ConfigError(f"budget.estimate_cpu_minutes.{dataset}: no such dataset "
                                  f"(datasets: {sorted(self.data)})")
        for key, chosen, allowed in (("only_datasets", self.only_datasets, list(self.data)),
                                     ("only_arms", self.only_arms, names)):
            bad = [v for v in chosen if v not in allowed]
            if bad:
                raise ConfigError(f"config key '{key}' has {bad}; choose from {allowed}")
        bad = [a for a in (self.table_arms or []) if a not in names]
        if bad:
            raise ConfigError(f"config key 'table_arms' has {bad}; arms: {names}")
        claim_names = [c.name for c in self.claims]
        for i, c in enumerate(self.claims):
            key = f"claims[{i}]"
            if claim_names.count(c.name) > 1:
                raise ConfigError(f"{key}.name = '{c.name}' names two claims; claim names must differ")
            for part, allowed in (("arms", names), ("baselines", names + [RANDOM_INIT])):
                values = getattr(c, part)
                bad = [v for v in values if v not in allowed]
                if bad or not values:
                    raise ConfigError(f"config key '{key}.{part}' = {values}: unknown or none ({bad}); "
                                      f"arms: {names}" + (f" or '{RANDOM_INIT}'" if part == "baselines" else ""))
            if set(c.arms) & set(c.baselines):
                raise ConfigError(f"config key '{key}': arm(s) {sorted(set(c.arms) & set(c.baselines))} "
                                  "are both compared and baseline")
            bad = [d for d in (c.datasets or []) if d not in self.data]
            if bad:
                raise ConfigError(f"config key '{key}.datasets' has {bad}; datasets: {sorted(self.data)}")
            for m in c.metrics:
                task, _, metric = m.partition("/")
                missing = [d for d in self.claim_datasets(c) if task not in self.tasks_for(d)]
                if missing or not metric:
                    raise ConfigError(f"config key '{key}.metrics' has {m!r}: write task/metric with a task that "
                                      f"runs on every dataset of the claim ({missing or 'task/metric'}: 'tasks' "
                                      f"{self.tasks} + dataset_tasks), e.g. linear/top1")
            if not c.metrics:
                raise ConfigError(f"config key '{key}.metrics' is empty; name the task/metric keys that decide")

    def selected(self, dataset: str, arm: str) -> bool:
        """Whether the cells of ``dataset`` x ``arm`` run (``only_datasets`` / ``only_arms``)."""
        return (not self.only_datasets or dataset in self.only_datasets) and (not self.only_arms or arm in self.only_arms)

    def arm(self, name: str) -> ArmConfig:
        return next(a for a in self.arms if a.name == name)

    def method_arms(self) -> list[str]:
        """The arms of the "which method for which task" table."""
        return list(self.table_arms) if self.table_arms is not None else [a.name for a in self.arms if not a.overrides]

    def tasks_for(self, dataset: str) -> list[str]:
        """The evaluation tasks on ``dataset``: ``tasks``, then its ``dataset_tasks``."""
        return list(dict.fromkeys([*self.tasks, *self.dataset_tasks.get(dataset, [])]))

    def claim_datasets(self, claim: ClaimConfig) -> list[str]:
        return list(claim.datasets) if claim.datasets else list(self.data)


def load_study_config(path: str | Path, overrides: Iterable[str] = ()) -> StudyConfig:
    """Read the study YAML, apply ``key=value`` overrides (``seeds=[0,1]``, ``parallel=2``), build and check."""
    return build(StudyConfig, apply_overrides(load_yaml(path), overrides))
