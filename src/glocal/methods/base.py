"""The small base every method builds on.

A method is an ``nn.Module`` that owns its encoders and heads and turns a collated batch into
named loss terms. The training engine only calls :meth:`Method.training_losses` and
:meth:`Method.on_step_end`; the evaluation suite only calls the ``*_features`` and
``localization_maps`` methods, so every method is evaluated the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..data.build import build_dataset, default_sampler, default_transforms
from ..data.config import DataConfig
from ..data.dataset import MultiViewDataset
from ..data.views import ViewSampler
from ..models.pooling import pool_positions

__all__ = ["Method", "sound_weighted_pool", "fp32", "DIAG_PREFIXES", "diag_entries", "num_outputs", "MomentumCopy", "StepQueue"]


class MomentumCopy(Protocol):
    """A momentum (EMA) copy of an online module (:class:`~glocal.methods.common.MomentumEncoder`)."""

    def update(self, online: nn.Module) -> None:
        """One EMA step ``θ_k <- m θ_k + (1 - m) θ_q`` towards ``online``."""


class StepQueue(Protocol):
    """A queue whose keys staged during a step enter it after the step
    (:class:`~glocal.methods.common.StagedQueue`)."""

    def flush(self) -> None:
        """Enqueue the keys staged since the last flush."""

#: Key prefixes of the reserved, non-loss entries ``training_losses`` may return beside its loss
#: terms (all detached; read by the online diagnostics of ``glocal.train.diagnostics``):
#:
#: * ``"pair/<name>"`` — ``(2, N, D)`` embeddings the contrastive term ``<name>`` sees:
#:   ``[0]`` = ``f(x_i)``, ``[1]`` = ``f(y_i)`` of the ``N`` positive pairs (alignment / uniformity);
#: * ``"attn/<name>"`` — ``(B, P)`` attention maps summing to 1 over ``P`` (entropy);
#: * ``"feat/video"`` — ``(B, C)`` pooled video backbone features of the training clips, the
#:   features ``video_features`` returns (online linear probe).
DIAG_PREFIXES = ("pair/", "attn/", "feat/")


def diag_entries(**entries: torch.Tensor) -> dict[str, torch.Tensor]:
    """Detached reserved entries: ``diag_entries(**{"pair/nce": t})`` -> ``{"pair/nce": t.detach()}``."""
    for key in entries:
        if not key.startswith(DIAG_PREFIXES):
            raise ValueError(f"reserved diagnostic keys start with {DIAG_PREFIXES}; got {key!r}")
    return {k: v.detach() for k, v in entries.items()}


def fp32(device: torch.device):
    """Disable autocast inside: losses (scores, log-sum-exp, softmax) are computed in fp32."""
    return torch.autocast(device_type=device.type, enabled=False)


def num_outputs(head: nn.Module) -> int:
    """Classes of a classifier head: ``out_features`` of its last ``nn.Linear``."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(head).__name__} has no nn.Linear layer")
    return linears[-1].out_features


