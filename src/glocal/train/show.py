"""``glocal config show CONFIG [key=value ...]``: the resolved pretraining config and the dataset it
would read, without training and without writing anything.

:func:`show_config` loads the config exactly as ``glocal pretrain`` does
(:func:`~glocal.train.config.load_pretrain_config`, so a bad value or an unknown key is the same
one-line error), marks every field that differs from its default (``set``: from the YAML) or came
from the command line (``override``), reads the manifest as pretraining does
(:func:`~glocal.data.build.data_manifest`) and probes a few evenly spaced training files for
their streams. The clip geometry is that of one sample drawn by the method's own view sampler.
:func:`render_text` prints it all as YAML with ``# set`` / ``# override`` comments.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from ..config import apply_overrides, build, to_dict
from ..data.build import data_manifest
from ..data.io import MediaInfo, probe
from ..data.manifest import Manifest
from ..data.preflight import preflight_notes
from ..data.prepare import read_prepared
from ..data.synth.config import WorldConfig
from ..errors import DataError
from ..methods import build_method
from .config import PretrainConfig, config_from_dict, load_pretrain_config

__all__ = ["show_config", "render_text", "config_marks", "dataset_summary"]

#: how many training files are probed for their streams (evenly spaced)
PROBES = 8
#: dataset summary files that say what made a folder (the layout reads them as plain ``csv``)
_KINDS = {"world.json": "generated world (glocal synth)", "realparts.json": "real-parts set (docs/real_parts.md)",
          "prepared.json": "prepared copy (glocal prepare)"}
_MAX_CLASS_NAMES = 20


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data.root": v, ...}``: every leaf of a nested mapping (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _defaults(cfg: PretrainConfig) -> dict[str, Any]:
    """Every field's default for ``cfg``'s method (and world, when the config has one), flattened."""
    tree = to_dict(config_from_dict({"method": {"name": cfg.method.name}}))
    tree["world"] = to_dict(build(WorldConfig, {})) if cfg.world is not None else None
    return _flat(tree)


def config_marks(cfg: PretrainConfig, overrides: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{"data.root": {"mark": "override" | "set", "default": d}}`` for every field that came from
    the command line (``override``) or differs from its default (``set``)."""
    given = set(_flat(apply_overrides({}, overrides)))
    defaults = _defaults(cfg)
    marks: dict[str, dict[str, Any]] = {}
    for key, value in _flat(cfg.to_dict()).items():
        default = defaults.get(key)
        if key in given or any(key.startswith(g + ".") for g in given):
            marks[key] = {"mark": "override", "default": default}
        elif value != default:
            marks[key] = {"mark": "set", "default": default}
    return marks


def _probe_sample(m: Manifest, n: int) -> tuple[list[MediaInfo], int]:
    """Streams of ``n`` evenly spaced files of ``m`` (``(infos, failed)``); decodes nothing else."""
    if not len(m):
        return [], 0
    picks = np.unique(np.linspace(0, len(m) - 1, min(n, len(m))).round().astype(int))
    infos, failed = [], 0
    for i in picks.tolist():
        try:
            infos.append(probe(m.paths[i]))
        except DataError:
            failed += 1
    return infos, failed


