"""The registry of methods by name, and building one for a data config."""

from __future__ import annotations

from typing import Any

from ..data.config import DataConfig
from ..errors import ConfigError
from .avid import AVID
from .avts import AVTS
from .base import Method
from .ctrlaug import CtrlAug
from .glcm import GLCM
from .moco import MoCo
from .simclr import SimCLR
from .vclr import VCLR

__all__ = ["METHODS", "method_class", "build_method"]

METHODS: dict[str, type[Method]] = {
    "glcm": GLCM,
    "simclr": SimCLR,
    "moco": MoCo,
    "avid": AVID,
    "vclr": VCLR,
    "ctrlaug": CtrlAug,
    "avts": AVTS,
}

def method_class(name: str) -> type[Method]:
    """Look a method up by name; a clear error lists the known ones."""
    if name not in METHODS:
        raise ConfigError(f"config key 'method.name' = {name!r} is not a known method; allowed values: {sorted(METHODS)}")
    return METHODS[name]


def build_method(method_cfg: Any, data_cfg: DataConfig) -> Method:
    """Instantiate the method whose config dataclass is ``method_cfg`` for the data of
    ``data_cfg`` (clip geometry, frame rate, sample rate, augmentations)."""
    return method_class(method_cfg.name)(method_cfg, data_cfg)
