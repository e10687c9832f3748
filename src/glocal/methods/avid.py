"""AVID-style cross-modal instance discrimination (spec 5, AVID-CMA "Cross" variant): a video
clip and its co-located audio are positives, other videos' audio / video are negatives.

Video: one clip (``data.clip_frames`` at ``data.fps``); audio: ``audio_seconds`` of waveform
centred on the clip (AVID: 0.5 s of video, 2 s of audio). Encoders: a pooled video backbone and
an :class:`~glocal.methods.common.AudioEncoder` (2-D ResNet over the spectrogram or the 1-D
trunk), each with an MLP head to L2-normalised embeddings ``v``, ``a``. Loss, both directions::

    L_v2a = -1/B Σ_i log e^{v_i·a_i/τ} / (Σ_j e^{v_i·a_j/τ} + Σ_{n ∈ Q_a} e^{v_i·n/τ})
    L_a2v = -1/B Σ_i log e^{a_i·v_i/τ} / (Σ_j e^{a_i·v_j/τ} + Σ_{n ∈ Q_v} e^{a_i·n/τ})
    L = (L_v2a + L_a2v) / 2

With ``av_score: max_position`` the video side is the bag of its map's positions instead
(:mod:`glocal.objectives.position_max`): ``s_ij = max_p <a_i, v_{j,p}>/τ`` with the video head
applied at every position, in-batch negatives only; this trains the per-position embeddings the
heat maps read.

``Q_a`` / ``Q_v`` are FIFO memories of past audio / video embeddings (``queue_size > 0``; AVID
uses a memory bank of 1024 sampled negatives) and the ``j`` sums run over the batch (or all
ranks with ``gather_negatives``); ``in_batch_negatives=False`` leaves only the memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F

from ..config import Range
from ..data.config import DataConfig
from ..data.audio_transforms import WaveformAugment
from ..data.samplers import ContiguousClipSampler
from ..errors import ConfigError
from ..models import MLPHead
from ..objectives import info_nce, info_nce_chance
from ..runtime.gather import dist_info
from ..objectives.position_max import max_position_nce
from .base import Method, diag_entries, fp32
from .common import (
    AudioEncoder,
    StagedQueue,
    VideoEncoderConfig,
    build_clip_encoder,
    clip_transform,
    embedding_heat_maps,
    head_at_positions,
)

__all__ = ["AVIDConfig", "AVID"]


@dataclass
class AVIDConfig(VideoEncoderConfig):
    """AVID knobs (video encoder fields inherited; audio encoder and loss below)."""

    name: Literal["avid"] = "avid"
    audio_encoder: Literal["resnet2d", "resnet1d"] = "resnet2d"
    audio_depth: Literal[18, 34, 50, 101] = 18
    audio_width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0
    logmel_preset: Literal["glcm", "avid", "avts"] = "avid"
    n_mels: int | None = None  # None with "avid": 257-bin linear dB spectrogram
    #: audio window centred on the clip (None: the clip's span)
    audio_seconds: Annotated[float, Range(1e-2, 60.0)] | None = 2.0
    audio_gain: Annotated[float, Range(0.0, 1.0)] = 0.1  # waveform gain augmentation +-10 %
    #: subtract each clip's per-bin noise floor (this quantile over time) from the log spectrogram
    #: (None: off; 0.2 for sparse sounds in steady background noise, see docs/real_parts.md)
    audio_floor_quantile: Annotated[float, Range(0.0, 1.0)] | None = None
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.07
    #: "pooled": compare the pooled clip embedding with the audio (AVID); "max_position": compare
    #: the audio with each position's embedding and keep the best (multiple-instance, "Objects that
    #: Sound"; in-batch negatives only)
    av_score: Literal["pooled", "max_position"] = "pooled"
    queue_size: Annotated[int, Range(0, 1 << 24)] = 0  # 0: in-batch negatives only; > 0: plus a memory of past embeddings
    in_batch_negatives: bool = True
    gather_negatives: bool = False
    blur_p: float = 0.0

    def validate(self) -> None:
        self.validate_encoder()
        if self.av_score == "max_position" and (self.queue_size or self.gather_negatives or not self.in_batch_negatives):
            raise ConfigError("method.av_score=max_position uses in-batch negatives only: set method.queue_size=0, "
                              "method.gather_negatives=false, method.in_batch_negatives=true")
        if not self.in_batch_negatives and self.queue_size == 0:
            raise ConfigError("method.in_batch_negatives=false needs method.queue_size > 0 (no negatives otherwise)")


class AVID(Method):
    """Batch: ``clip/video (B, 3, T, H, W)``, ``clip/audio (B, N)``. Terms: ``loss_v2a``, ``loss_a2v``."""

    name = "avid"
    config_class = AVIDConfig
    modalities = ("video", "audio")
    step_queues = ("video_queue", "audio_queue")  # the step's embeddings enter the memories (None: no memory)
    chance_hints = {t: "a larger batch, method.tau 0.07-0.2; check audio is present (data.missing_audio); "
                       "method.queue_size > 0 adds negatives, but past embeddings of the other modality can pull "
                       "both onto one point (watch loss_v2a/uniform)" for t in ("loss_v2a", "loss_a2v")}

    def __init__(self, cfg: AVIDConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        self.video = build_clip_encoder(cfg)
        self.audio = AudioEncoder(cfg.audio_encoder, sample_rate=data.sample_rate, preset=cfg.logmel_preset,
                                  n_mels=cfg.n_mels, depth=cfg.audio_depth, width_mult=cfg.audio_width_mult,
                                  floor_quantile=cfg.audio_floor_quantile)
        self.video_head = MLPHead(self.video.out_channels, cfg.proj_hidden, cfg.proj_dim, bn=cfg.proj_bn, l2=True)
        self.audio_head = MLPHead(self.audio.out_channels, cfg.proj_hidden, cfg.proj_dim, bn=cfg.proj_bn, l2=True)
        self.video_queue: StagedQueue | None = None
        self.audio_queue: StagedQueue | None = None
        if cfg.queue_size:
            self.video_queue = StagedQueue(cfg.queue_size, cfg.proj_dim)
            self.audio_queue = StagedQueue(cfg.queue_size, cfg.proj_dim)

    # ---------------------------------------------------------------- data hooks
    def build_sampler(self) -> ContiguousClipSampler:
        """One random clip ``"clip"`` + ``audio_seconds`` of audio centred on it."""
        return ContiguousClipSampler(self.data.clip_frames, self.data.fps, temporal="random", with_audio=True,
                                     audio_duration=self.cfg.audio_seconds)

    def transforms(self) -> dict[str, Any]:
        """Temporally consistent crop / flip / jitter / grayscale (+ blur)."""
        return {"clip": clip_transform(self.data, blur_p=self.cfg.blur_p)}

    def audio_transforms(self) -> dict[str, Any]:
        """Waveform gain (AVID: +-10 %); the spectrogram is computed in the model."""
        return {"clip": WaveformAugment(gain=self.cfg.audio_gain)}

    # ------------------------------------------------------------------ training
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        video, audio = batch["clip/video"], batch["clip/audio"]
        if self.cfg.av_score == "max_position":
            return self._max_position_losses(video, audio)
        feat = self.video(video)  # (B, C_v)
        v = self.video_head(feat).float()  # (B, D), L2
        a = self.audio_head(self.audio(audio)).float()  # (B, D), L2
        cfg = self.cfg
        kw = dict(tau=cfg.tau, in_batch_negatives=cfg.in_batch_negatives, gather=cfg.gather_negatives)
        with fp32(video.device):
            loss_v2a = info_nce(v, a, queue=None if self.audio_queue is None else self.audio_queue.queue, **kw)
            loss_a2v = info_nce(a, v, queue=None if self.video_queue is None else self.video_queue.queue, **kw)
        if self.video_queue is not None and self.audio_queue is not None:
            self.video_queue.stage(v)
            self.audio_queue.stage(a)
        loss = 0.5 * (loss_v2a + loss_a2v)
        out = {"loss": loss, "loss_v2a": loss_v2a.detach(), "loss_a2v": loss_a2v.detach()}
        out.update(diag_entries(**{"pair/loss_v2a": torch.stack([v, a]), "feat/video": feat.float()}))
        return out

    def _max_position_losses(self, video: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """``av_score: max_position``: the video head at every position of the backbone map
        ``(B, C_v, T', h, w)`` -> ``v (B, P, D)``; audio ``a (B, D)``; :func:`max_position_nce`."""
        fmap = self.video.feature_map(video)  # (B, C_v, T', h, w)
        v = head_at_positions(fmap, self.video_head)  # (B, P, D), L2
        a = self.audio_head(self.audio(audio)).float()  # (B, D), L2
        with fp32(video.device):
            loss_a2v, loss_v2a = max_position_nce(a, v, self.cfg.tau)
        loss = 0.5 * (loss_v2a + loss_a2v)
        out = {"loss": loss, "loss_v2a": loss_v2a.detach(), "loss_a2v": loss_a2v.detach()}
        v_clip = F.normalize(v.mean(dim=1), dim=1)  # for the diagnostics only
        out.update(diag_entries(**{"pair/loss_v2a": torch.stack([v_clip, a]),
                                   "feat/video": self.video.pool_map(fmap, video).float()}))  # as video_features
        return out

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """InfoNCE at constant scores, each direction: ``ln(B + K)`` (in-batch: ``B`` clips, all
        ranks' with gather; ``K`` = queue size) or ``ln(1 + K)`` without in-batch negatives."""
        cfg = self.cfg
        b = batch["clip/video"].shape[0] * (dist_info()[1] if cfg.gather_negatives else 1)
        c = info_nce_chance(b, cfg.queue_size, in_batch_negatives=cfg.in_batch_negatives)
        return {"loss_v2a": c, "loss_a2v": c}

    # ---------------------------------------------------------------- evaluation
    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """Pooled video backbone features ``(B, C_v)``."""
        return self.video(video).float()

    def video_feature_maps(self, video: torch.Tensor) -> list[torch.Tensor]:
        """The video backbone map ``[(B, C_v, T', h, w)]``."""
        return [self.video.feature_map(video)]

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Pooled audio backbone features ``(B, C_a)`` from a waveform ``(B, N)``."""
        return self.audio(audio).float()

    def joint_video(self, video: torch.Tensor) -> torch.Tensor:
        """The contrastive space: the video head on the pooled clip feature, L2 ``(B, D)``; with
        ``av_score: max_position`` the head at every position, averaged and L2-normalised."""
        if self.cfg.av_score == "max_position":
            v = head_at_positions(self.video.feature_map(video), self.video_head)  # (B, P, D)
            return F.normalize(v.mean(dim=1), dim=1)
        return F.normalize(self.video_head(self.video(video)).float(), dim=1)

    def joint_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """The audio head on the pooled audio feature, L2 ``(B, D)``."""
        return F.normalize(self.audio_head(self.audio(audio)).float(), dim=1)

    def localization_maps(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per feature-map frame: softmax over positions of the cosine between the audio embedding
        and the video head applied at each position -> ``(B, T', h, w)``
        (:func:`~glocal.methods.common.embedding_heat_maps`)."""
        return self.heat_maps_from([self.video.feature_map(video)], audio, video.shape[2])

    def heat_maps_from(self, maps: list[torch.Tensor], audio: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`localization_maps` from the backbone map ``maps[0]`` ``(B, C_v, T', h, w)``."""
        return embedding_heat_maps(maps[0], self.video_head, self.audio(audio), self.audio_head, self.cfg.tau, num_frames)
