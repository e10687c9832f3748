"""AVTS: audio-visual contrast with temporal self-supervision (methods.md §4, reconstruction).

Per video two clips ``a``, ``b`` (:class:`~glocal.data.samplers.SpeedDirectionSampler`): speed
class ``s`` (frame skip ``2**s``), direction ``d`` (reversed frame list), and their co-located
audio resampled by ``2**s`` and reversed with the video. Online encoders ``f_v`` (video) and
``f_a`` (audio) with MLP heads give L2 embeddings ``z``; EMA copies give keys ``k``; FIFO queues
``Q_v``, ``Q_a`` hold past keys (both clips, written in lockstep so row ``j`` of both queues is
one clip). With ``L(q, k+, Q)`` = :func:`~glocal.objectives.nn_augmented_nce` (``k+`` plus its
top-``nn_k`` queue neighbours as positives, the rest of ``Q`` as negatives)::

    L_vv = ½ [L(z_v^a, k_v^b, Q_v) + L(z_v^b, k_v^a, Q_v)]
    L_va = ¼ Σ_{c ∈ {a, b}} [L(z_v^c, k_a^c, Q_a) + L(z_a^c, k_v^c, Q_v)]
           (``va_keys: online``: ``z_a^c`` / ``z_v^c`` with gradients in place of ``k_a^c`` / ``k_v^c``;
           ``va_queue: false``: no queue rows, the other samples' keys as negatives;
           ``va_pairs: cross_clip``: the other clip's audio, ``k_a^{c'}`` / ``k_v^{c'}`` with c' ≠ c)
    L_pre = w_s (CE_speed^v + CE_speed^a) + w_d (CE_dir^v + CE_dir^a)
            + w_vv CE_ord^{vv} + w_aa CE_ord^{aa} + w_va CE_ord^{va}
    L = weight_vv L_vv + weight_va L_va + weight_pretext L_pre

Pretext heads act on the pooled backbone features; order heads on concatenated clip pairs
(:func:`~glocal.objectives.order_pair_batch`). Clips of different speed / direction stay
mutual positives (invariance) while the heads keep that information (equivariance).
After each step: EMA update of both key encoders, then the step's gathered keys enter the queues.
The keys, the V-V term and the queue writes are skipped when nothing reads them (V-V off, online
V-A keys without queue rows); terms of weight 0 and one-class heads are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Range, check_range
from ..data.config import DataConfig
from ..data.audio_transforms import WaveformAugment
from ..data.samplers import SpeedDirectionSampler
from ..errors import ConfigError
from ..models import MLPHead
from ..objectives import (
    cross_entropy_chance,
    nn_augmented_chance,
    nn_augmented_nce,
    order_pair_batch,
    speed_direction_labels,
)
from ..runtime.gather import dist_info
from .base import Method, diag_entries, fp32, num_outputs
from .common import (
    AudioEncoder,
    EncoderWithHead,
    MomentumEncoder,
    StagedQueue,
    VideoEncoderConfig,
    build_clip_encoder,
    clip_transform,
    embedding_heat_maps,
)
from .support_set import SupportSet

__all__ = ["AVTSConfig", "AVTS"]


def _swap_clips(x: Tensor) -> Tensor:
    """Rows of clips a then b ``(2B, D)`` -> clips b then a ``(2B, D)``."""
    b = x.shape[0] // 2
    return torch.cat([x[b:], x[:b]])


@dataclass
class AVTSConfig(VideoEncoderConfig):
    """AVTS knobs (every value ``[INF]``; video encoder fields inherited)."""

    name: Literal["avts"] = "avts"
    backbone: Literal["r3d", "r2plus1d", "resnet2d", "cnn2d"] = "r2plus1d"
    proj_hidden: int = 512  # contrastive MLP 512-512-128 per modality
    proj_bn: bool = False
    audio_encoder: Literal["resnet2d", "resnet1d"] = "resnet2d"
    audio_depth: Literal[18, 34, 50, 101] = 18
    audio_width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0
    logmel_preset: Literal["glcm", "avid", "avts"] = "avts"
    n_mels: int | None = None  # None: the preset's (avts: 128)
    #: audio per clip after the speed change (None: the clip's T / fps)
    audio_seconds: Annotated[float, Range(1e-2, 60.0)] | None = None
    audio_gain: Annotated[float, Range(0.0, 1.0)] = 0.1
    #: subtract each clip's per-bin noise floor (this quantile over time) from the log spectrogram
    #: (None: off; 0.2 for sparse sounds in steady background noise, see docs/real_parts.md)
    audio_floor_quantile: Annotated[float, Range(0.0, 1.0)] | None = None
    blur_p: Annotated[float, Range(0.0, 1.0)] = 0.0
    # sampling
    n_speeds: Annotated[int, Range(1, 8)] = 4  # frame skips 1, 2, 4, 8 (capped by the video length)
    reverse_p: Annotated[float, Range(0.0, 1.0)] = 0.5
    non_overlapping: bool = True  # redraw clip b so that the two spans do not overlap (order task)
    # contrast
    queue_size: Annotated[int, Range(1, 1 << 24)] = 65536
    momentum: Annotated[float, Range(0.0, 1.0)] = 0.999
    key_bn_train: bool = True  # key encoders' BatchNorm uses batch statistics (MoCo)
    shuffle_bn: bool = False  # MoCo's shuffling BN for both key encoders (no-op with one process)
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.1
    in_batch_negatives: bool = False  # also the other samples' keys (MoCo: queue only)
    #: keys of the V-A / A-V contrast: ``momentum`` (the EMA encoders' embeddings, no gradient; MoCo)
    #: or ``online`` (the online embeddings of the other modality, with gradients in both
    #: directions, as AVID and CLIP do; the queues still hold EMA keys). On the real-parts set
    #: neither choice stopped the V-A collapse that ``va_queue`` is about, nor led on val
    #: (docs/methods_results.md, "AVTS's V-A collapse")
    va_keys: Literal["momentum", "online"] = "momentum"
    #: the V-A / A-V terms also take the queues' keys as negatives (and neighbours). ``false``:
    #: in-batch keys only (needs ``in_batch_negatives``). Past keys of the other modality sit
    #: apart from the current ones, so while the in-batch keys barely differ (early training,
    #: hard data) the cheapest way down is to pull both modalities onto one point, away from the
    #: queue, and the V-A term collapses to chance (docs/methods_results.md, "AVTS's V-A collapse")
    va_queue: bool = True
    #: which audio a clip's video is contrasted with in the V-A / A-V terms: ``same_clip`` (its own
    #: co-located audio, resampled and reversed with it: the spec) or ``cross_clip`` (the other
    #: clip's audio of the same video: another time window, drawn with its own speed and
    #: direction). Co-located audio shares the clip's playback speed, which on the real-parts set
    #: is all the V-A term learned (docs/methods_results.md, "AVTS's V-A collapse"); across clips
    #: the speeds are independent, so only what the two windows share (the animal and its call)
    #: can match them. The order heads still see the co-located pairs
    va_pairs: Literal["same_clip", "cross_clip"] = "same_clip"
    gather_negatives: bool = False  # in-batch keys of every rank
    nn_k: Annotated[int, Range(0)] = 5  # queue neighbours per query (0: plain MoCo InfoNCE; <= queue_size)
    nn_positives: bool = True  # neighbours are extra positives (False: only removed from negatives)
    nn_anchor: Literal["key", "query"] = "key"  # whose neighbours: the positive key k+ or the query
    nn_queue: Literal["key", "query"] = "key"  # search the key modality's queue or the query's (aligned rows)
    nn_require_full_queue: bool = True  # no neighbours until the queue has been filled once
    # pretext
    speed_direction: Literal["separate", "joint"] = "separate"  # joint: one 2·n_speeds-way head
    order_va_sync: bool = False  # V-A order head gets a 3rd "synchronous" class
    #: order heads get an "overlapping spans" class (meant with non_overlapping: false, so that
    #: overlapping pairs are common; otherwise they keep the start-time label)
    order_overlap_class: bool = False
    pretext_hidden: Annotated[int, Range(0, 1 << 16)] = 512  # pretext MLP hidden width (0: linear classifiers)
    # weights
    weight_vv: Annotated[float, Range(0.0, 1e4)] = 1.0
    weight_va: Annotated[float, Range(0.0, 1e4)] = 1.0
    weight_pretext: Annotated[float, Range(0.0, 1e4)] = 1.0  # λ_t
    weight_speed: Annotated[float, Range(0.0, 1e4)] = 1.0  # also the joint speed-direction term
    weight_direction: Annotated[float, Range(0.0, 1e4)] = 1.0
    weight_order_vv: Annotated[float, Range(0.0, 1e4)] = 1.0
    weight_order_aa: Annotated[float, Range(0.0, 1e4)] = 1.0
    weight_order_va: Annotated[float, Range(0.0, 1e4)] = 1.0

    def validate(self) -> None:
        self.validate_encoder()
        check_range("method.nn_k", self.nn_k, 0, self.queue_size)
        if not self.va_queue and not self.in_batch_negatives:
            raise ConfigError("method.va_queue=false needs method.in_batch_negatives=true (the V-A terms would have no negatives)")
        if self.gather_negatives and not self.in_batch_negatives:
            raise ConfigError("method.gather_negatives=true needs method.in_batch_negatives=true (nothing to gather)")
        two_dirs = 0.0 < self.reverse_p < 1.0  # reverse_p 0 or 1: one direction, one class
        if self.speed_direction == "joint":  # one head over (speed, direction), weighted by weight_speed
            speed_trains, direction_trains = self.n_speeds > 1 or two_dirs, False
        else:
            speed_trains, direction_trains = self.n_speeds > 1, two_dirs
        heads = (self.weight_speed * speed_trains, self.weight_direction * direction_trains, self.weight_order_vv,
                 self.weight_order_aa, self.weight_order_va)
        if self.weight_vv + self.weight_va == 0 and (self.weight_pretext == 0 or not any(heads)):
            raise ConfigError("method.weight_vv and weight_va are 0 and no pretext head trains (weight_pretext, or "
                              "every head's weight, is 0; the speed head needs n_speeds > 1, the direction head "
                              "0 < reverse_p < 1): nothing to train")


def _upgrade_fill_count(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: a checkpoint from before the queues counted their own keys
    holds one ``enqueued`` count for both (they are always written together): give it to each."""
    old = state.pop(prefix + "enqueued", None)
    if old is not None:
        for name in ("video_queue", "audio_queue"):
            state.setdefault(f"{prefix}{name}.written", old.clone())


