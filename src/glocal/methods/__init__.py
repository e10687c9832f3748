"""Methods: one short recipe per file, registered by name in :data:`METHODS`."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Method
from .avid import AVID, AVIDConfig
from .ctrlaug import CtrlAug, CtrlAugConfig
from .avts import AVTS, AVTSConfig
from .glcm import GLCM, GLCMConfig
from .moco import MoCo, MoCoConfig
from .simclr import SimCLR, SimCLRConfig
from .vclr import VCLR, VCLRConfig

METHODS: dict[str, type[Method]] = {
    "glcm": GLCM,
    "simclr": SimCLR,
    "moco": MoCo,
    "avid": AVID,
    "vclr": VCLR,
    "ctrlaug": CtrlAug,
    "avts": AVTS,
}

__all__ = [
    "METHODS", "Method", "GLCM", "GLCMConfig", "SimCLR", "SimCLRConfig", "MoCo", "MoCoConfig", "AVID", "AVIDConfig",
    "VCLR", "VCLRConfig", "AVTS", "AVTSConfig", "CtrlAug", "CtrlAugConfig", "method_class", "build_method",
]


def method_class(name: str) -> type[Method]:
    """Look a method up by name; a clear error lists the known ones."""
    if name not in METHODS:
        raise ConfigError(f"config key 'method.name' = {name!r} is not a known method; allowed values: {sorted(METHODS)}")
    return METHODS[name]


def build_method(method_cfg: Any, *, sample_rate: int, fps: float) -> Method:
    """Instantiate the method whose config dataclass is ``method_cfg``."""
    cls = method_class(method_cfg.name)
    return cls(method_cfg, sample_rate=sample_rate, fps=fps)
