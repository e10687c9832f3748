"""Typed config loading: conversion, validation, overrides, clear errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import pytest
import torch

from glocal.config import Interval, Range, apply_overrides, build, check, load_yaml, to_dict
from glocal.errors import ConfigError
from glocal.train.config import load_pretrain_config


@dataclass
class Inner:
    depth: int = 18
    mode: Literal["a", "b"] = "a"
    scale: tuple[float, float] = (0.2, 1.0)


@dataclass
class Outer:
    name: str = "x"
    rate: float = 0.1
    flag: bool = False
    maybe: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_build_converts_and_nests():
    cfg = build(Outer, {"rate": 1, "inner": {"depth": 34, "mode": "b", "scale": [0.5, 1]}, "maybe": 3})
    assert cfg.rate == 1.0 and isinstance(cfg.rate, float)
    assert cfg.inner == Inner(34, "b", (0.5, 1.0))
    assert cfg.maybe == 3
    assert to_dict(cfg)["inner"]["scale"] == [0.5, 1.0]


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"rat": 1.0}, "did you mean 'rate'"),
        ({"inner": {"mode": "c"}}, "'inner.mode' = 'c' is not allowed; allowed values: ['a', 'b']"),
        ({"inner": {"depth": 1.5}}, "'inner.depth' must be an integer"),
        ({"flag": "yes"}, "'flag' must be true or false"),
        ({"inner": {"scale": [1, 2, 3]}}, "'inner.scale' must have 2 items"),
        ({"inner": 5}, "'inner' must be a mapping"),
    ],
)
def test_build_errors_name_the_key(data, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        build(Outer, data)
    assert fragment in str(err.value)


def test_overrides_parse_yaml_values():
    raw = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=[1, 2]", "d.e=true", "f=hello"])
    assert raw == {"a": {"b": 2, "c": [1, 2]}, "d": {"e": True}, "f": "hello"}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["novalue"])


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(lst)


def test_pretrain_config_validates_every_section(tmp_path):
    cfg = load_pretrain_config(None, ["method.name=glcm", "train.epochs=2", "data.crop_size=64"])
    assert cfg.train.epochs == 2 and cfg.data.crop_size == 64 and cfg.method.name == "glcm"
    for override, fragment in [
        ("method.name=nope", "not a known method"),
        ("method.tau=-1", "method.tau"),
        ("data.on_error=ignore", "allowed values: ['raise', 'skip']"),
        ("train.batch_size=0", "train.batch_size"),
        ("data.crop_scale=[0.9, 0.1]", "data.crop_scale"),
        ("data.jitter=[0.4, 0.4, 0.4, 0.7]", "data.jitter"),
        ("data.jitter=[0.4, 0.4]", "data.jitter"),
        ("data.grayscale_p=1.5", "data.grayscale_p"),
        ("data.decoder_threads=0", "data.decoder_threads"),
        ("data.decoder_threads=many", "int | 'auto' | 'ffmpeg'"),
        ("data.augment_on_device=maybe", "bool | 'auto'"),
        ("data.audio_speed_mode=pitch", "data.audio_speed_mode"),
        ("optim.name=lamb", "optim.name"),
        ("bogus.key=1", "unknown config section 'bogus'"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_pretrain_config(None, ["method.name=glcm", override])
        assert fragment in str(err.value), (override, str(err.value))
    with pytest.raises(ConfigError, match="method"):
        load_pretrain_config(None, [])


def test_data_jitter_reaches_the_clip_transform():
    """``data.jitter`` (colour-jitter strengths) is what the training transform uses."""
    from glocal.data.build import default_transforms
    from glocal.methods.common import clip_transform

    cfg = load_pretrain_config(None, ["method.name=glcm", "data.jitter=[0.1, 0.2, 0.3, 0.0]"])
    assert cfg.data.jitter == (0.1, 0.2, 0.3, 0.0)
    assert default_transforms(cfg.data)["clip"].jitter == (0.1, 0.2, 0.3, 0.0)
    assert clip_transform(cfg.data).jitter == (0.1, 0.2, 0.3, 0.0)


def test_decoder_threads_and_augment_on_device_reach_the_dataset(tmp_path, monkeypatch):
    """``data.decoder_threads``, ``data.audio_speed_mode`` and the resolved
    ``data.augment_on_device`` (auto: on for CUDA training) are what the pretraining dataset gets."""
    import glocal.data.build as build
    from glocal.methods import build_method
    from glocal.train.loop import Trainer

    seen = {}
    monkeypatch.setattr(build, "load_manifest", lambda *a, **k: None)
    monkeypatch.setattr(build, "MultiViewDataset", lambda *a, **k: seen.update(k))
    cfg = load_pretrain_config(None, ["method.name=avts", "data.audio_speed_mode=stretch"])
    build_method(cfg.method, cfg.data).pretrain_dataset(seed=0, augment_on_device=False)
    assert seen["speed_mode"] == "stretch" and seen["with_audio"]
    cases = [  # overrides, decoder threads, augment on device for a CPU / a CUDA run
        ([], "auto", (False, True)),
        (["data.augment_on_device=true", "data.decoder_threads=3"], 3, (True, True)),
        (["data.augment_on_device=false", "data.decoder_threads=ffmpeg"], None, (False, False)),
    ]
    for overrides, threads, on_device in cases:
        cfg = load_pretrain_config(None, ["method.name=glcm", *overrides])
        trainer = Trainer(cfg)
        resolved = []
        for device in ("cpu", "cuda"):
            trainer.device = torch.device(device)
            resolved.append(trainer._augment_on_device())
        assert tuple(resolved) == on_device, overrides
        build_method(cfg.method, cfg.data).pretrain_dataset(seed=0, augment_on_device=resolved[0])
        assert (seen["decoder_threads"], seen["augment_on_device"]) == (threads, on_device[0]), overrides

def test_shipped_configs_load():
    """Every shipped recipe loads, its ``world:`` section included (built as a checked WorldConfig)."""
    from glocal.data.synth import WorldConfig
    from glocal.train.config import config_from_dict

    root = Path(__file__).resolve().parents[1].joinpath("configs")
    # configs/study/ holds study configs (glocal study), checked in tests/study/test_config.py
    paths = sorted(p for p in root.rglob("*.yaml") if p.relative_to(root).parts[0] != "study")
    worlds = 0
    for path in paths:
        raw = load_yaml(path)
        cfg = config_from_dict(raw)
        if "world" in raw:
            worlds += 1
            assert isinstance(cfg.world, WorldConfig), path
            assert cfg.world == WorldConfig.from_dict(raw["world"]), path
            assert to_dict(cfg)["world"] == cfg.world.to_dict(), path
        else:
            assert cfg.world is None, path
    assert worlds >= 7  # demo.yaml + configs/world/*.yaml
    bad = {**load_yaml(paths[0].parent / "demo.yaml")}
    bad["world"] = {**bad["world"], "height": 33}
    with pytest.raises(ConfigError, match=r"'world\.height' = 33 is out of range; allowed: \[32, 1024\], a multiple of 2"):
        config_from_dict(bad)


# ------------------------------------------------------------------------------------------------
# bounds on the fields: Range / Interval
# ------------------------------------------------------------------------------------------------
@dataclass
class Bounded:
    count: Annotated[int, Range(1, 4096)] = 8
    rate: Annotated[float, Range(0.0, None, lo_open=True)] = 0.1
    p: Annotated[float, Range(0.0, 1.0)] | None = None
    threads: Annotated[int, Range(1, 256)] | Literal["auto"] = "auto"
    even: Annotated[int, Range(32, 1024, multiple_of=2)] = 64
    span: Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)] = (0.2, 0.5)
    ratio: Annotated[tuple[float, float], Interval(0.0, None, lo_open=True)] = (0.75, 1.25)
    grid: tuple[Annotated[int, Range(1)], ...] = (2, 2)
    mode: Literal["auto", "on", "off"] = "auto"


def test_range_and_interval_accept_the_bounds_and_inside():
    cfg = build(Bounded, {"count": 1, "rate": 1e-9, "p": 1, "threads": 256, "even": 1024, "span": [1, 1],
                          "ratio": [2, 2e6], "grid": [1, 7]})
    assert (cfg.count, cfg.p, cfg.threads, cfg.even, cfg.span, cfg.grid) == (1, 1.0, 256, 1024, (1.0, 1.0), (1, 7))
    assert build(Bounded, {"count": 4096, "p": None, "threads": "auto", "even": 32, "span": [0.5, 0.5]}).p is None
    assert check(Bounded()) == Bounded()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"count": 0}, "config key 'count' = 0 is out of range; allowed: [1, 4096]"),
        ({"count": 4097}, "config key 'count' = 4097 is out of range; allowed: [1, 4096]"),
        ({"rate": 0}, "config key 'rate' = 0.0 is out of range; allowed: (0.0, inf]"),
        ({"rate": -1}, "config key 'rate' = -1.0 is out of range; allowed: (0.0, inf]"),
        ({"rate": math.nan}, "config key 'rate' = nan is out of range"),
        ({"p": 1.5}, "config key 'p' = 1.5 is out of range; allowed: [0.0, 1.0]"),
        ({"threads": 0}, "config key 'threads' = 0 is out of range; allowed: [1, 256]"),  # not "matches none"
        ({"threads": "many"}, "config key 'threads' = 'many' matches none of int | 'auto'"),
        ({"even": 33}, "config key 'even' = 33 is out of range; allowed: [32, 1024], a multiple of 2"),
        ({"span": [0.6, 0.5]}, "config key 'span' = [0.6, 0.5] must satisfy 0 < lo <= hi <= 1"),
        ({"span": [0, 0.5]}, "config key 'span' = [0.0, 0.5] must satisfy 0 < lo <= hi <= 1"),
        ({"span": [0.5, math.nan]}, "config key 'span' = [0.5, nan] must satisfy"),
        ({"ratio": [0, 1]}, "config key 'ratio' = [0.0, 1.0] must satisfy 0 < lo <= hi"),
        ({"grid": [2, 0]}, "config key 'grid[1]' = 0 is out of range; allowed: [1, inf]"),
    ],
)
def test_bounds_errors_are_one_line_and_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        build(Bounded, data, prefix="")
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    with pytest.raises(ConfigError, match="'x.sec."):
        build(Bounded, data, prefix="x.sec.")


def test_check_converts_and_checks_a_dataclass_made_directly():
    fixed = check(Bounded(span=[0.25, 0.5], grid=[3]))  # type: ignore[arg-type]
    assert fixed.span == (0.25, 0.5) and fixed.grid == (3,)
    with pytest.raises(ConfigError, match="'sec.count' = 0"):
        check(Bounded(count=0), prefix="sec.")


def test_literal_takes_back_yaml_booleans_and_normalises_numbers():
    """PyYAML reads on/off/yes/no as booleans: a Literal that has the word takes it back
    (``train.channels_last=off``, ``glocal eval ... faiss=on``); 34.0 is the Literal's 34."""
    raw = apply_overrides({}, ["mode=off"])
    assert raw == {"mode": False} and build(Bounded, raw).mode == "off"
    assert build(Bounded, apply_overrides({}, ["mode=on"])).mode == "on"
    from glocal.train.config import load_pretrain_config

    assert load_pretrain_config(None, ["method.name=glcm", "train.channels_last=off"]).train.channels_last == "off"
    cfg = load_pretrain_config(None, ["method.name=avid", "method.audio_depth=34.0"])
    assert cfg.method.audio_depth == 34 and type(cfg.method.audio_depth) is int
    with pytest.raises(ConfigError, match="allowed values: \\['auto', 'on', 'off'\\]"):
        build(Bounded, {"mode": 1})


