"""What every evaluation protocol receives: the dataset, how to draw clips, task options, where to run."""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch

from ..config import Range
from ..data.formats import load_manifest
from ..data.manifest import Manifest
from ..errors import DataError
from .features import EvalData
from .usable import FileState, OnError, SkipLog, usable_mask

__all__ = ["EvalContext", "EvalOptions", "EvalRunOptions", "EDIT_NAMES"]

#: the query edits of the fingerprint task (:data:`glocal.eval.edits.EDITS`)
EditName = Literal["crop", "blur", "reencode", "noise", "speed"]
EDIT_NAMES: tuple[str, ...] = typing.get_args(EditName)


@dataclass
class EvalOptions:
    """Knobs of the protocols (defaults sized for the generated world; see docs/evaluation.md).

    ``glocal eval`` builds it from ``key=value`` overrides with :func:`glocal.config.build` (each
    value converted and checked against its field's type and bounds)."""

    #: linear probe / sound classification classifier: logistic regression or linear SVM (C on val)
    classifier: Literal["logreg", "svm"] = "logreg"
    #: linear / knn / retrieval: the video backbone map pooled over positions by "mean" (the
    #: spec's features, ``video_features``), "max" (``pooled_video_features``: keeps small objects)
    #: or "sound" (weighted by the method's own sound-source map of the clip's audio: audio-visual
    #: methods; the clips are then read with their audio)
    video_pool: Literal["mean", "max", "sound"] = "mean"
    #: candidate regularisation values, chosen on the validation split
    Cs: tuple[Annotated[float, Range(0.0, None, lo_open=True)], ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    #: kNN neighbours (cosine, temperature-weighted vote)
    knn_k: Annotated[int, Range(1)] = 20
    #: retrieval cut-offs (those larger than the gallery are dropped)
    retrieval_ks: tuple[Annotated[int, Range(1)], ...] = (1, 5, 10, 20, 50)
    #: nearest-neighbour search through faiss: "auto" (when installed), "on" (required), "off"
    faiss: Literal["auto", "on", "off"] = "auto"
    #: sound classification: uniformly spaced audio crops (clip length) averaged per file
    audio_crops: Annotated[int, Range(1)] = 3
    #: fine-tuning: epochs, Adam learning rate, batch size, uniform test clips averaged per video
    finetune_epochs: Annotated[int, Range(0)] = 3
    finetune_lr: Annotated[float, Range(0.0, None, lo_open=True)] = 1e-4
    finetune_batch_size: Annotated[int, Range(1)] = 8
    finetune_test_clips: Annotated[int, Range(1)] = 3
    #: event localisation: segment length (AVE: 1.0 s) and labels ("binary" event/background or
    #: "class": background + the video's class, AVE's 29-way setting)
    segment_seconds: Annotated[float, Range(0.0, None, lo_open=True)] = 0.25
    event_labels: Literal["binary", "class"] = "binary"
    #: temporal head (fine-grained temporal task): training epochs and learning rate
    head_epochs: Annotated[int, Range(0)] = 60
    head_lr: Annotated[float, Range(0.0, None, lo_open=True)] = 1e-3
    #: temporal action localisation: score thresholds, gap (s) below which runs are merged,
    #: frames used to fit the per-frame classifier (subsampled above this)
    tal_thresholds: tuple[Annotated[float, Range(0.0, 1.0)], ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    tal_merge_gap: Annotated[float, Range(0.0)] = 0.0
    max_train_frames: Annotated[int, Range(1)] = 20000
    #: deepfake / sync detection manifest (relative to the dataset folder)
    fake_manifest: str = "fake/manifest.csv"
    #: fingerprinting: edits applied to the queries and the embedding used ("auto": fused when the
    #: method has audio, else video)
    edits: tuple[EditName, ...] = EDIT_NAMES
    fingerprint_modality: Literal["auto", "video", "audio", "fused"] = "auto"
    #: sound-source localisation ground truth when a frame has several boxes (one per annotator):
    #: Flickr-SoundNet "consensus" (sum / 2, clipped) or VGG-SS "union"
    box_merge: Literal["consensus", "union"] = "consensus"


@dataclass
class EvalRunOptions(EvalOptions):
    """What ``glocal eval`` takes as ``key=value``: the protocol knobs (:class:`EvalOptions`) plus how
    the evaluation clips are loaded (``None``: the default named)."""

    #: uniform clips whose frozen features are averaged per video (None: 4)
    clips_per_video: Annotated[int, Range(1)] | None = None
    #: clips per forward pass (None: 32)
    batch_size: Annotated[int, Range(1)] | None = None
    #: data loader workers (None: the pretraining data.num_workers)
    num_workers: Annotated[int, Range(0)] | None = None

    def protocol_options(self) -> EvalOptions:
        """The :class:`EvalOptions` part."""
        return EvalOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(EvalOptions)})

    def loader_overrides(self) -> dict[str, int]:
        """The loader fields that were given (:class:`~glocal.eval.features.EvalData` overrides)."""
        return {k: v for k in ("clips_per_video", "batch_size", "num_workers") if (v := getattr(self, k)) is not None}


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
    #: dataset layout for :func:`~glocal.data.formats.load_manifest` ("auto" detects it)
    data_format: str = "auto"
    #: deny list written by ``glocal scan`` (its files are left out)
    deny_list: str | None = None
    options: EvalOptions = field(default_factory=EvalOptions)
    #: features already extracted in this run, keyed by (model id, what, split)
    cache: dict = field(default_factory=dict, repr=False)
    #: per-frame feature kinds to compute together whenever a timeline of the dataset is extracted
    timeline_prefetch: tuple[str, ...] = ()
    #: what the task reads from every file ("video", "audio"): files without it are unusable
    needs: tuple[str, ...] = ("video",)
    #: unusable files (see :mod:`glocal.eval.usable`): left out and counted ("skip"), an error ("raise"),
    #: or not checked up front (None: a bad file fails when it is loaded); :func:`run_evaluation` uses "skip"
    on_error: OnError | None = None
    #: files left out of this context's data, with the reasons
    skipped: SkipLog = field(default_factory=SkipLog)
    #: probe results by path, shared with the contexts derived by :meth:`needing`
    probes: dict[str, FileState] = field(default_factory=dict, repr=False)
    #: contexts derived by :meth:`needing`, by ``needs`` (shared)
    variants: dict = field(default_factory=dict, repr=False)

    @cached_property
    def manifest(self) -> Manifest:
        """The dataset's rows, deny-listed and unusable files (for :attr:`needs`) left out."""
        m = load_manifest(self.data_root, self.data_format, manifest=self.manifest_name, deny_list=self.deny_list)
        return self.usable(m)

    def keep(self, paths: np.ndarray, names: np.ndarray, source: str) -> np.ndarray:
        """Mask of the usable files among ``paths`` (the others are recorded in :attr:`skipped`)."""
        if self.on_error is None:
            return np.ones(len(paths), dtype=bool)
        return usable_mask(paths, names, needs=self.needs, states=self.probes, log=self.skipped,
                           on_error=self.on_error, source=source)

    def usable(self, m: Manifest) -> Manifest:
        """``m`` without the files this context's tasks cannot use."""
        if len(m) == 0:
            return m
        mask = self.keep(m.paths, m.relative_paths(), m.source)
        return m if mask.all() else m.select(mask)

    def needing(self, needs: tuple[str, ...]) -> "EvalContext":
        """This context for a task reading ``needs``: itself when that leaves out the same files (the
        feature cache is shared), else a derived context (own cache and skip log), made once."""
        key = tuple(sorted(needs))
        self.variants.setdefault(tuple(sorted(self.needs)), self)
        if key not in self.variants:
            other = dataclasses.replace(self, needs=key, cache={}, skipped=SkipLog())
            self.variants[key] = self if _rows(other) == _rows(self) else other
        return self.variants[key]

    def skip_note(self) -> str:
        """``" (2 unusable files left out: ...)"`` when files were left out, else ``""``."""
        if not self.skipped:
            return ""
        return f" ({len(self.skipped)} unusable files left out: {self.skipped.examples()})"

    @property
    def manifest_source(self) -> str | None:
        """The dataset manifest's file name, or None when the dataset has none (e.g. ESC-50 data)."""
        try:
            return self.manifest.source
        except DataError:
            return None

    def split(self, name: str) -> Manifest:
        """Rows of one split; a clear error if the manifest has no such split."""
        try:
            return self.manifest.split(name)
        except DataError as exc:
            raise DataError(f"{exc}{self.skip_note()}") from None

    def has_split(self, name: str) -> bool:
        return self.manifest.has_column("split") and bool(np.any(self.manifest.columns["split"] == name))

    @property
    def annotations_path(self) -> Path:
        return Path(self.manifest.root) / "annotations.json"

    @cached_property
    def annotations(self) -> dict[str, Any]:
        """``annotations.json`` next to the manifest (per-video boxes and events)."""
        path = self.annotations_path
        if not path.is_file():
            raise DataError(
                f"{path} not found: this task needs per-frame boxes / events (see docs/world_format.md)"
            )
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from None

    def annotation_key(self, abs_path: str) -> str:
        """The key of a video in ``annotations.json``: its path relative to the manifest folder.

        Compared as written first (a symlinked videos folder keeps its link name), then with
        symlinks resolved."""
        for path, root in ((Path(os.path.abspath(abs_path)), Path(os.path.abspath(self.manifest.root))),
                           (Path(abs_path).resolve(), Path(self.manifest.root).resolve())):
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return str(abs_path)

    def video_annotation(self, abs_path: str) -> dict[str, Any]:
        """The annotation entry of a video, looked up by its path relative to the manifest folder."""
        rel = self.annotation_key(abs_path)
        videos = self.annotations.get("videos", {})
        if rel not in videos:
            raise DataError(f"{self.annotations_path} has no entry for '{rel}'")
        return videos[rel]

    def require_annotation_field(self, task: str, key: str, split: str | None = None) -> None:
        """Raise :class:`DataError` naming the task unless every video (of ``split``) has ``key``."""
        path = self.annotations_path
        if not path.is_file():
            raise DataError(f"task '{task}' needs {path} with per-video '{key}' (see docs/world_format.md)")
        manifest = self.manifest if split is None else self.split(split)
        videos = self.annotations.get("videos", {})
        for p in manifest.paths.tolist():
            rel = self.annotation_key(p)
            if rel not in videos or key not in videos[rel]:
                raise DataError(f"task '{task}' needs '{key}' for every video in {path}; '{rel}' has none")

    def require_labels(self, task: str, splits: tuple[str, ...] = ("train", "test")) -> None:
        """Raise :class:`DataError` naming the task unless the manifest has labels and the splits."""
        m = self.manifest
        if not m.class_names or bool((m.labels < 0).all()):
            raise DataError(f"task '{task}' needs a 'label' column in {m.source}")
        if not m.has_column("split"):
            raise DataError(f"task '{task}' needs a 'split' column (train/val/test) in {m.source}")
        for s in splits:
            if not self.has_split(s):
                present = sorted(set(m.columns["split"].tolist()))
                raise DataError(f"task '{task}': split '{s}' is empty in {m.source} (splits present: {present})"
                                f"{self.skip_note()}")
        if self.skipped and "train" in splits:  # a class whose training videos were all left out
            split = m.columns["split"]
            lost = sorted(set(m.labels[split != "train"].tolist()) - set(m.labels[split == "train"].tolist()))
            if lost:
                raise DataError(f"task '{task}': class '{m.class_names[lost[0]]}' has no usable training video "
                                f"left in {m.source}{self.skip_note()}")

    @cached_property
    def fake_manifest_path(self) -> Path:
        """``fake/manifest.csv`` (or :attr:`EvalOptions.fake_manifest`) of the dataset folder."""
        root = Path(self.manifest.root) if self.data_root.is_file() else self.data_root
        return root / self.options.fake_manifest


def _rows(ctx: EvalContext) -> list[str] | str:
    """The usable files of ``ctx`` (or why there are none), to compare two contexts."""
    try:
        return ctx.manifest.paths.tolist()
    except DataError as exc:
        return str(exc)