def _probe_summary(infos: list[MediaInfo], failed: int, of: int) -> dict[str, Any]:
    audio = [i for i in infos if i.has_audio]
    video = [i for i in infos if i.has_video]
    durations = sorted(i.duration for i in infos)
    return {
        "probed": len(infos) + failed, "of": of, "unreadable": failed,
        "with_video": len(video), "with_audio": len(audio),
        "audio_rates": sorted({i.audio_sample_rate for i in audio}),
        "audio_channels": sorted({i.audio_channels for i in audio}),
        "fps": sorted({round(i.fps, 3) for i in video}),
        "frame_sizes": sorted({f"{i.width}x{i.height}" for i in video}),
        "duration_s": ({"min": round(durations[0], 3), "median": round(durations[len(durations) // 2], 3),
                        "max": round(durations[-1], 3)} if durations else None),
    }


def _sample_geometry(cfg: PretrainConfig, infos: list[MediaInfo]) -> dict[str, Any]:
    """The views of one training sample, drawn by the method's own sampler (seed ``train.seed``)
    from a video as long as the probed median (10 s when none was probed)."""
    method = build_method(cfg.method, cfg.data)
    sampler = method.build_sampler()
    durations = sorted(i.duration for i in infos if i.duration > 0)
    rates = sorted(i.fps for i in infos if i.has_video and i.fps > 0)
    duration = durations[len(durations) // 2] if durations else 10.0
    src_fps = rates[len(rates) // 2] if rates else float(cfg.data.fps)
    plan = sampler.plan(np.random.default_rng(cfg.train.seed), 0.0, duration, src_fps)
    views = []
    for v in plan.views:
        times = np.asarray(v.times, dtype=np.float64)
        step = abs(float(np.median(np.diff(times)))) if len(times) > 1 else 0.0  # < 0: a reversed view
        view: dict[str, Any] = {"name": v.name, "frames": int(len(times)), "transform": v.transform}
        if step > 0:
            view["frame_step_s"] = round(step, 4)
            view["span_s"] = round(abs(float(times[-1] - times[0])) + step, 3)
        if v.audio is not None:
            view["audio_s"] = round(float(v.audio[1]), 3)
        views.append(view)
    crops = {k: int(t.size) for k, t in method.transforms().items() if isinstance(getattr(t, "size", None), int)}
    d = cfg.data
    return {
        "method": cfg.method.name, "modalities": list(method.modalities), "sampler": type(sampler).__name__,
        "drawn_from": f"a {duration:.2f}-s video at {src_fps:.4g} fps (seed {cfg.train.seed})",
        "views": views, "fps": float(d.fps), "crop_size": int(d.crop_size), "crops": crops,
        "decode_size": d.decode_size if d.decode_size else "native",
        "audio_sample_rate": int(d.sample_rate) if "audio" in method.modalities else None,
    }


def dataset_summary(cfg: PretrainConfig, *, probes: int = PROBES) -> dict[str, Any]:
    """What ``cfg``'s data section finds: layout, counts, splits, a probe of a few files, the
    clip geometry, a ``glocal prepare`` record and the preflight warnings pretraining would print."""
    d = cfg.data
    full = data_manifest(d, all_splits=True)  # the same reading (and errors) as pretraining
    train = data_manifest(d)
    folder = Path(d.root).expanduser().resolve()
    folder = folder.parent if folder.is_file() else folder
    splits: dict[str, int] = {}
    if full.has_column("split"):
        names, counts = np.unique(full.column("split"), return_counts=True)
        splits = {str(k): int(c) for k, c in zip(names.tolist(), counts.tolist())}
    labelled = int((train.labels >= 0).sum())
    infos, failed = _probe_sample(train, probes)
    geometry = _sample_geometry(cfg, infos)
    notes = preflight_notes(train, d, with_video="video" in geometry["modalities"])
    probed = _probe_summary(infos, failed, len(train))
    if "audio" in geometry["modalities"] and probed["with_audio"] < len(infos):
        notes.append(f"warning: {len(infos) - probed['with_audio']} of {len(infos)} probed files have no audio "
                     f"track and {cfg.method.name} needs audio: data.missing_audio={d.missing_audio} decides what "
                     "happens to them (check them all with `glocal scan DATA --require-audio`)")
    names = full.class_names
    out: dict[str, Any] = {
        "path": str(folder),
        "layout": full.report.format, "detected": full.report.detail,
        "made_by": [kind for f, kind in _KINDS.items() if (folder / f).is_file()] or None,
        "annotations": "annotations.json" if (folder / "annotations.json").is_file() else None,
        "files": len(full), "splits": splits,
        "training_split": d.split, "training_files": len(train), "training_labelled": labelled,
        "left_out": dict(full.report.left_out),
        "classes": len(names),
        "class_names": names[:_MAX_CLASS_NAMES] + (["..."] if len(names) > _MAX_CLASS_NAMES else []),
        "probe": probed, "sample": geometry,
        "prepared": (read_prepared(folder) or {}).get("params"),
        "notes": notes,
    }
    return out


def show_config(path: str | Path | None, overrides: Iterable[str] = (), *, probes: int = PROBES) -> dict[str, Any]:
    """``{"config": resolved, "marks": {key: {"mark", "default"}}, "dataset": summary}`` for a
    pretraining config plus overrides; bad configs and missing data raise the errors ``glocal
    pretrain`` raises."""
    overrides = list(overrides)
    cfg = load_pretrain_config(path, overrides)
    return {"config": cfg.to_dict(), "marks": config_marks(cfg, overrides),
            "dataset": dataset_summary(cfg, probes=probes)}


def _scalar(value: Any) -> str:
    """One value as a YAML flow scalar / list (``[0.2, 1.0]``, ``null``, ``auto``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _yaml_lines(tree: Mapping[str, Any], marks: Mapping[str, Mapping[str, Any]], prefix: str = "",
                indent: int = 0) -> list[str]:
    lines = []
    for key, value in tree.items():
        full = f"{prefix}{key}"
        pad = "  " * indent
        if isinstance(value, Mapping) and value:
            lines.append(f"{pad}{key}:")
            lines += _yaml_lines(value, marks, f"{full}.", indent + 1)
            continue
        line = f"{pad}{key}: {_scalar(value)}"
        m = marks.get(full)
        if m:
            line += f"  # {m['mark']} (default: {_scalar(m['default'])})"
        lines.append(line)
    return lines


def render_text(shown: Mapping[str, Any]) -> str:
    """The config as YAML, each changed field with a ``# set`` / ``# override`` comment naming its
    default, then a ``dataset:`` section."""
    marks = shown["marks"]
    n_set = sum(m["mark"] == "set" for m in marks.values())
    n_over = sum(m["mark"] == "override" for m in marks.values())
    head = [f"# resolved pretraining config: {n_over} fields from the command line (# override), {n_set} others "
            "differ from their defaults (# set); every other field has its default"]
    body = _yaml_lines(shown["config"], marks)
    dataset = yaml.safe_dump({"dataset": shown["dataset"]}, sort_keys=False, default_flow_style=None, width=110)
    return "\n".join(head + body) + "\n" + dataset.rstrip("\n")
