"""Build a method's pretraining dataset from the config.

The method decides *what* a sample is through three hooks on :class:`~glocal.methods.base.Method`
(``build_sampler``, ``transforms``, ``audio_transforms``; defaults: one contiguous clip
``"clip"`` with the config's crop/flip/jitter/grayscale); the config decides *where* the data is
(``data.root``, ``data.format``, ``data.split``, ``data.deny_list``) and how bad input is
handled. The result is a :class:`~glocal.data.dataset.MultiViewDataset`.

The hooks must only read ``self.cfg`` and class attributes: without a ``method`` instance the
builder calls them on :meth:`Method.config_only` (no networks are built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .dataset import MultiViewDataset
from .formats import load_manifest
from .samplers import ContiguousClipSampler
from .transforms import ClipTransform

if TYPE_CHECKING:
    from ..methods.base import Method

__all__ = ["default_sampler", "default_transforms", "train_clip_transform", "decode_size", "decoder_threads", "augment_on_device",
           "build_pretrain_dataset"]


def default_sampler(data_cfg: Any, *, with_audio: bool = True) -> ContiguousClipSampler:
    """One random clip ``"clip"`` of ``data.clip_frames`` frames at ``data.fps`` (+ its audio)."""
    return ContiguousClipSampler(data_cfg.clip_frames, data_cfg.fps, temporal="random", with_audio=with_audio)


def train_clip_transform(data_cfg: Any, *, blur_p: float = 0.0, per_frame: bool = False) -> ClipTransform:
    """A training :class:`ClipTransform` from ``data.crop_size/crop_scale/flip_p/jitter/jitter_p/
    grayscale_p`` plus Gaussian blur probability ``blur_p`` and ``per_frame`` draws."""
    return ClipTransform(
        size=data_cfg.crop_size, scale=tuple(data_cfg.crop_scale), flip_p=data_cfg.flip_p,
        jitter=tuple(data_cfg.jitter), jitter_p=data_cfg.jitter_p, grayscale_p=data_cfg.grayscale_p,
        blur_p=blur_p, per_frame=per_frame,
    )


def default_transforms(data_cfg: Any) -> dict[str, ClipTransform]:
    """``{"clip": train_clip_transform(data_cfg)}`` (no blur, one draw per clip)."""
    return {"clip": train_clip_transform(data_cfg)}


def decode_size(data_cfg: Any) -> tuple[int, int] | None:
    """``data.decode_size`` as the square ``(S, S)`` it documents (None: native size)."""
    s = getattr(data_cfg, "decode_size", None)
    return (int(s), int(s)) if s else None


def decoder_threads(data_cfg: Any) -> int | str | None:
    """``data.decoder_threads`` as :class:`~glocal.data.dataset.MultiViewDataset` takes it
    (``"ffmpeg"`` -> None: FFmpeg's automatic threading)."""
    t = getattr(data_cfg, "decoder_threads", "auto")
    return None if t == "ffmpeg" else t


def augment_on_device(cfg: Any) -> bool:
    """``data.augment_on_device`` resolved: ``"auto"`` is on when training runs on CUDA
    (``train.device`` cuda, or auto with a GPU present), off on CPU, where it would move work
    from the loader workers onto the cores the training step needs."""
    value = getattr(cfg.data, "augment_on_device", False)
    if value != "auto":
        return bool(value)
    device = getattr(getattr(cfg, "train", None), "device", "auto")
    return bool(device == "cuda" or (device == "auto" and torch.cuda.is_available()))


def build_pretrain_dataset(
    cfg: Any, with_audio: bool | None = None, *, method: "Method | None" = None
) -> MultiViewDataset:
    """The pretraining :class:`MultiViewDataset` of ``cfg`` (a ``PretrainConfig``).

    Args:
        cfg: the run config (``cfg.data``, ``cfg.method``, ``cfg.train.seed``).
        with_audio: decode audio (default: whether the method's modalities include audio).
        method: the method whose hooks define samples; default a config-only instance of
            ``cfg.method.name`` (no networks built).
    """
    from ..methods import method_class

    d = cfg.data
    if method is None:
        method = method_class(cfg.method.name).config_only(cfg.method)
    if with_audio is None:
        with_audio = "audio" in method.modalities
    manifest = load_manifest(
        d.root, getattr(d, "format", "auto"), split=d.split, manifest=d.manifest,
        deny_list=getattr(d, "deny_list", None), on_bad_row=getattr(d, "on_bad_row", "raise"),
    )
    return MultiViewDataset(
        manifest,
        method.build_sampler(d),
        method.transforms(d),
        audio_transforms=method.audio_transforms(d),
        size=decode_size(d),
        sample_rate=d.sample_rate,
        seed=cfg.train.seed,
        on_error=d.on_error,
        missing_audio=d.missing_audio,
        max_retries=d.max_retries,
        with_audio=with_audio,
        decoder_threads=decoder_threads(d),
        augment_on_device=augment_on_device(cfg),
        speed_mode=getattr(d, "audio_speed_mode", "sinc"),
    )
