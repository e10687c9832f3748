"""Pieces shared by the instance-discrimination recipes (SimCLR, MoCo, AVID, VCLR; later CtrlAug, AVTS).

Each lives here once and the method files only compose them:

- :class:`VideoEncoderConfig` — the config fields of a pooled video encoder + projection head
  (a config dataclass inherits them), and :func:`build_clip_encoder` / :class:`ClipEncoder`:
  R3D / R(2+1)D clips or a frame-wise 2-D ResNet with TSN consensus, pooled to ``(B, C)``.
- :class:`EncoderWithHead` — encoder + MLP projection head, returning features and L2 embeddings.
- :class:`AudioEncoder` — waveform -> log-mel (fp32) -> per-bin BatchNorm -> 1-D or 2-D ResNet
  -> time/frequency-pooled ``(B, C)``.
- :class:`MomentumEncoder` — an EMA copy of a module (no gradients; BatchNorm in train or eval
  mode; optional shuffle-BN across ranks), updated with :func:`~glocal.objectives.momentum_update`.
- :class:`StagedQueue` — a :class:`~glocal.objectives.FeatureQueue` whose keys are gathered from
  every rank during the forward and enqueued in ``on_step_end`` (after the optimizer step, so the
  queue a loss saw is never modified before its backward, and micro-batches of a
  gradient-accumulation step all see the same queue).
- :func:`clip_transform` — the data config's crop/flip/jitter/grayscale plus blur and per-frame mode.
- :class:`BackgroundSwapConfig` / :class:`ClipPairMethod` — the two-clip data hooks (with the
  optional background swap of the second clip), online encoder + head and ``video_features`` of
  the clip-vs-clip recipes.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..config import Range, check_choice, check_range
from ..data.config import DataConfig
from ..data.audio_frontend import build_logmel
from ..data.background_swap import swap_backgrounds
from ..data.logmel import subtract_noise_floor
from ..data.samplers import PairSampler
from ..data.build import train_clip_transform
from ..models import MLPHead, ResNet1DAudio, build_video_backbone
from ..models.pooling import SPATIAL_POOLS, SpatialPool, pool_positions
from ..models.resnet2d import ResNet2D, TSNConsensus
from ..models.cnn2d import CNN2D_DEPTHS, PlainCNN2D
from ..objectives import FeatureQueue, momentum_update
from ..runtime.gather import all_gather_no_grad, dist_info, shuffled_forward
from .base import Method, fp32

__all__ = [
    "VIDEO_ENCODERS",
    "AUDIO_ENCODERS",
    "VideoEncoderConfig",
    "ClipEncoder",
    "build_clip_encoder",
    "residual_frames",
    "head_at_positions",
    "embedding_heat_maps",
    "EncoderWithHead",
    "AudioEncoder",
    "MomentumEncoder",
    "StagedQueue",
    "clip_transform",
    "BackgroundSwapConfig",
    "ClipPairMethod",
]

VIDEO_ENCODERS = ("r3d", "r2plus1d", "resnet2d", "cnn2d")
AUDIO_ENCODERS = ("resnet2d", "resnet1d")


@dataclass
class VideoEncoderConfig:
    """Video encoder and projection-head fields shared by the method configs (inherit them)."""

    #: cnn2d: a plain VGG-style CNN per frame that keeps small frames at full resolution for its
    #: first convolutions (:mod:`glocal.models.cnn2d`; with labels it learns real-parts classes
    #: far faster than the ResNets, docs/methods_results.md "What the encoders learn with labels")
    backbone: Literal["r3d", "r2plus1d", "resnet2d", "cnn2d"] = "r3d"
    depth: int = 18  # r3d / r2plus1d: 10, 18, 34; resnet2d: 18, 34, 50, 101; cnn2d: 6, 8 conv layers
    width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0  # every backbone width times this
    temporal_stride: bool = False  # 3-D backbones: stride 2 in time in stages 3-5 (frame-wise ones: unused)
    proj_hidden: Annotated[int, Range(1, 1 << 16)] = 2048  # MLP head hidden width
    proj_dim: Annotated[int, Range(1, 1 << 16)] = 128  # embedding dimension (L2-normalised)
    proj_bn: bool = True  # BatchNorm in the MLP head (SimCLR / MoCo v2 style: False for MoCo v2)
    video_input: Literal["rgb", "residual"] = "rgb"  # residual: the backbone sees frame differences (T-1 frames)
    #: how the backbone map becomes the clip feature, in training and in ``video_features``: mean
    #: over positions, or each channel's max over positions (keeps an object that covers a few
    #: positions instead of averaging it into the background; resnet2d: per frame, then consensus),
    #: their sum, ``meanmax`` (the global mean-plus-max pooling of PANNs, Kong et al. 2020), or
    #: ``motion``: the mean weighted by each position's share of the clip's motion energy (what
    #: moves makes the feature, a static or slowly panning background does not;
    #: :mod:`glocal.models.pooling`)
    spatial_pool: SpatialPool = "mean"
    #: spatial stride of the backbone's last stage: 2 (the ResNet layout) or 1, which doubles the
    #: map's side (r3d / r2plus1d at 64 px: 4x4 -> 8x8; resnet2d: 2x2 -> 4x4) so that a small
    #: object covers several positions, at the cost of the last stage's compute (x 4)
    last_stride: Literal[1, 2] = 2

    def validate_encoder(self) -> None:
        """The depths the backbone has (called from the method config's ``validate``)."""
        allowed = {"resnet2d": (18, 34, 50, 101), "cnn2d": tuple(CNN2D_DEPTHS)}.get(self.backbone, (10, 18, 34))
        check_choice("method.depth", self.depth, allowed)


def residual_frames(video: Tensor) -> Tensor:
    """Frame differences ``x[:, :, t + 1] - x[:, :, t]``: ``(B, 3, T, H, W) -> (B, 3, T - 1, H, W)``.

    Whatever stays still (a static background) is zero in them; what moves keeps its edges and
    texture (residual-frame input, Tao et al. 2020)."""
    if video.shape[2] < 2:
        raise ValueError(f"residual frames need a clip of >= 2 frames, got {tuple(video.shape)}")
    return video[:, :, 1:] - video[:, :, :-1]


class ClipEncoder(nn.Module):
    """Backbone + global pooling: ``forward(video (B, 3, T, H, W)) -> (B, C)``.

    3-D backbones: mean (``pool="max"``: max; ``"meanmax"``: mean + max; ``"motion"``: motion-weighted
    mean, :func:`~glocal.models.pooling.pool_positions`) over ``(T', H', W')``.
    ``resnet2d``: every frame through the 2-D ResNet, pooled over positions per frame, then TSN
    consensus over the ``T`` frames (``mean`` equals the mean over all positions and frames).
    ``out_channels`` = ``C``.
    """

    def __init__(self, trunk: nn.Module, frame_wise: bool, consensus: Literal["mean", "max"] = "mean",
                 residual: bool = False, pool: SpatialPool = "mean") -> None:
        super().__init__()
        check_choice("spatial pool", pool, SPATIAL_POOLS)
        self.trunk = trunk
        self.pool = pool
        self.residual = residual
        self.frame_wise = frame_wise
        self.consensus = TSNConsensus(consensus)
        self.out_channels: int = int(trunk.out_channels)  # type: ignore[arg-type]

    def feature_map(self, video: Tensor) -> Tensor:
        """The backbone map ``(B, C, T', H', W')`` before pooling (frame-wise: ``T' = T``, or
        ``T - 1`` with residual input)."""
        return self.trunk(self.backbone_input(video))

    def backbone_input(self, video: Tensor) -> Tensor:
        """What the trunk sees: the clip ``(B, 3, T, H, W)``, or its :func:`residual_frames`."""
        return residual_frames(video) if self.residual else video

    def forward(self, video: Tensor) -> Tensor:
        return self.pool_map(self.feature_map(video), video)

    def pool_map(self, fmap: Tensor, video: Tensor) -> Tensor:
        """This encoder's pooling of its map ``(B, C, T', H', W')`` of ``video`` -> ``(B, C)`` (for
        methods that take the map first, e.g. to read its cells too, and pool it afterwards)."""
        if self.frame_wise:
            per_frame = pool_positions(fmap, self.pool, (3, 4), video)  # (B, C, T)
            return self.consensus(per_frame.transpose(1, 2))  # (B, T, C) -> (B, C)
        return pool_positions(fmap, self.pool, (2, 3, 4), video)


def build_clip_encoder(cfg: VideoEncoderConfig, consensus: Literal["mean", "max"] = "mean") -> ClipEncoder:
    """The pooled video encoder named by ``cfg.backbone`` / ``depth`` / ``width_mult``."""
    if cfg.backbone in ("resnet2d", "cnn2d"):
        frames = ResNet2D if cfg.backbone == "resnet2d" else PlainCNN2D
        return ClipEncoder(frames(depth=cfg.depth, width_mult=cfg.width_mult, last_stride=cfg.last_stride),
                           frame_wise=True, consensus=consensus,
                           residual=cfg.video_input == "residual", pool=cfg.spatial_pool)
    trunk = build_video_backbone(cfg.backbone, depth=cfg.depth, width_mult=cfg.width_mult,
                                 temporal_stride=cfg.temporal_stride, last_stride=cfg.last_stride)
    return ClipEncoder(trunk, frame_wise=False, residual=cfg.video_input == "residual", pool=cfg.spatial_pool)


@contextlib.contextmanager
def batchnorm_eval(*modules: nn.Module) -> Iterator[None]:
    """Run ``modules``' BatchNorm layers on their running statistics inside the block (restored
    after). For heads trained on pooled features and applied elsewhere (per position, or to a
    batch of one during BatchNorm re-estimation): their batch statistics would not be the ones
    they were trained with, and would overwrite the running ones."""
    norms = [m for mod in modules for m in mod.modules() if isinstance(m, _BatchNorm)]
    modes = [m.training for m in norms]
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(norms, modes):
            m.train(mode)


def head_at_positions(fmap: Tensor, head: nn.Module) -> Tensor:
    """A head trained on pooled features, applied at every position of a backbone map:
    ``(B, C, T', h, w) -> (B, T'·h·w, D)`` (positions in ``(t, y, x)`` order), fp32. One head
    pass over all ``B·T'·h·w`` rows, so a BatchNorm in the head sees them all."""
    b, c = fmap.shape[:2]
    rows = fmap.flatten(2).transpose(1, 2).reshape(-1, c)  # (B*P, C)
    return head(rows).float().reshape(b, rows.shape[0] // b, -1)


def embedding_heat_maps(fmap: Tensor, video_head: nn.Module, audio_feat: Tensor, audio_head: nn.Module,
                        tau: float, clip_frames: int) -> tuple[Tensor, Tensor]:
    """Sound-source heat maps of a clip-level audio-visual model (AVID, AVTS).

    The video projection head (trained on pooled features) is applied at every position of the
    backbone's feature map, and each frame's map is a softmax over positions of the cosine with
    the clip's audio embedding (as GLCM's attention and "Objects that Sound"):
    ``M[b, t, p] = softmax_p(<a_b, v_{b,t,p}> / tau)``, ``v = video_head(fmap[b, :, t, p])``,
    ``a = audio_head(audio_feat)`` (both L2). Both heads run on their BatchNorm running
    statistics (:func:`batchnorm_eval`), also in train mode (BatchNorm re-estimation).

    Args:
        fmap: backbone output ``(B, C, T', h, w)``.
        video_head: ``(N, C) -> (N, D)`` L2-normalised projection.
        audio_feat: pooled audio features ``(B, C_a)``.
        audio_head: ``(B, C_a) -> (B, D)`` L2-normalised projection.
        tau: softmax temperature (the method's contrastive ``tau``).
        clip_frames: ``T`` of the input clip, to place each map.

    Returns:
        maps ``(B, T', h, w)`` (each sums to 1) and the clip frame of each map ``(T',)``: the
        centre of the frames it covers.
    """
    b, c, t, h, w = fmap.shape
    with batchnorm_eval(video_head, audio_head):
        v = head_at_positions(fmap.float(), video_head).reshape(b, t, h * w, -1)  # (B, T', P, D)
        a = audio_head(audio_feat).float()  # (B, D)
    scores = torch.einsum("btpd,bd->btp", v, a) / tau
    maps = scores.softmax(dim=2).reshape(b, t, h, w)
    span = clip_frames / t
    frames = (torch.arange(t, dtype=torch.float64) * span + (span - 1) / 2).round().long().clamp(0, clip_frames - 1)
    return maps, frames


class EncoderWithHead(nn.Module):
    """``encoder`` + :class:`~glocal.models.MLPHead`: ``forward(x) -> (features (B, C),
    embeddings (B, proj_dim), L2-normalised)``."""

    def __init__(self, encoder: nn.Module, in_dim: int, hidden: int, out_dim: int, bn: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = MLPHead(in_dim, hidden, out_dim, bn=bn, l2=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.encoder(x)
        return feats, self.head(feats)


class AudioEncoder(nn.Module):
    """Waveform -> log-mel -> per-bin normalisation -> ResNet -> pooled ``(B, C)``.

    Args:
        kind: ``"resnet2d"`` (2-D ResNet over the ``(F, S)`` spectrogram image, one input
            channel; AVID / AVTS) or ``"resnet1d"`` (GLCM's 1-D trunk over time, bins as channels).
        sample_rate: the dataset's audio rate (the preset adapts its window / hop to it).
        preset, n_mels: :func:`~glocal.data.audio_frontend.build_logmel` arguments (``avid``
            with ``n_mels=None``: 257-bin linear dB spectrogram).
        depth, width_mult: the ResNet size (``resnet1d`` ignores ``depth``: ResNet-18 layout).
        floor_quantile: when set, each clip's per-bin noise floor (that quantile over time) is
            subtracted from the log spectrogram before normalisation
            (:func:`~glocal.data.logmel.subtract_noise_floor`): steady background noise maps to ~0.

    The spectrogram is computed in fp32 (autocast off) and normalised per bin by a
    ``BatchNorm1d(affine=False)`` (running dataset statistics, AVID's per-bin z-normalisation).
    ``forward(wave (B, N)) -> (B, out_channels)``; :meth:`feature_map` keeps the dense output.
    """

    def __init__(self, kind: str = "resnet2d", *, sample_rate: int, preset: str = "avid",
                 n_mels: int | None = None, depth: int = 18, width_mult: float = 1.0,
                 floor_quantile: float | None = None) -> None:
        super().__init__()
        check_choice("audio encoder", kind, AUDIO_ENCODERS)
        self.kind = kind
        self.floor_quantile = floor_quantile
        self.frontend = build_logmel(preset, sample_rate, n_mels=n_mels)
        bins = int(self.frontend.n_bins)
        self.norm = nn.BatchNorm1d(bins, affine=False)
        self.trunk: nn.Module
        if kind == "resnet2d":
            self.trunk = ResNet2D(depth=depth, width_mult=width_mult, in_channels=1)
        else:
            self.trunk = ResNet1DAudio(in_channels=bins, width_mult=width_mult)
        self.out_channels: int = int(self.trunk.out_channels)  # type: ignore[arg-type]

    def spectrogram(self, wave: Tensor) -> Tensor:
        """``(B, N)`` waveform -> normalised ``(B, F, S)`` spectrogram (fp32)."""
        with fp32(wave.device):
            spec = self.frontend(wave.float())
            if self.floor_quantile is not None:
                spec = subtract_noise_floor(spec, self.floor_quantile)
            return self.norm(spec)

    def feature_map(self, wave: Tensor) -> Tensor:
        """Dense trunk output: ``(B, C, 1, F', S')`` (resnet2d) or ``(B, C, S)`` (resnet1d)."""
        spec = self.spectrogram(wave)
        if self.kind == "resnet2d":
            spec = spec[:, None, None]  # (B, 1, 1, F, S): one "frame" of one channel
        return self.trunk(spec.to(memory_format=torch.contiguous_format))

    def forward(self, wave: Tensor) -> Tensor:
        fmap = self.feature_map(wave)
        return fmap.flatten(2).mean(dim=2)


class MomentumEncoder(nn.Module):
    """An exponential-moving-average copy of ``online`` (MoCo / VCLR / AVTS key encoder).

    The copy has no gradients (``requires_grad=False``, forward under ``no_grad``). Mode: always
    eval, except its BatchNorm layers follow the method's train mode when ``bn_train`` (MoCo and
    the VCLR release: batch statistics for keys). :meth:`update` applies
    ``θ_k <- m θ_k + (1 - m) θ_q`` and copies buffers (BN running statistics) from ``online``.

    ``shuffle_bn`` (MoCo's shuffling BN): under ``torch.distributed`` with more than one rank,
    each forward in train mode runs the copy on a random cross-rank shard of the global key batch
    and returns this rank's rows in their original order
    (:func:`~glocal.runtime.gather.shuffled_forward`), so the key encoder's BatchNorm
    statistics are not those of the samples this rank's query encoder sees. It is a no-op (no
    communication, no random draw) with one process — BatchNorm already normalises over the
    whole batch there —, in eval mode, with ``bn_train=False`` (running statistics), and when
    every BatchNorm of the copy is synchronised (``train.sync_bn``: global statistics, which no
    permutation changes). :attr:`shuffles` says whether the next forward shuffles.
    """

    def __init__(self, online: nn.Module, momentum: float = 0.999, bn_train: bool = True,
                 shuffle_bn: bool = False) -> None:
        super().__init__()
        check_range("momentum", momentum, 0.0, 1.0)
        self.module = copy.deepcopy(online)
        self.module.requires_grad_(False)
        self.momentum = float(momentum)
        self.bn_train = bool(bn_train)
        self.shuffle_bn = bool(shuffle_bn)
        self.train(online.training)

    @property
    def shuffles(self) -> bool:
        """Whether a forward now uses shuffle-BN: ``shuffle_bn`` on, more than one rank, and the
        copy has a BatchNorm layer on batch statistics that is not synchronised across ranks."""
        if not (self.shuffle_bn and self.training and self.bn_train) or dist_info()[1] == 1:
            return False
        from ..runtime.distributed import SyncBatchNorm  # lazy: glocal.train imports the methods

        return any(isinstance(m, _BatchNorm) and m.training and not isinstance(m, (SyncBatchNorm, nn.SyncBatchNorm))
                   for m in self.module.modules())

    def train(self, mode: bool = True) -> "MomentumEncoder":
        self.training = mode
        self.module.train(False)
        if mode and self.bn_train:
            for m in self.module.modules():
                if isinstance(m, _BatchNorm):
                    m.train(True)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(self.module, *args, **kwargs)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` under ``no_grad``, with shuffle-BN when :attr:`shuffles`.

        ``fn`` is the copy or a part of it (e.g. ``self.module.encoder``); with shuffle-BN the
        call must be ``fn(batch_tensor)`` and every output tensor must have the batch's rows.
        """
        with torch.no_grad():
            if not self.shuffles:
                return fn(*args, **kwargs)
            if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
                raise TypeError("MomentumEncoder with shuffle_bn takes exactly one batch tensor")
            return shuffled_forward(fn, args[0])

    @torch.no_grad()
    def update(self, online: nn.Module) -> None:
        """One EMA step towards ``online`` (same architecture as the copy)."""
        momentum_update(online, self.module, self.momentum)


class StagedQueue(FeatureQueue):
    """A :class:`FeatureQueue` that collects keys during the step and enqueues them at its end.

    :meth:`stage` gathers ``keys`` from every rank (detached, rank order) so every rank's queue
    stays identical; :meth:`flush` (call from ``on_step_end``) enqueues everything staged since
    the last flush, in staging order. Staged keys are not part of the state dict.
    """

    def __init__(self, size: int, dim: int, **kwargs: Any) -> None:
        super().__init__(size, dim, **kwargs)
        self._staged: list[Tensor] = []

    @torch.no_grad()
    def stage(self, keys: Tensor) -> None:
        """Remember ``keys`` ``(N, D)`` of this rank (gathered to ``(W·N, D)``) for :meth:`flush`."""
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"stage expects keys of shape (N, {self.dim}); got {tuple(keys.shape)}")
        self._staged.append(all_gather_no_grad(keys.float()))

    @property
    def num_staged(self) -> int:
        """Keys waiting for :meth:`flush`."""
        return sum(k.shape[0] for k in self._staged)

    @torch.no_grad()
    def flush(self) -> None:
        """Enqueue the staged keys (FIFO) and forget them."""
        for keys in self._staged:
            self.enqueue(keys)
        self._staged.clear()


#: the training clip transform of the data config (defined with the data layer)
clip_transform = train_clip_transform


@dataclass
class BackgroundSwapConfig:
    """Config fields of the background swap of :class:`ClipPairMethod`'s second clip (a config
    dataclass inherits them; :mod:`glocal.data.background_swap`; measured in docs/methods_results.md)."""

    #: share of second clips ``b`` whose static background is replaced by another video's, so the
    #: positive pair cannot be matched by background (0: off; it did not help SimCLR on real parts)
    background_swap_p: Annotated[float, Range(0.0, 1.0)] = 0.0
    #: share of the frame kept as the moving foreground (cover the moving objects)
    background_swap_area: Annotated[float, Range(0.01, 1.0)] = 0.4


class ClipPairMethod(Method):
    """Base of the clip-vs-clip recipes (SimCLR, MoCo): two clips ``"a"``, ``"b"`` of one video
    (independent random starts, independent temporally consistent augmentations), an online
    :class:`EncoderWithHead` ``self.online`` built from the :class:`VideoEncoderConfig` fields,
    and ``video_features`` = the pooled online backbone (before the head). With
    ``background_swap_p > 0`` (:class:`BackgroundSwapConfig`) :meth:`pair` swaps the static
    background of that share of the ``b`` clips in training mode."""

    modalities = ("video",)

    def __init__(self, cfg: Any, data: DataConfig) -> None:
        super().__init__(cfg, data)
        encoder = build_clip_encoder(cfg)
        self.online = EncoderWithHead(encoder, encoder.out_channels, cfg.proj_hidden, cfg.proj_dim, cfg.proj_bn)

    def build_sampler(self) -> PairSampler:
        """Views ``"a"``, ``"b"``: ``data.clip_frames`` frames at ``data.fps`` each, no audio."""
        return PairSampler(self.data.clip_frames, self.data.fps, with_audio=False)

    def transforms(self) -> dict[str, Any]:
        """One temporally consistent crop / flip / jitter / grayscale (+ blur) per clip."""
        return {"clip": clip_transform(self.data, blur_p=self.cfg.blur_p)}

    def pair(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """The two clips ``(B, 3, T, H, W)`` of a batch; in training mode a share
        ``background_swap_p`` of the ``b`` clips (drawn with the global CPU generator, which
        checkpoints keep) gets the next clip's static background
        (:func:`~glocal.data.background_swap.swap_backgrounds`)."""
        a, b = batch["a/video"], batch["b/video"]
        p = self.cfg.background_swap_p
        if self.training and p > 0:
            b = swap_backgrounds(b, self.cfg.background_swap_area, torch.rand(b.shape[0]) < p)
        return a, b

    def video_features(self, video: Tensor) -> Tensor:
        """Pooled online backbone features ``(B, C)``."""
        return self.online.encoder(video).float()

    def video_feature_maps(self, video: Tensor) -> list[Tensor]:
        """The online backbone map ``[(B, C, T', h, w)]``."""
        return [self.online.encoder.feature_map(video)]
