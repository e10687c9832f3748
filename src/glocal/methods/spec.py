"""What rebuilds a trained method: its config, the data config it was trained with, the seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import build
from ..data.config import DataConfig
from ..errors import ConfigError
from .base import Method
from .registry import build_method, method_class

__all__ = ["MethodSpec"]


@dataclass(frozen=True)
class MethodSpec:
    """The parts of a run config that define a trained method, without its training options.

    Evaluation rebuilds a checkpoint's method (and its random-init twin) from this alone, so it
    never reads the ``optim`` section or the rest of ``train``.
    """

    method: Any  # the method's config dataclass (``method.name`` picks it)
    data: DataConfig
    seed: int = 0  # the run seed (``train.seed``): evaluation draws default to it

    @classmethod
    def from_config_dict(cls, raw: Mapping[str, Any]) -> "MethodSpec":
        """Validate the ``method`` and ``data`` sections and ``train.seed`` of a saved run config
        (a checkpoint's ``config``); other sections are ignored."""
        method_raw = raw.get("method")
        if not isinstance(method_raw, Mapping) or "name" not in method_raw:
            raise ConfigError("config needs a 'method' section with a 'name' (e.g. method.name=glcm)")
        cfg_class = method_class(str(method_raw["name"])).config_class
        seed = (raw.get("train") or {}).get("seed", 0)
        return cls(method=build(cfg_class, dict(method_raw), prefix="method."),
                   data=build(DataConfig, raw.get("data"), prefix="data."), seed=int(seed))

    def build(self) -> Method:
        """A freshly initialised method of this architecture (the caller seeds torch)."""
        return build_method(self.method, self.data)