def sound_weighted_pool(feature_map: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """Pool a backbone map over positions with a sound-source heat map as weights.

    ``feature_map`` ``(B, C, T, h, w)``, ``heat`` ``(B, T', h', w')`` (any scale, e.g. a softmax or
    a cosine map) -> ``(B, C)``::

        w_p = (H_p - min_q H_q) / sum_q (H_q - min_q H_q)     H = heat averaged over T', resized to (h, w)
        f   = sum_p w_p * mean_t F[:, t, p]

    (uniform weights, i.e. mean pooling, when the map is flat)."""
    b, c, _, h, w = feature_map.shape
    hm = heat.float().mean(dim=1, keepdim=True)  # (B, 1, h', w')
    if hm.shape[-2:] != (h, w):
        hm = F.interpolate(hm, size=(h, w), mode="bilinear", align_corners=False)
    hm = hm.flatten(1)  # (B, P)
    hm = hm - hm.amin(dim=1, keepdim=True)
    total = hm.sum(dim=1, keepdim=True)
    weights = torch.where(total > 0, hm / total.clamp_min(1e-12), torch.full_like(hm, 1.0 / hm.shape[1]))
    return torch.einsum("bcp,bp->bc", feature_map.float().mean(dim=2).flatten(2), weights)


class Method(nn.Module):
    """Base class: subclasses set ``name``, ``config_class`` and implement the hooks below."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    #: which inputs the method needs from a batch ("video", "audio").
    modalities: ClassVar[tuple[str, ...]] = ("video",)
    #: advice printed when a loss term stays at its chance level (docs/diagnostics.md)
    chance_hints: ClassVar[dict[str, str]] = {}
    #: ``(online, momentum copy)`` attribute names: after each step :meth:`on_step_end` moves every
    #: copy (a :class:`MomentumCopy`) towards its online module, in this order
    momentum_pairs: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: attribute names of the :class:`StepQueue` s that :meth:`on_step_end` flushes after the EMA
    #: updates, in this order (an attribute that is ``None`` is skipped: an optional memory)
    step_queues: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Any, data: DataConfig) -> None:
        """``cfg``: the method's config dataclass; ``data``: the data config (clip geometry,
        frame rate, sample rate and augmentations the hooks and encoders read)."""
        super().__init__()
        self.cfg = cfg
        self.data = data

    # ------------------------------------------------------------------ data hooks
    # They define what one training sample is (glocal.data.views) from ``self.cfg`` and
    # ``self.data``; :meth:`pretrain_dataset` joins them with the manifest.
    def build_sampler(self) -> ViewSampler:
        """The view sampler of a training sample. Default: one random contiguous clip ``"clip"``
        of ``data.clip_frames`` frames at ``data.fps``, with its audio if the method uses audio."""
        return default_sampler(self.data, with_audio="audio" in self.modalities)

    def transforms(self) -> dict[str, Any]:
        """Video transforms by ``ViewRequest.transform`` key. Default: ``{"clip": ClipTransform}``
        from the data config (crop size/scale, flip, jitter, grayscale)."""
        return default_transforms(self.data)

    def audio_transforms(self) -> dict[str, Any]:
        """Audio transforms by ``ViewRequest.transform`` key (default none: raw waveforms)."""
        return {}

    def pretrain_dataset(self, *, seed: int, augment_on_device: bool) -> MultiViewDataset:
        """The pretraining dataset of ``self.data``: samples are :meth:`build_sampler`'s views with
        :meth:`transforms` / :meth:`audio_transforms`; audio is decoded when the method's
        modalities include it (:func:`glocal.data.build.build_dataset`)."""
        return build_dataset(self.data, self.build_sampler(), self.transforms(), self.audio_transforms(),
                             with_audio="audio" in self.modalities, seed=seed, augment_on_device=augment_on_device)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Return every loss term by name plus their weighted sum under ``"loss"``, and optionally
        reserved diagnostic entries (keys starting with :data:`DIAG_PREFIXES`)."""
        raise NotImplementedError

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Chance level of each logged loss term for this batch: the term's value when every
        score is equal (``glocal.objectives.chance``). Terms without a chance level (e.g.
        adversarial ones) are left out. Reads only shapes and config: no host sync."""
        return {}

    def term_weights(self) -> dict[str, float]:
        """Weight of each logged loss term inside ``"loss"``, for the terms a config can switch off
        (default: none listed, every term trains). A term of weight 0 is still logged but has no
        chance level (:meth:`trained_loss_chance`), so no "still at chance" warning is printed for
        a term the run does not train."""
        return {}

    def trained_loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """:meth:`loss_chance` of the terms that train (:meth:`term_weights` > 0): what the trainer
        logs as ``<term>/chance`` and checks for "still at chance". No host sync."""
        weights = self.term_weights()
        return {term: c for term, c in self.loss_chance(batch).items() if weights.get(term, 1.0) > 0}

    def active_chance_hints(self) -> dict[str, str]:
        """The advice to print beside a term stuck at chance, for this method's config (default:
        :attr:`chance_hints`; a method drops the hints its config already follows)."""
        return dict(self.chance_hints)

    def on_step_end(self) -> None:
        """Called after each applied optimizer step: the EMA update of every pair of
        :attr:`momentum_pairs`, then the flush of every queue of :attr:`step_queues`
        (MoCo / VCLR / AVTS / AVID declare theirs; solo-learn updates its momentum pairs
        in its base the same way). No host sync."""
        self.update_momentum_copies()
        self.flush_step_queues()

    @torch.no_grad()
    def update_momentum_copies(self) -> None:
        """``θ_k <- m θ_k + (1 - m) θ_q`` for every ``(online, copy)`` of :attr:`momentum_pairs`."""
        for online, target in self.momentum_pairs:
            momentum: MomentumCopy = getattr(self, target)
            momentum.update(getattr(self, online))

    @torch.no_grad()
    def flush_step_queues(self) -> None:
        """Enqueue the keys staged during the step into every queue of :attr:`step_queues`."""
        for name in self.step_queues:
            queue: StepQueue | None = getattr(self, name)
            if queue is not None:
                queue.flush()

    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """Pooled clip features ``(B, D)`` from a normalised clip ``(B, 3, T, H, W)``."""
        raise NotImplementedError(f"method '{self.name}' has no video encoder")

    def video_feature_maps(self, video: torch.Tensor) -> list[torch.Tensor]:
        """The backbone maps ``(B, C_k, T', h, w)`` whose pooled, concatenated channels are
        :meth:`video_features` (one map per pathway, in the same channel order)."""
        raise NotImplementedError(f"method '{self.name}' exposes no video feature maps")

    def pooled_video_features(
        self, video: torch.Tensor, pool: str = "mean", audio: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Clip features ``(B, D)`` pooled over positions: ``"mean"`` = :meth:`video_features`
        (the spec's features); ``"max"`` = per channel the largest activation over all ``(T', h, w)``
        positions of each of :meth:`video_feature_maps`, which keeps an object that covers a few
        positions instead of averaging it into the background; ``"sound"`` = each map averaged over
        time, then over positions weighted by the method's own sound-source map of the clip's
        ``audio`` (``(B, N)`` waveform; :func:`sound_weighted_pool`), so the features describe
        what makes the sound (audio-visual methods only)."""
        if pool == "mean":
            return self.video_features(video)
        if pool == "max":
            return torch.cat([pool_positions(m.float(), "max", (2, 3, 4)) for m in self.video_feature_maps(video)], dim=1)
        if pool != "sound":
            raise ValueError(f"pool must be 'mean', 'max' or 'sound', got {pool!r}")
        if type(self).heat_maps_from is Method.heat_maps_from:
            raise NotImplementedError(f"video_pool=sound weights positions by the method's sound-source map; method "
                                      f"'{self.name}' has none (glcm, avid and avts do): use video_pool=mean or max")
        if audio is None:
            raise ValueError("pool='sound' needs the clip's audio")
        maps = self.video_feature_maps(video)  # one backbone pass serves the heat map and the pooling
        heat, _ = self.heat_maps_from(maps, audio, video.shape[2])  # (B, T', h, w)
        return torch.cat([sound_weighted_pool(m, heat) for m in maps], dim=1)

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Pooled audio features ``(B, D)`` from a mono waveform ``(B, N)``."""
        raise NotImplementedError(f"method '{self.name}' has no audio encoder")

    def joint_video(self, video: torch.Tensor) -> torch.Tensor:
        """The clip's embedding in the space the method contrasts video with audio: L2-normalised
        ``(B, D)`` from a normalised clip ``(B, 3, T, H, W)``, comparable by cosine with
        :meth:`joint_audio` (cross-modal search). Only audio-visual contrastive methods have one."""
        raise NotImplementedError(f"method '{self.name}' has no joint audio-visual embedding space (it does not "
                                  "contrast video with audio; glcm, avid and avts do); use space=backbone")

    def joint_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """The sound's embedding in the joint space of :meth:`joint_video`: L2-normalised ``(B, D)``
        from a mono waveform ``(B, N)``."""
        raise NotImplementedError(f"method '{self.name}' has no joint audio-visual embedding space (it does not "
                                  "contrast video with audio; glcm, avid and avts do); use space=backbone")

    def localization_maps(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sound-source heat maps ``(B, T', h, w)`` and the clip frame index of each map ``(T',)``."""
        raise NotImplementedError(f"method '{self.name}' produces no audio-visual localisation map")

    def heat_maps_from(
        self, maps: list[torch.Tensor], audio: torch.Tensor, num_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`localization_maps` from already computed backbone maps: ``maps`` as
        :meth:`video_feature_maps` returns them (the heat map reads the first), the clip's waveform
        ``(B, N)`` and its frame count ``T``."""
        raise NotImplementedError(f"method '{self.name}' produces no audio-visual localisation map")

    def local_video_features(self, video: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """Per-time-step video features ``(B, D, T)`` (for fine temporal tasks)."""
        raise NotImplementedError(f"method '{self.name}' has no local (per-step) video features")

    def local_audio_features(self, audio: torch.Tensor, steps: int) -> torch.Tensor:
        """Per-time-step audio features ``(B, D, steps)``."""
        raise NotImplementedError(f"method '{self.name}' has no local (per-step) audio features")
