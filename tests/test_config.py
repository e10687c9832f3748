"""Typed config loading: conversion, validation, overrides, clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import torch

from glocal.config import apply_overrides, build, load_yaml, to_dict
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
    from pathlib import Path

    for path in sorted(Path(__file__).resolve().parents[1].joinpath("configs").rglob("*.yaml")):
        raw = load_yaml(path)
        raw.pop("world", None)
        from glocal.train.config import config_from_dict

        config_from_dict(raw)