def _config_classes():
    from glocal.data.config import DataConfig
    from glocal.data.synth import WorldConfig
    from glocal.data.synth.realparts import RealPartsConfig
    from glocal.eval.context import EvalOptions, EvalRunOptions
    from glocal.methods import METHODS, method_class
    from glocal.train.config import OptimConfig, TrainConfig

    return [DataConfig, OptimConfig, TrainConfig, WorldConfig, RealPartsConfig, EvalOptions, EvalRunOptions,
            *(method_class(name).config_class for name in METHODS)]


def test_every_config_default_is_inside_its_bounds():
    """Defaults are not converted by build(): they must satisfy the markers written beside them."""
    for cls in _config_classes():
        assert check(cls()) == cls(), cls


def test_validate_keeps_only_rules_between_fields():
    """A fixed bound is a marker on its field and a fixed choice a Literal: validate() holds neither
    (check_range is left for bounds that depend on another field: nn_k, n_local, frames_per_video,
    CtrlAug's mi_layer with cnn2d)."""
    import inspect

    ranges = 0
    for cls in _config_classes():
        source = inspect.getsource(cls.validate) if hasattr(cls, "validate") else ""
        assert "check_choice" not in source, cls
        ranges += source.count("check_range(")
    assert ranges == 4


def test_pretrain_error_messages_keep_their_keys():
    from glocal.train.config import load_pretrain_config

    for method, override, fragment in [
        ("glcm", "method.width_mult=0", "config key 'method.width_mult' = 0.0 is out of range; allowed: [0.001, 16.0]"),
        ("glcm", "method.weight_global=-1", "config key 'method.weight_global' = -1.0 is out of range; allowed: [0.0, inf]"),
        ("ctrlaug", "method.backbone=resnet2d", "'method.backbone' = 'resnet2d' is not allowed; allowed values: ['r3d', 'r2plus1d', 'cnn2d']"),
        ("ctrlaug", "method.n_local=7", "config key 'method.n_local' = 7 is out of range; allowed: [2, 6]"),
        ("ctrlaug", "method.local_iou=[0.5, 0.2]", "'method.local_iou' = [0.5, 0.2] must satisfy 0 <= lo <= hi <= 1"),
        ("ctrlaug", "method.region_grid=[0, 4, 4]", "config key 'method.region_grid[0]' = 0"),
        ("avts", "method.nn_k=9", "config key 'method.nn_k' = 9 is out of range; allowed: [0, 8]"),
        ("avid", "method.audio_depth=20", "'method.audio_depth' = 20 is not allowed; allowed values: [18, 34, 50, 101]"),
        ("vclr", "method.frames_per_video=2", "config key 'method.frames_per_video' = 2 is out of range; allowed: [3,"),
        ("vclr", "method.depth=10", "config key 'method.depth' = 10 is not allowed"),
        ("simclr", "method.background_swap_area=0", "'method.background_swap_area' = 0.0 is out of range"),
        ("moco", "optim.momentum=1", "config key 'optim.momentum' = 1.0 is out of range; allowed: [0.0, 0.9999]"),
        ("moco", "train.grad_clip=-1", "config key 'train.grad_clip' = -1.0 is out of range; allowed: [0.0, inf]"),
    ]:
        extra = ["method.queue_size=8"] if override.startswith("method.nn_k") else []
        with pytest.raises(ConfigError) as err:
            load_pretrain_config(None, [f"method.name={method}", *extra, override])
        assert fragment in str(err.value), (override, str(err.value))
