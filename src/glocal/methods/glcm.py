"""GLCM: global + local cross-modal (video ↔ audio) contrast (methods.md §1).

One clip of ``T`` frames feeds two video pathways: the slow/global one sees every
``slow_stride``-th frame, the fast/local one all frames. One shared 1-D audio trunk over log-mel
frames has two 1×1 heads (global, local).

- Global loss (spatially local, temporally global): MIL-NCE between the time-pooled audio vector
  and the ``h·w`` positions of the time-pooled slow map.
- AV attention: softmax over positions of the same video's audio·slow-map scores — the
  sound-source localisation map — pools the fast map spatially.
- Local loss (spatially global, temporally local): MIL-NCE between each attention-pooled fast
  step and the ``r`` audio steps aligned with it.

``release_exact=True`` reproduces the released code (raw dot products: no L2 norm, tau = 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import nn

from ..config import Range
from ..data.config import DataConfig
from ..data.audio_frontend import build_logmel
from ..data.audio_transforms import WaveformAugment
from ..data.build import default_transforms
from ..data.samplers import ContiguousClipSampler
from ..data.logmel import resize_time, subtract_noise_floor
from ..errors import ConfigError
from ..models import Conv1x1Head, ResNet1DAudio, build_video_backbone
from ..objectives import attention_pool, av_attention, glcm_global_loss, glcm_local_loss, mil_nce_chance
from ..runtime.gather import dist_info
from .base import Method, diag_entries, fp32

__all__ = ["GLCMConfig", "GLCM"]


@dataclass
class GLCMConfig:
    """Model and loss knobs of GLCM (defaults = release architecture, normalised loss)."""

    name: Literal["glcm"] = "glcm"
    width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0  # slow pathway widths 64·m … 512·m
    fast_width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0  # fast pathway widths 8·m … 64·m
    audio_width_mult: Annotated[float, Range(1e-3, 16.0)] = 1.0  # audio trunk widths 64·m … 512·m
    stem_pool: bool = True  # max-pool after the stem (release: True; False keeps 2x larger maps)
    slow_stride: Annotated[int, Range(1, 64)] = 8  # slow input = every slow_stride-th frame of the clip
    audio_steps_per_frame: Annotated[int, Range(1, 32)] = 3  # r: audio steps per fast frame
    proj_dim_global: int = 512
    proj_dim_local: int = 64
    n_mels: Annotated[int, Range(8, 512)] = 80
    logmel_preset: Literal["glcm", "avid", "avts"] = "glcm"
    release_exact: bool = False  # True: no L2 norm, tau = 1 (the released code)
    normalize: bool = True
    tau: Annotated[float, Range(1e-4, 100.0)] = 0.07
    weight_global: Annotated[float, Range(0.0)] = 1.0
    weight_local: Annotated[float, Range(0.0)] = 1.0
    attention_stopgrad: bool = False
    #: BatchNorm (no affine) on the four 1x1 projections: removes the component every clip and
    #: position share, which kept the global loss at chance on real footage (docs/methods.md)
    proj_bn: bool = False
    #: how the global audio embedding pools the projected audio steps over time: mean (release)
    #: | max (sparse sound events in a noisy track: the events, not the noise floor, set ā)
    audio_pool: Literal["mean", "max"] = "mean"
    #: subtract each clip's per-mel-bin quantile over time from the log-mel (the stationary noise
    #: floor; e.g. 0.2), so the audio embedding sees the sound events, not the noise (None: off)
    audio_floor_quantile: Annotated[float, Range(0.0, 1.0)] | None = None
    #: under torch.distributed, contrast against the clips of every rank (spec 1.9); the engine's
    #: sampler orders ranks so that W ranks x B clips equal one process with W·B clips
    gather_negatives: bool = False

    def validate(self) -> None:
        if self.weight_global + self.weight_local == 0:
            raise ConfigError("method.weight_global and method.weight_local must be >= 0 and not both 0")

    @property
    def loss_normalize(self) -> bool:
        return False if self.release_exact else self.normalize

    @property
    def loss_tau(self) -> float:
        return 1.0 if self.release_exact else self.tau


class GLCM(Method):
    """GLCM encoders, heads and losses. Batch: ``clip/video (B,3,T,H,W)``, ``clip/audio (B,N)`` waveform."""

    name = "glcm"
    config_class = GLCMConfig
    modalities = ("video", "audio")
    chance_hints = {
        "loss_global": ("method.attention_stopgrad=true (the local loss drags the attention and starves the global "
                        "one, docs/methods.md GLCM), or method.weight_local=0 to check the global term alone"),
        "loss_local": "a longer clip (data.clip_frames) or method.audio_steps_per_frame; check audio/video sync",
    }

    def __init__(self, cfg: GLCMConfig, data: DataConfig) -> None:
        super().__init__(cfg, data)
        self.slow = build_video_backbone("glcm_slow", width_mult=cfg.width_mult, stem_pool=cfg.stem_pool)
        self.fast = build_video_backbone("glcm_fast", width_mult=cfg.fast_width_mult, stem_pool=cfg.stem_pool)
        self.frontend = build_logmel(cfg.logmel_preset, data.sample_rate, n_mels=cfg.n_mels)
        self.audio_norm = nn.BatchNorm1d(cfg.n_mels, affine=False)  # running per-bin dataset statistics
        self.audio = ResNet1DAudio(in_channels=cfg.n_mels, width_mult=cfg.audio_width_mult)
        self.v_proj_global = Conv1x1Head(self.slow.out_channels, cfg.proj_dim_global, dims=3, bn=cfg.proj_bn)
        self.v_proj_local = Conv1x1Head(self.fast.out_channels, cfg.proj_dim_local, dims=3, bn=cfg.proj_bn)
        self.a_proj_global = Conv1x1Head(self.audio.out_channels, cfg.proj_dim_global, dims=1, bn=cfg.proj_bn)
        self.a_proj_local = Conv1x1Head(self.audio.out_channels, cfg.proj_dim_local, dims=1, bn=cfg.proj_bn)

    # ----------------------------------------------------------------- encoders
    def _slow_input(self, video: torch.Tensor) -> torch.Tensor:
        return video[:, :, :: self.cfg.slow_stride]

    def _audio_trunk(self, audio: torch.Tensor, steps: int) -> torch.Tensor:
        """Waveform ``(B, N)`` → trunk output ``(B, C, steps)`` (log-mel resized to ``steps``)."""
        with torch.autocast(device_type=audio.device.type, enabled=False):
            spec = self.frontend(audio.float())  # (B, n_mels, S0)
            if self.cfg.audio_floor_quantile is not None:
                spec = subtract_noise_floor(spec, self.cfg.audio_floor_quantile)
            spec = resize_time(spec, steps)  # (B, n_mels, steps)
            spec = self.audio_norm(spec)
        return self.audio(spec)

    def _audio_global(self, trunk: torch.Tensor) -> torch.Tensor:
        """Global audio embedding ``ā`` ``(B, Dg)``: the projected trunk ``(B, Dg, S)`` pooled over
        its ``S`` steps (``method.audio_pool``: mean or max)."""
        steps = self.a_proj_global(trunk).float()
        return steps.amax(dim=2) if self.cfg.audio_pool == "max" else steps.mean(dim=2)

    def _audio_steps(self, num_frames: int) -> int:
        return self.cfg.audio_steps_per_frame * num_frames

    # ---------------------------------------------------------------- data hooks
    def build_sampler(self) -> ContiguousClipSampler:
        """One random clip ``"clip"``: ``data.clip_frames`` frames at ``data.fps`` + the audio of
        the same span (the slow input is every ``slow_stride``-th frame, taken in the model)."""
        return ContiguousClipSampler(self.data.clip_frames, self.data.fps, temporal="random", with_audio=True)

    def transforms(self) -> dict[str, Any]:
        """One temporally consistent crop/flip/jitter for the clip, so slow and fast pathways
        see the same geometry (spec 1.4)."""
        return default_transforms(self.data)

    def audio_transforms(self) -> dict[str, Any]:
        """Gain +-10 % on the waveform (spec 1.4); never a shift against the video."""
        return {"clip": WaveformAugment(gain=0.1)}

    # ------------------------------------------------------------------ training
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        video, audio = batch["clip/video"], batch["clip/audio"]
        cfg = self.cfg
        t = video.shape[2]
        if t % cfg.slow_stride:
            raise ConfigError(
                f"data.clip_frames={t} must be a multiple of method.slow_stride={cfg.slow_stride}"
            )
        slow_feat = self.slow(self._slow_input(video))  # (B, C_slow, Ts, h, w)
        slow_map = self.v_proj_global(slow_feat)  # (B, Dg, Ts, h, w)
        b, dg, _, h, w = slow_map.shape
        v_bar = slow_map.float().mean(dim=2).reshape(b, dg, h * w)  # (B, Dg, P)
        trunk = self._audio_trunk(audio, self._audio_steps(t))  # (B, C, r·T)
        a_bar = self._audio_global(trunk)  # (B, Dg)
        a_loc = self.a_proj_local(trunk).float()  # (B, Dl, r·T)

        norm, tau = cfg.loss_normalize, cfg.loss_tau
        with fp32(video.device):  # scores and log-sum-exps in fp32 even under autocast
            loss_g = glcm_global_loss(a_bar, v_bar, normalize=norm, tau=tau, gather=cfg.gather_negatives)
            attn = av_attention(a_bar, v_bar, normalize=norm, tau=tau, stopgrad=cfg.attention_stopgrad)  # (B, P)

        fast_feat = self.fast(video)  # (B, C_fast, T, h, w)
        fast_map = self.v_proj_local(fast_feat).float()  # (B, Dl, T, h, w)
        if fast_map.shape[-2:] != (h, w) or fast_map.shape[2] != t:
            raise ConfigError(
                f"slow map {h}x{w} and fast map {tuple(fast_map.shape[2:])} disagree; "
                "both pathways need the same spatial strides and no temporal stride"
            )
        with fp32(video.device):
            u = attention_pool(attn, fast_map.reshape(b, fast_map.shape[1], t, h * w))  # (B, Dl, T)
            loss_l = glcm_local_loss(u, a_loc, normalize=norm, tau=tau, gather=cfg.gather_negatives)
        total = cfg.weight_global * loss_g + cfg.weight_local * loss_l
        out = {"loss": total, "loss_global": loss_g.detach(), "loss_local": loss_l.detach()}
        # diagnostics (detached): global pairs = audio vs the position-mean video embedding;
        # local pairs = each attention-pooled step vs the mean of its r aligned audio steps
        r = cfg.audio_steps_per_frame
        v_glob = nn.functional.normalize(v_bar, dim=1).mean(dim=2)  # (B, Dg)
        a_steps = a_loc.reshape(b, a_loc.shape[1], t, r).mean(dim=3)  # (B, Dl, T)
        out.update(diag_entries(**{
            "pair/loss_global": torch.stack([a_bar, v_glob]),
            "pair/loss_local": torch.stack([u.transpose(1, 2).flatten(0, 1), a_steps.transpose(1, 2).flatten(0, 1)]),
            "attn/av_attention": attn,
            "feat/video": torch.cat([slow_feat.float().mean(dim=(2, 3, 4)), fast_feat.float().mean(dim=(2, 3, 4))], 1),
        }))
        return out

    def term_weights(self) -> dict[str, float]:
        """``weight_global`` / ``weight_local`` (``method.weight_local=0``: a global-only run)."""
        return {"loss_global": self.cfg.weight_global, "loss_local": self.cfg.weight_local}

    def loss_chance(self, batch: dict[str, Any]) -> dict[str, float]:
        """Symmetric MIL-NCE at constant scores: global ``ln 2B``, local ``ln 2BT`` (``B`` = clips
        contrasted: all ranks' with ``gather_negatives``; ``T`` = clip frames)."""
        b, t = batch["clip/video"].shape[0], batch["clip/video"].shape[2]
        if self.cfg.gather_negatives:
            b *= dist_info()[1]
        return {"loss_global": mil_nce_chance(b, 1), "loss_local": mil_nce_chance(b * t, self.cfg.audio_steps_per_frame)}

    # ---------------------------------------------------------------- evaluation
    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """Concatenated mean-pooled slow and fast backbone features ``(B, C_slow + C_fast)``."""
        return torch.cat([m.float().mean(dim=(2, 3, 4)) for m in self.video_feature_maps(video)], dim=1)

    def video_feature_maps(self, video: torch.Tensor) -> list[torch.Tensor]:
        """The slow ``(B, C_slow, T/s, h, w)`` and fast ``(B, C_fast, T, h', w')`` backbone maps."""
        return [self.slow(self._slow_input(video)), self.fast(video)]

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Time-pooled audio trunk features ``(B, C_audio)`` at the training step density."""
        return self._audio_trunk(audio, self._eval_audio_steps(audio)).float().mean(dim=2)

    def _eval_audio_steps(self, audio: torch.Tensor) -> int:
        """Audio steps for a waveform ``(B, N)`` outside training: ``audio_steps_per_frame`` per frame
        of its span at ``data.fps`` (the training step density)."""
        frames = int(audio.shape[-1]) / self.data.sample_rate * self.data.fps
        return max(1, int(round(frames * self.cfg.audio_steps_per_frame)))

    def joint_video(self, video: torch.Tensor) -> torch.Tensor:
        """The global space of the global loss: the projected slow map, time-pooled as in training
        (``v̄ (B, Dg, P)``), each position L2-normalised, averaged over positions, L2-normalised
        again -> ``(B, Dg)`` (the video side of the ``pair/loss_global`` diagnostic)."""
        slow_map = self.v_proj_global(self.slow(self._slow_input(video))).float()  # (B, Dg, Ts, h, w)
        v_bar = slow_map.mean(dim=2).flatten(2)  # (B, Dg, P)
        return nn.functional.normalize(nn.functional.normalize(v_bar, dim=1).mean(dim=2), dim=1)

    def joint_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """The global audio embedding ``ā`` of the global loss, L2-normalised ``(B, Dg)``, at the
        training step density (``audio_steps_per_frame`` steps per frame of the waveform's span)."""
        a_bar = self._audio_global(self._audio_trunk(audio, self._eval_audio_steps(audio)))
        return nn.functional.normalize(a_bar, dim=1)

    def localization_maps(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per slow frame: softmax over positions of ``<a_bar, v_{τ,p}>`` → ``(B, Ts, h, w)``."""
        return self.heat_maps_from([self.slow(self._slow_input(video))], audio, video.shape[2])

    def heat_maps_from(self, maps: list[torch.Tensor], audio: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`localization_maps` from the slow backbone map ``maps[0]`` ``(B, C_slow, Ts, h, w)``."""
        slow_map = self.v_proj_global(maps[0]).float()  # (B, Dg, Ts, h, w)
        b, dg, ts, h, w = slow_map.shape
        a_bar = self._audio_global(self._audio_trunk(audio, self._audio_steps(num_frames)))
        heat = []
        for step in range(ts):
            v = slow_map[:, :, step].reshape(b, dg, h * w)
            heat.append(av_attention(a_bar, v, normalize=self.cfg.loss_normalize, tau=self.cfg.loss_tau))
        frames = torch.arange(0, num_frames, self.cfg.slow_stride)[:ts]
        return torch.stack(heat, dim=1).reshape(b, ts, h, w), frames

    def local_video_features(self, video: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """Fast-pathway features per frame ``(B, C_fast, T)``: attention-pooled with audio, else mean-pooled."""
        fmap = self.fast(video).float()  # (B, C, T, h, w)
        b, c, t, h, w = fmap.shape
        if audio is None:
            return fmap.mean(dim=(3, 4))
        slow_map = self.v_proj_global(self.slow(self._slow_input(video))).float()
        v_bar = slow_map.mean(dim=2).reshape(b, slow_map.shape[1], h * w)
        a_bar = self._audio_global(self._audio_trunk(audio, self._audio_steps(t)))
        attn = av_attention(a_bar, v_bar, normalize=self.cfg.loss_normalize, tau=self.cfg.loss_tau)
        return attention_pool(attn, fmap.reshape(b, c, t, h * w))

    def local_audio_features(self, audio: torch.Tensor, steps: int) -> torch.Tensor:
        """Audio trunk features resampled to ``steps`` per clip ``(B, C_audio, steps)``."""
        return self._audio_trunk(audio, self._audio_steps(steps)).float().reshape(
            audio.shape[0], -1, steps, self.cfg.audio_steps_per_frame
        ).mean(dim=3)