def _classifier(in_dim: int, hidden: int, classes: int) -> nn.Module:
    """``Linear`` (``hidden == 0``) or ``Linear-ReLU-Linear``: ``(N, in_dim) -> (N, classes)``."""
    return nn.Linear(in_dim, classes) if hidden == 0 else MLPHead(in_dim, hidden, classes)


class AVTS(Method):
    """Batch: ``{a,b}/video`` ``(B, 3, T, H, W)``, ``{a,b}/audio`` ``(B, N)``,
    ``target/{speed_a, speed_b, dir_a, dir_b, order_ab, overlap_ab}`` ``(B,)``.

    Terms: ``loss_vv``, ``loss_va``, ``loss_speed_{v,a}`` and ``loss_dir_{v,a}`` (or
    ``loss_speed_dir_{v,a}`` with ``speed_direction: joint``), ``loss_order_{vv,aa,va}``.
    Modules: ``video`` / ``audio`` (:class:`EncoderWithHead`), ``video_key`` / ``audio_key``
    (:class:`MomentumEncoder`), ``video_queue`` / ``audio_queue`` (:class:`SupportSet`: staged
    queues that count the keys written, so the neighbour switch needs no host sync), the pretext
    classifiers in ``heads``.
    """

    name = "avts"
    config_class = AVTSConfig
    modalities = ("video", "audio")
    momentum_pairs = (("video", "video_key"), ("audio", "audio_key"))  # EMA of both key encoders, then ...
    step_queues = ("video_queue", "audio_queue")  # ... the step's gathered keys enter the queues
    chance_hints = {"loss_va": "method.in_batch_negatives=true method.va_queue=false: the queues' past keys of the other "
                               "modality can pull both modalities onto one point (docs/methods_results.md)"}

    def active_chance_hints(self) -> dict[str, str]:
        """The queue hint only while the V-A terms use the queues (``va_queue: true``); without
        them a V-A term at chance has nothing shared to match: with ``va_pairs: cross_clip`` or
        a single speed there is no playback-speed cue left (docs/methods_results.md)."""
        cfg = self.cfg
        if cfg.va_queue:
            return dict(self.chance_hints)
        tries = [name for name, wanted in (("method.va_keys=online", cfg.va_keys != "online"),
                                           ("method.tau=0.07", cfg.tau > 0.07),
                                           ("method.weight_pretext=0.1", cfg.weight_pretext > 0.1),
                                           ("2 s clips (data.clip_frames) and audio (method.audio_seconds)",
                                            self.data.clip_frames / self.data.fps < 2.0))
                 if wanted]
        return {"loss_va": "more epochs first: in configs/real/avts.yaml it stays within 2 % of chance for the first 5-9 epochs "
                           "(one seed of an earlier recipe until epoch 12)"
                           + (f"; then {', '.join(tries)}" if tries else "")
                           + ". Without the playback-speed cue a V-A term can only match what a clip and its audio "
                             "share (docs/methods_results.md \"Fifth round\")"}

    def __init__(self, cfg: AVTSConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        venc = build_clip_encoder(cfg)
        aenc = AudioEncoder(cfg.audio_encoder, sample_rate=data.sample_rate, preset=cfg.logmel_preset, n_mels=cfg.n_mels,
                            depth=cfg.audio_depth, width_mult=cfg.audio_width_mult,
                            floor_quantile=cfg.audio_floor_quantile)
        self.video = EncoderWithHead(venc, venc.out_channels, cfg.proj_hidden, cfg.proj_dim, cfg.proj_bn)
        self.audio = EncoderWithHead(aenc, aenc.out_channels, cfg.proj_hidden, cfg.proj_dim, cfg.proj_bn)
        self.video_key = MomentumEncoder(self.video, cfg.momentum, bn_train=cfg.key_bn_train,
                                         shuffle_bn=cfg.shuffle_bn)
        self.audio_key = MomentumEncoder(self.audio, cfg.momentum, bn_train=cfg.key_bn_train,
                                         shuffle_bn=cfg.shuffle_bn)
        self.video_queue = SupportSet(cfg.queue_size, cfg.proj_dim)
        self.audio_queue = SupportSet(cfg.queue_size, cfg.proj_dim)
        self._register_load_state_dict_pre_hook(_upgrade_fill_count, with_module=True)
        cv, ca, h = venc.out_channels, aenc.out_channels, cfg.pretext_hidden
        heads: dict[str, nn.Module] = {}
        for mod, c in (("v", cv), ("a", ca)):
            if cfg.speed_direction == "joint":
                heads[f"speed_dir_{mod}"] = _classifier(c, h, 2 * cfg.n_speeds)
            else:
                heads[f"speed_{mod}"] = _classifier(c, h, cfg.n_speeds)
                heads[f"dir_{mod}"] = _classifier(c, h, 2)
        extra = int(cfg.order_overlap_class)
        heads["order_vv"] = _classifier(2 * cv, h, 2 + extra)
        heads["order_aa"] = _classifier(2 * ca, h, 2 + extra)
        heads["order_va"] = _classifier(cv + ca, h, (3 if cfg.order_va_sync else 2) + extra)
        self.heads = nn.ModuleDict(heads)

    # ---------------------------------------------------------------- data hooks
    def build_sampler(self) -> SpeedDirectionSampler:
        """Views ``"a"``, ``"b"``: ``data.clip_frames`` frames at ``data.fps`` times ``2**s``,
        optionally reversed, with their audio resampled / reversed alike; speed, direction and
        order targets."""
        cfg = self.cfg
        return SpeedDirectionSampler(
            num_frames=self.data.clip_frames, fps=self.data.fps, n_speeds=cfg.n_speeds, reverse_p=cfg.reverse_p,
            with_audio=True, non_overlapping=cfg.non_overlapping, audio_duration=cfg.audio_seconds,
        )

    def transforms(self) -> dict[str, Any]:
        """Temporally consistent crop / flip / jitter / grayscale (+ blur), drawn per clip."""
        return {"clip": clip_transform(self.data, blur_p=self.cfg.blur_p)}

    def audio_transforms(self) -> dict[str, Any]:
        """Waveform gain, after the dataset's speed change and reversal."""
        return {"clip": WaveformAugment(gain=self.cfg.audio_gain)}

    # ------------------------------------------------------------------ training
    def _neighbours_active(self) -> bool:
        """Whether queue neighbours join the positives this step (from the host copy of the fill
        count: no host sync)."""
        cfg = self.cfg
        return cfg.nn_k > 0 and not (cfg.nn_require_full_queue and not self.video_queue.full)

    def _neighbours(self, q: Tensor, k: Tensor, key_queue: StagedQueue, query_queue: StagedQueue) -> Tensor:
        """``(N, nn_k)`` rows of ``key_queue`` that join the positives of ``q``."""
        cfg = self.cfg
        anchor = k.detach() if cfg.nn_anchor == "key" else q.detach()
        bank = key_queue if cfg.nn_queue == "key" else query_queue  # rows aligned: same clip in both queues
        return bank.knn(anchor, cfg.nn_k)

    def _contrast(self, q: Tensor, k: Tensor, key_queue: StagedQueue, query_queue: StagedQueue,
                  use_nn: bool, use_queue: bool = True) -> Tensor:
        """:func:`nn_augmented_nce` of queries ``q`` against keys ``k`` ``(N, D)`` and ``key_queue``
        (with ``q``'s queue neighbours as extra positives when ``use_nn``; ``use_queue=False``:
        in-batch keys only, no queue rows and no neighbours)."""
        cfg = self.cfg
        if not use_queue:
            return nn_augmented_nce(q, k, key_queue.queue[:0], None, tau=cfg.tau,
                                    in_batch_negatives=cfg.in_batch_negatives, gather=cfg.gather_negatives)
        nn_idx = self._neighbours(q, k, key_queue, query_queue) if use_nn else None
        return nn_augmented_nce(q, k, key_queue.queue, nn_idx, tau=cfg.tau, nn_positives=cfg.nn_positives,
                                in_batch_negatives=cfg.in_batch_negatives, gather=cfg.gather_negatives)

    def _pretext(self, f_v: Tensor, f_a: Tensor, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Speed / direction / order cross-entropies from backbone features ``(2B, C)`` (clips a then b).
        Every head's term, weight 0 or not: each head stays in the graph, so DDP (without
        ``find_unused_parameters``) and the optimizer see the same parameters in every config."""
        b = f_v.shape[0] // 2
        speed = torch.cat([batch["target/speed_a"], batch["target/speed_b"]]).long()  # (2B,)
        back = torch.cat([batch["target/dir_a"], batch["target/dir_b"]]).long()
        order_ab = batch["target/order_ab"]
        overlap = batch["target/overlap_ab"] if self.cfg.order_overlap_class else None
        terms: dict[str, Tensor] = {}
        for mod, f in (("v", f_v), ("a", f_a)):
            if self.cfg.speed_direction == "joint":
                joint = speed_direction_labels(speed, back)
                terms[f"speed_dir_{mod}"] = F.cross_entropy(self.heads[f"speed_dir_{mod}"](f).float(), joint)
            else:
                terms[f"speed_{mod}"] = F.cross_entropy(self.heads[f"speed_{mod}"](f).float(), speed)
                terms[f"dir_{mod}"] = F.cross_entropy(self.heads[f"dir_{mod}"](f).float(), back)
        for name, first, second, sync in (("vv", f_v, f_v, False), ("aa", f_a, f_a, False),
                                          ("va", f_v, f_a, self.cfg.order_va_sync)):
            pairs, labels = order_pair_batch(first[:b], first[b:], second[:b], second[b:], order_ab, sync=sync,
                                             overlap=overlap)
            terms[f"order_{name}"] = F.cross_entropy(self.heads[f"order_{name}"](pairs).float(), labels)
        return terms

    def _uses_keys(self) -> bool:
        """Whether a term reads the EMA key encoders or the queues: V-V (``weight_vv > 0``), or the
        V-A terms with ``va_keys: momentum`` or with queue rows. Otherwise (``configs/real/avts.yaml``)
        neither the keys nor the V-V term are computed and the queues stay empty: the same
        gradients (V-V adds no parameter to the graph that V-A lacks), one forward of each encoder
        less per step (``benchmarks/method_step.py``)."""
        cfg = self.cfg
        return cfg.weight_vv > 0 or cfg.va_keys == "momentum" or cfg.va_queue

    def _pretext_weights(self) -> dict[str, float]:
        """Weight of each pretext head's term inside ``L_pre`` (every head, 0 included)."""
        cfg = self.cfg
        w = {"speed_v": cfg.weight_speed, "speed_a": cfg.weight_speed, "speed_dir_v": cfg.weight_speed,
             "speed_dir_a": cfg.weight_speed, "dir_v": cfg.weight_direction, "dir_a": cfg.weight_direction,
             "order_vv": cfg.weight_order_vv, "order_aa": cfg.weight_order_aa, "order_va": cfg.weight_order_va}
        return {name: w[name] for name in self.heads}

    def term_weights(self) -> dict[str, float]:
        """The effective weight of every term inside ``loss``: ``weight_vv`` / ``weight_va``, and
        ``weight_pretext`` x the head's own weight for each pretext head, 0 for a head of one class
        (identically 0 after a few steps: a speed head with ``n_speeds: 1``, a direction head with
        ``reverse_p`` 0 or 1, a joint speed-direction head with both). The shared mechanism
        (:meth:`~glocal.methods.Method.trained_loss_chance`) drops the chance level of a weight-0
        term; AVTS also leaves such terms out of its outputs (:meth:`_reported`)."""
        cfg = self.cfg
        one_speed, one_dir = cfg.n_speeds == 1, cfg.reverse_p in (0.0, 1.0)
        one_class = {"speed_v": one_speed, "speed_a": one_speed, "dir_v": one_dir, "dir_a": one_dir,
                     "speed_dir_v": one_speed and one_dir, "speed_dir_a": one_speed and one_dir}
        out = {"loss_vv": cfg.weight_vv, "loss_va": cfg.weight_va}
        out.update({f"loss_{name}": 0.0 if one_class.get(name, False) else cfg.weight_pretext * w
                    for name, w in self._pretext_weights().items()})
        return out

    def _reported(self) -> set[str]:
        """Terms that train something (:meth:`term_weights` > 0), the ones logged and checked
        against chance. The others are computed at weight 0 (so their parameters stay in the
        graph) but not reported, so no warning says that a switched-off term sits at chance."""
        return {name for name, w in self.term_weights().items() if w > 0}

    def training_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The weighted sum of the terms; only :meth:`_reported` terms are returned beside ``loss``.
        The keys and the V-V term are computed only when used (:meth:`_uses_keys`)."""
        cfg = self.cfg
        video = torch.cat([batch["a/video"], batch["b/video"]])  # (2B, 3, T, H, W): clips a then b
        audio = torch.cat([batch["a/audio"], batch["b/audio"]])  # (2B, N)
        b = batch["a/video"].shape[0]
        f_v, z_v = self.video(video)  # (2B, C_v), (2B, D)
        f_a, z_a = self.audio(audio)
        z_v, z_a = z_v.float(), z_a.float()
        keys = self._uses_keys()
        if keys:
            k_v = self.video_key(video)[1].float()  # no gradients
            k_a = self.audio_key(audio)[1].float()
        qv, qa = self.video_queue, self.audio_queue
        nn = self._neighbours_active()
        terms: dict[str, Tensor] = {}
        diag: dict[str, Tensor] = {"feat/video": f_v[:b].float()}
        with fp32(video.device):
            if keys:
                # V-V: clip a's query vs clip b's key and vice versa; same-video keys never negatives
                terms["loss_vv"] = 0.5 * (self._contrast(z_v[:b], k_v[b:], qv, qv, nn)
                                          + self._contrast(z_v[b:], k_v[:b], qv, qv, nn))
                diag["pair/loss_vv"] = torch.stack([z_v[:b], k_v[b:]])
            # V-A keys: the EMA embeddings, or the online ones (gradients reach both encoders)
            kv_va, ka_va = (z_v, z_a) if cfg.va_keys == "online" else (k_v, k_a)
            # V-A / A-V: each clip against its own (co-located, equally transformed) audio, or
            # with va_pairs=cross_clip against the other clip's (a's video with b's audio, ...)
            if cfg.va_pairs == "cross_clip":
                ka_va, kv_va = _swap_clips(ka_va), _swap_clips(kv_va)
            terms["loss_va"] = 0.25 * sum(
                self._contrast(z_v[s], ka_va[s], qa, qv, nn, cfg.va_queue)
                + self._contrast(z_a[s], kv_va[s], qv, qa, nn, cfg.va_queue)
                for s in (slice(0, b), slice(b, 2 * b))
            )
            diag["pair/loss_va"] = torch.stack([z_v, ka_va])
            pre = self._pretext(f_v.float(), f_a.float(), batch)
        w = self._pretext_weights()
        loss_pre = sum(w[name] * value for name, value in pre.items())
        if keys:
            self.video_queue.stage(k_v)  # rows aligned across the two queues: clip a keys, then clip b keys
            self.audio_queue.stage(k_a)
        total = cfg.weight_va * terms["loss_va"]
        if keys:  # summed in the order w_vv L_vv + w_va L_va + w_pre L_pre, as without the skip
            total = cfg.weight_vv * terms["loss_vv"] + total
        total = total + cfg.weight_pretext * loss_pre
        terms.update({f"loss_{name}": value for name, value in pre.items()})
        reported = self._reported()
        out = {"loss": total, **{k: v.detach() for k, v in terms.items() if k in reported}}
        out.update(diag_entries(**diag))
        return out

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Constant-score levels of the active terms: V-V / V-A ``ln((N_c + K) / (1 + m))``
        (:func:`nn_augmented_chance`; ``m`` = active queue neighbours), each pretext head
        ``ln(#classes)``. No host sync."""
        cfg = self.cfg
        b = batch["a/video"].shape[0]
        n_keys = b * (dist_info()[1] if cfg.gather_negatives and cfg.in_batch_negatives else 1)
        m = cfg.nn_k if self._neighbours_active() else 0
        c = nn_augmented_chance(n_keys, cfg.queue_size, m, nn_positives=cfg.nn_positives,
                                in_batch_negatives=cfg.in_batch_negatives)
        c_va = c if cfg.va_queue else nn_augmented_chance(n_keys, 0, 0, in_batch_negatives=True)
        out = {"loss_vv": c, "loss_va": c_va}
        out.update({f"loss_{name}": cross_entropy_chance(num_outputs(head)) for name, head in self.heads.items()})
        reported = self._reported()
        return {name: value for name, value in out.items() if name in reported}

    # ---------------------------------------------------------------- evaluation
    def video_features(self, video: Tensor) -> Tensor:
        """Pooled online video backbone features ``(B, C_v)``."""
        return self.video.encoder(video).float()

    def video_feature_maps(self, video: Tensor) -> list[Tensor]:
        """The online video backbone map ``[(B, C_v, T', h, w)]``."""
        return [self.video.encoder.feature_map(video)]

    def audio_features(self, audio: Tensor) -> Tensor:
        """Pooled online audio backbone features ``(B, C_a)`` from a waveform ``(B, N)``."""
        return self.audio.encoder(audio).float()

    def joint_video(self, video: Tensor) -> Tensor:
        """The online video embedding ``z_v`` the V-A contrast uses, L2 ``(B, D)``."""
        return F.normalize(self.video(video)[1].float(), dim=1)

    def joint_audio(self, audio: Tensor) -> Tensor:
        """The online audio embedding ``z_a`` of the V-A contrast, L2 ``(B, D)``."""
        return F.normalize(self.audio(audio)[1].float(), dim=1)

    def localization_maps(self, video: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Per feature-map frame: softmax over positions of the cosine between the online audio
        embedding and the online video head applied at each position -> ``(B, T', h, w)``
        (:func:`~glocal.methods.common.embedding_heat_maps`)."""
        return self.heat_maps_from([self.video.encoder.feature_map(video)], audio, video.shape[2])

    def heat_maps_from(self, maps: list[Tensor], audio: Tensor, num_frames: int) -> tuple[Tensor, Tensor]:
        """:meth:`localization_maps` from the online backbone map ``maps[0]`` ``(B, C_v, T', h, w)``."""
        return embedding_heat_maps(maps[0], self.video.head, self.audio.encoder(audio), self.audio.head, self.cfg.tau,
                                   num_frames)
