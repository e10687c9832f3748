"""Run evaluation protocols for a checkpoint and for a random-init encoder of the same architecture.

:data:`TASKS` registers every protocol (one module each under ``glocal.eval``); :func:`run_evaluation`
loads the checkpoint, checks which tasks the method and the dataset allow, builds the random-init
twin (BatchNorm statistics re-estimated on training clips) and runs them, returning an
:class:`EvalReport` (metrics, per-task details, timings) that renders as JSON, as a table and as a
one-line summary. ``glocal eval TASK|all`` is a thin wrapper around it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import DataError, GlocalError, one_line
from ..runtime.files import write_atomic
from ..methods import Method, MethodSpec
from ..runtime.precision import resolve_device
from . import (
    deepfake,
    event,
    finetune,
    fingerprint,
    knn,
    linear_probe,
    localization,
    retrieval,
    sound_classification,
    tal,
    temporal,
)
from .checkpoint import build_like, calibrate, load_method
from .context import EvalContext, EvalOptions
from .features import EvalData, make_loader
from .usable import SkipLog

__all__ = ["Task", "TASKS", "EvalReport", "eval_data_from_config", "random_init_like", "run_evaluation",
           "evaluate", "results_markdown", "task_needs"]


@dataclass(frozen=True)
class Task:
    """One protocol: ``run(method, ctx) -> {metric: float, ..., "meta": {...}}``.

    ``requires(ctx)`` raises :class:`DataError` (naming the task and what is missing) when the dataset
    lacks what the task reads; ``modalities`` are the method inputs it needs; ``headline`` the
    metrics shown in the summary table.
    """

    name: str
    run: Callable[[Method, EvalContext], dict[str, Any]]
    requires: Callable[[EvalContext], None]
    modalities: tuple[str, ...]
    headline: tuple[str, ...]
    description: str


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("linear", linear_probe.run, linear_probe.requires, ("video",), ("top1",),
             "linear probe (logistic regression / linear SVM) on frozen video features, test top-1"),
        Task("knn", knn.run, knn.requires, ("video",), ("top1",), "cosine kNN on frozen video features, test top-1"),
        Task("finetune", finetune.run, finetune.requires, ("video",), ("top1",),
             "end-to-end fine-tuning of the video encoder + linear head, multi-clip test top-1"),
        Task("retrieval", retrieval.run, retrieval.requires, ("video",), ("R@1", "R@5", "R@10"),
             "test queries vs train gallery, cosine, R@1/5/10/20/50"),
        Task("sound", sound_classification.run, sound_classification.requires, ("audio",), ("top1",),
             "frozen audio encoder, k-fold (ESC-50) linear probe, mean top-1"),
        Task("localization", localization.run, localization.requires, ("video", "audio"),
             ("cIoU@0.5", "AUC", "pointing", "mass_share", "oracle_pointing", "oracle_cIoU@0.5"),
             "sound-source localisation maps vs boxes / masks: cIoU@0.5, AUC, pointing, mass share, oracle"),
        Task("event", event.run, event.requires, ("video",), ("segment_acc",),
             "audio-visual event localisation (AVE): per-segment event/background, segment accuracy"),
        Task("temporal", temporal.run, temporal.requires, ("video",), ("top1",),
             "fine-grained temporal (rhythm) classification from the local pathway, top-1"),
        Task("deepfake", deepfake.run, deepfake.requires, ("video", "audio"), ("auc",),
             "audio-visual deepfake / desync detection, video-level AUC"),
        Task("tal", tal.run, tal.requires, ("video",), ("AR@100", "AR-AN_AUC", "mAP@0.5"),
             "temporal action localisation from per-frame scores, AR@k, AR-AN AUC, mAP@0.5"),
        Task("fingerprint", fingerprint.run, fingerprint.requires, ("video",), ("mean_R@1", "mean_R@5"),
             "robust video fingerprinting (AVTS): originals vs benign edits, recall@1/5"),
    )
}


def task_needs(name: str, method: Method, options: EvalOptions) -> tuple[str, ...]:
    """What task ``name`` reads from every file with ``method``: ``"video"`` and / or ``"audio"``."""
    av = "audio" in method.modalities
    if name == "sound":
        return ("audio",)
    if name in ("localization", "deepfake") or (name in ("event", "tal") and av):
        return ("audio", "video")
    if name in ("linear", "knn", "retrieval") and options.video_pool == "sound":
        return ("audio", "video")  # the positions are weighted by the sound-source map of the clip's audio
    if name == "fingerprint":
        modality = options.fingerprint_modality
        modality = ("fused" if av else "video") if modality == "auto" else modality
        return {"video": ("video",), "audio": ("audio", "video"), "fused": ("audio", "video")}[modality]
    return ("video",)


#: uniformly spaced clips whose frozen features are averaged per video (the spec's protocols use 10)
DEFAULT_CLIPS_PER_VIDEO = 4


def eval_data_from_config(cfg: MethodSpec, **overrides: Any) -> EvalData:
    """Evaluation clips with the pretraining clip geometry (``overrides``: any :class:`EvalData` field)."""
    d = cfg.data
    kw = dict(clip_frames=d.clip_frames, fps=d.fps, crop_size=d.crop_size, sample_rate=d.sample_rate,
              decode_size=d.decode_size, num_workers=d.num_workers, clips_per_video=DEFAULT_CLIPS_PER_VIDEO)
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return EvalData(**kw)


def _calibration_batches(ctx: EvalContext, cfg: MethodSpec, with_audio: bool) -> Iterable[dict[str, Any]]:
    """Label-free clips for re-estimating BatchNorm statistics of the random-init twin.

    The evaluation dataset's train split (all rows without a split column); else the pretraining
    data's train split; else (ESC-50 audio-only data) audio crops of the files.
    """
    roots = [(ctx.data_root, ctx.manifest_name), (Path(cfg.data.root), cfg.data.manifest)]
    for root, name in roots:
        probe_ctx = dataclasses.replace(ctx, data_root=Path(root), manifest_name=name, cache={}, skipped=SkipLog(),
                                        needs=("audio", "video") if with_audio else ("video",), variants={})
        try:
            manifest = probe_ctx.manifest
        except DataError:
            continue
        if probe_ctx.has_split("train"):
            manifest = manifest.split("train")
        return make_loader(manifest, ctx.data, with_audio=with_audio)
    esc = sound_classification.find_esc50(ctx.data_root)
    if esc is not None:
        paths, _, _ = sound_classification.read_esc50(esc)
        files = sound_classification.audio_files(paths, esc.parent, str(esc))
        return ({"clip/audio": b["clip/audio"][:, 0]}
                for b in sound_classification.audio_crop_loader(files, ctx.data, 1))
    raise DataError(f"no data to calibrate the random-init baseline: {ctx.data_root} has no manifest")


def random_init_like(cfg: MethodSpec, ctx: EvalContext, seed: int = 0, calibrate_bn: bool = True) -> Method:
    """A freshly initialised method of the same architecture, BN statistics re-estimated on train clips."""
    method = build_like(cfg, ctx.device, seed=seed)
    if calibrate_bn:
        calibrate(method, _calibration_batches(ctx, cfg, with_audio="audio" in method.modalities), ctx.device)
    return method.eval()


@dataclass
class EvalReport:
    """Everything one ``glocal eval`` run produced.

    ``metrics[model][task]`` = ``{metric: value}``; ``meta[model][task]`` = protocol details;
    ``seconds[model][task]`` = wall time; ``skipped[task]`` = why a task of ``all`` did not run.
    Models are ``"checkpoint"`` and (unless disabled) ``"random_init"``.
    """

    checkpoint: str
    data: str
    method: str
    tasks: list[str]
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    meta: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: tasks of ``all`` that raised a user-facing error (``keep_going``): task -> the one-line reason
    failed: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    eval_data: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, dict[str, float]]:
        """``{model: {"task/metric": value}}``."""
        return {m: {f"{t}/{k}": v for t, res in per.items() for k, v in res.items()} for m, per in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write_json(self, path: str | Path) -> Path:
        """Write the report atomically (temp file + rename): a full disk leaves the previous file intact
        and raises a :class:`DataError` naming the file."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=2, default=str), what="results",
                            fix="files written before are intact: free space there or pass another --out")

    def table(self, full: bool = False) -> str:
        """Markdown table: one row per (task, metric) — headline metrics unless ``full`` — one column per model."""
        models = list(self.metrics)
        lines = ["| task | metric | " + " | ".join(models) + " |", "|---|---|" + "---:|" * len(models)]
        for task in self.tasks:
            names = list(dict.fromkeys(k for m in models for k in self.metrics[m].get(task, {})))
            if not full:
                names = [n for n in TASKS[task].headline if n in names] or names[:1]
            for n in names:
                vals = [self.metrics[m].get(task, {}).get(n) for m in models]
                lines.append(f"| {task} | {n} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: the headline metrics of each task for each model."""
        parts = []
        for task in self.tasks:
            per_model = []
            for m in self.metrics:
                res = self.metrics[m].get(task, {})
                keys = [k for k in TASKS[task].headline if k in res] or list(res)[:1]
                per_model.append(f"{m} " + " ".join(f"{k}={res[k]:.3f}" for k in keys))
            parts.append(f"{task}: " + " | ".join(per_model))
        secs = sum(s for per in self.seconds.values() for s in per.values())
        skipped = f"; skipped: {', '.join(self.skipped)}" if self.skipped else ""
        failed = f"; FAILED: {', '.join(self.failed)}" if self.failed else ""
        return "; ".join(parts) + f" ({secs:.1f} s{skipped}{failed})"


def _reported_tasks(report: EvalReport, runnable: Sequence[str]) -> list[str]:
    """Tasks with results: not skipped, and not failed for every model."""
    return [t for t in runnable if t not in report.skipped
            and (t not in report.failed or any(t in per for per in report.metrics.values()))]


def _task_error(task: str, exc: GlocalError) -> GlocalError:
    msg = str(exc)
    if msg.startswith(f"task '{task}'"):
        return exc
    return type(exc)(f"task '{task}': {msg}")


def missing_modalities(task: str, method_name: str, modalities: Sequence[str]) -> str | None:
    """Why ``task`` cannot run on a method with ``modalities`` (None if it can)."""
    missing = [m for m in TASKS[task].modalities if m not in modalities]
    if not missing:
        return None
    return f"task '{task}' needs {missing}, which method '{method_name}' does not use"


def run_evaluation(
    checkpoint: str | Path,
    data_root: str | Path | None = None,
    tasks: list[str] | None = None,
    *,
    device: str = "auto",
    with_random: bool = True,
    progress: bool = True,
    options: EvalOptions | None = None,
    seed: int | None = None,
    data_format: str | None = None,
    deny_list: str | Path | None = None,
    skip_unsupported: bool = False,
    keep_going: bool = False,
    on_error: str = "skip",
    on_result: Callable[[EvalReport], None] | None = None,
    **eval_overrides: Any,
) -> EvalReport:
    """Evaluate ``checkpoint`` (and a random-init twin) on ``tasks`` (None = every task that applies).

    Explicitly named tasks must be runnable: a method without the needed modality or hook, or a
    dataset without the needed labels / annotations, raises a :class:`GlocalError` naming the task.
    With ``tasks=None`` such tasks are skipped and listed in :attr:`EvalReport.skipped`.
    ``skip_unsupported`` relaxes this for named tasks the *method* cannot run (a modality it does
    not use, a hook it does not implement): they are skipped and listed too; dataset problems
    still raise (``glocal demo`` uses it: one task list for every method).

    Args:
        checkpoint: a ``glocal pretrain`` checkpoint.
        data_root: dataset folder / manifest (default: the pretraining ``data.root``).
        options: protocol knobs (:class:`EvalOptions`).
        seed: seed of every random draw (default: the pretraining seed).
        data_format: layout of the dataset (default: the pretraining ``data.format`` when
            ``data_root`` is None, else ``"auto"``).
        deny_list: ``glocal scan`` deny list (default: the pretraining ``data.deny_list`` when
            ``data_root`` is None, else none).
        on_error: files a task cannot use (undecodable; without the audio track it reads):
            ``"skip"`` leaves them out of that task, counted and named (one line on stderr,
            ``meta[model][task]["skipped"]`` in the report); ``"raise"`` stops at the first.
        keep_going: a task that raises a :class:`GlocalError` while running is recorded in
            :attr:`EvalReport.failed` (with the reason) and the other tasks go on (``glocal eval all``).
        on_result: called with the report after every finished (or failed) task, e.g. to write it.
        **eval_overrides: :class:`EvalData` fields (``clips_per_video``, ``batch_size``, ``num_workers``, ...).
    """
    dev = resolve_device(device)
    method, cfg = load_method(checkpoint, dev)
    root = Path(data_root or cfg.data.root)
    own_data = data_root is None
    if data_format is None:
        data_format = cfg.data.format if own_data else "auto"
    if deny_list is None and own_data:
        deny_list = cfg.data.deny_list
    ctx = EvalContext(root, eval_data_from_config(cfg, **eval_overrides), device=dev, progress=progress,
                      seed=cfg.seed if seed is None else seed, manifest_name=cfg.data.manifest,
                      options=options or EvalOptions(), data_format=data_format,
                      deny_list=str(deny_list) if deny_list is not None else None,
                      on_error=on_error)  # type: ignore[arg-type]
    explicit = tasks is not None
    names = list(tasks) if explicit else list(TASKS)
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise GlocalError(f"unknown eval task(s) {unknown}; choose from {list(TASKS) + ['all']}")
    report = EvalReport(str(checkpoint), str(root), cfg.method.name, [], options=dataclasses.asdict(ctx.options),
                        eval_data=dataclasses.asdict(ctx.data))
    strict_method = explicit and not skip_unsupported  # raise for what the method cannot do

    def skip(name: str, reason: str) -> None:
        report.skipped[name] = reason
        if progress:
            print(f"[glocal] skipping {name}: {reason}")

    runnable = []
    contexts: dict[str, EvalContext] = {}
    for name in names:
        task = TASKS[name]
        reason = missing_modalities(name, cfg.method.name, method.modalities)
        if reason:
            if strict_method:
                raise GlocalError(reason)
            skip(name, reason)
            continue
        try:
            contexts[name] = ctx.needing(task_needs(name, method, ctx.options))
            task.requires(contexts[name])
        except GlocalError as exc:
            if explicit:
                raise _task_error(name, exc) from exc
            skip(name, str(exc))
            continue
        if contexts[name].skipped:
            print(f"[glocal] {contexts[name].skipped.line(name)}", file=sys.stderr, flush=True)
        runnable.append(name)
    if not runnable:
        reasons = "; ".join(f"{k}: {v}" for k, v in report.skipped.items())
        raise DataError(f"no evaluation task can run on {root}: {reasons}")

    kinds: list[str] = []
    if any(t in runnable for t in ("event", "tal")):
        kinds += event.local_kinds(method)
    if "temporal" in runnable:
        kinds.append("video")
    if len(set(kinds)) > 1:  # several timeline kinds: decode every window once
        for c in {id(c): c for c in (ctx, *contexts.values())}.values():
            c.timeline_prefetch = tuple(dict.fromkeys(kinds))
    models: dict[str, Method] = {"checkpoint": method}
    if with_random:
        models["random_init"] = random_init_like(cfg, ctx, seed=ctx.seed)
    for label, model in models.items():
        for name in runnable:
            t0 = time.perf_counter()
            try:
                out = TASKS[name].run(model, contexts[name])
            except NotImplementedError as exc:
                if strict_method:
                    raise GlocalError(f"task '{name}': {exc}") from exc
                if name not in report.skipped:
                    skip(name, str(exc))
                continue
            except GlocalError as exc:
                err = _task_error(name, exc)
                if not keep_going:
                    raise err from exc
                report.failed[name] = f"{label}: {one_line(err)}"
                if progress:
                    print(f"[glocal] {label:>12} {name:<13} FAILED: {one_line(err)}")
                if on_result is not None:
                    on_result(report)
                continue
            secs = time.perf_counter() - t0
            report.metrics.setdefault(label, {})[name] = {k: float(v) for k, v in out.items() if k != "meta"}
            meta = dict(out.get("meta", {}))
            if contexts[name].skipped:
                meta["skipped"] = contexts[name].skipped.as_meta()
            report.meta.setdefault(label, {})[name] = meta
            report.seconds.setdefault(label, {})[name] = secs
            if progress:
                print(f"[glocal] {label:>12} {name:<13} done in {secs:.1f}s")
            report.tasks = _reported_tasks(report, runnable)
            if on_result is not None:
                on_result(report)
    report.tasks = _reported_tasks(report, runnable)
    return report


def evaluate(
    checkpoint: str | Path,
    data_root: str | Path | None = None,
    tasks: list[str] | None = None,
    *,
    out_json: str | Path | None = None,
    **kwargs: Any,
) -> dict[str, dict[str, float]]:
    """Evaluate ``checkpoint`` (and a random-init twin); returns ``{model: {"task/metric": value}}``.

    ``kwargs`` are :func:`run_evaluation`'s; ``out_json`` also writes the full report there."""
    report = run_evaluation(checkpoint, data_root, tasks, **kwargs)
    if out_json:
        report.write_json(out_json)
    return report.flat()


def results_markdown(results: dict[str, dict[str, float]], keep: Callable[[str], bool] | None = None) -> str:
    """A markdown table of :func:`evaluate`'s results: one row per task / metric, one column per model.

    ``keep(key)`` selects the ``"task/metric"`` rows (all when None)."""
    models = list(results)
    keys = [k for k in dict.fromkeys(k for r in results.values() for k in r) if keep is None or keep(k)]
    lines = ["| task | metric | " + " | ".join(models) + " |", "|---|---|" + "---:|" * len(models)]
    for key in keys:
        task, _, metric = key.partition("/") if "/" in key else ("", "", key)
        vals = [results[m].get(key) for m in models]
        lines.append(f"| {task} | {metric} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)
