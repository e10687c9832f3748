"""What every evaluation protocol receives: the dataset, how to draw clips, where to run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.manifest import Manifest, read_manifest, resolve_manifest
from ..errors import DataError
from .features import EvalData

__all__ = ["EvalContext"]


@dataclass
class EvalContext:
    """A labelled dataset (manifest with a ``split`` column) plus evaluation settings."""

    data_root: Path
    data: EvalData
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype | None = None
    progress: bool = True
    seed: int = 0
    manifest_name: str = "manifest.csv"
    #: features already extracted in this run, keyed by (model id, what, split)
    cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def manifest(self) -> Manifest:
        return read_manifest(resolve_manifest(self.data_root, self.manifest_name))

    def split(self, name: str) -> Manifest:
        """Rows of one split; a clear error if the manifest has no such split."""
        return self.manifest.split(name)

    def has_split(self, name: str) -> bool:
        return self.manifest.has_column("split") and bool(np.any(self.manifest.columns["split"] == name))

    @cached_property
    def annotations(self) -> dict[str, Any]:
        """``annotations.json`` next to the manifest (per-video boxes and events)."""
        path = Path(self.manifest.root) / "annotations.json"
        if not path.is_file():
            raise DataError(
                f"{path} not found: this task needs per-frame boxes / events (see docs/world_format.md)"
            )
        return json.loads(path.read_text())

    def video_annotation(self, abs_path: str) -> dict[str, Any]:
        """The annotation entry of a video, looked up by its path relative to the manifest folder."""
        rel = Path(abs_path).resolve().relative_to(Path(self.manifest.root).resolve()).as_posix()
        videos = self.annotations.get("videos", {})
        if rel not in videos:
            raise DataError(f"annotations.json has no entry for '{rel}'")
        return videos[rel]
