"""Build a pretraining dataset from the data config and a method's view sampler and transforms.

A method decides *what* a sample is (its view sampler and its video / audio transforms:
``Method.build_sampler`` / ``transforms`` / ``audio_transforms``, whose defaults are the helpers
below); the data config decides *where* the data is (``data.root``, ``data.format``,
``data.split``, ``data.deny_list``) and how bad input is handled. :func:`build_dataset` joins
the two into a :class:`~glocal.data.dataset.MultiViewDataset`; it knows no method
(``glocal.methods.base.Method.pretrain_dataset`` calls it).
"""

from __future__ import annotations

from typing import Any, Mapping

from .config import DataConfig
from .dataset import MultiViewDataset
from .formats import load_manifest
from .manifest import Manifest
from .samplers import ContiguousClipSampler
from .transforms import ClipTransform
from .views import ViewSampler

__all__ = ["default_sampler", "default_transforms", "train_clip_transform", "decode_size", "decoder_threads",
           "data_manifest", "build_dataset"]


def default_sampler(data_cfg: DataConfig, *, with_audio: bool = True) -> ContiguousClipSampler:
    """One random clip ``"clip"`` of ``data.clip_frames`` frames at ``data.fps`` (+ its audio)."""
    return ContiguousClipSampler(data_cfg.clip_frames, data_cfg.fps, temporal="random", with_audio=with_audio)


def train_clip_transform(data_cfg: DataConfig, *, blur_p: float = 0.0, per_frame: bool = False) -> ClipTransform:
    """A training :class:`ClipTransform` from ``data.crop_size/crop_scale/motion_crop_p/flip_p/jitter/
    jitter_p/grayscale_p`` plus Gaussian blur probability ``blur_p`` and ``per_frame`` draws."""
    return ClipTransform(
        size=data_cfg.crop_size, scale=tuple(data_cfg.crop_scale), flip_p=data_cfg.flip_p,
        jitter=tuple(data_cfg.jitter), jitter_p=data_cfg.jitter_p, grayscale_p=data_cfg.grayscale_p,
        blur_p=blur_p, per_frame=per_frame, motion_crop_p=data_cfg.motion_crop_p,
    )


def default_transforms(data_cfg: DataConfig) -> dict[str, ClipTransform]:
    """``{"clip": train_clip_transform(data_cfg)}`` (no blur, one draw per clip)."""
    return {"clip": train_clip_transform(data_cfg)}


def decode_size(data_cfg: DataConfig) -> tuple[int, int] | None:
    """``data.decode_size`` as the square ``(S, S)`` it documents (None: native size)."""
    s = data_cfg.decode_size
    return (int(s), int(s)) if s else None


def decoder_threads(data_cfg: DataConfig) -> int | str | None:
    """``data.decoder_threads`` as :class:`~glocal.data.dataset.MultiViewDataset` takes it
    (``"ffmpeg"`` -> None: FFmpeg's automatic threading)."""
    t = data_cfg.decoder_threads
    return None if t == "ffmpeg" else t


def data_manifest(data_cfg: DataConfig, *, all_splits: bool = False) -> Manifest:
    """The manifest ``data_cfg`` names (layout, manifest file, deny list, bad-row policy), cut to
    ``data.split`` unless ``all_splits``: what pretraining reads, and ``glocal config show`` reports."""
    d = data_cfg
    return load_manifest(d.root, d.format, split=None if all_splits else d.split, manifest=d.manifest,
                         deny_list=d.deny_list, on_bad_row=d.on_bad_row)


def build_dataset(
    data_cfg: DataConfig,
    sampler: ViewSampler,
    transforms: Mapping[str, Any],
    audio_transforms: Mapping[str, Any],
    *,
    with_audio: bool,
    seed: int,
    augment_on_device: bool,
) -> MultiViewDataset:
    """The :class:`MultiViewDataset` of ``data_cfg``'s manifest (split, deny list, layout) whose
    samples are ``sampler``'s views with ``transforms`` / ``audio_transforms`` applied.

    Args:
        with_audio: decode audio (the method's modalities include audio).
        seed: the run seed (every sample's draws derive from it and the sample index).
        augment_on_device: leave colour jitter, grayscale, blur and normalisation to the
            training device (``data.augment_on_device`` resolved for the run's device).
    """
    d = data_cfg
    return MultiViewDataset(
        data_manifest(d),
        sampler,
        dict(transforms),
        audio_transforms=dict(audio_transforms),
        size=decode_size(d),
        sample_rate=d.sample_rate,
        seed=seed,
        on_error=d.on_error,
        missing_audio=d.missing_audio,
        max_retries=d.max_retries,
        with_audio=with_audio,
        decoder_threads=decoder_threads(d),
        augment_on_device=augment_on_device,
        speed_mode=d.audio_speed_mode,
    )
