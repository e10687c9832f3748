"""The data section of a run config: where the videos are and what one training clip looks like.

It lives in the data layer so that every data hook (samplers, transforms, dataset builders) and
every method that reads the sample rate or frame rate can be typed with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import check_range
from ..errors import ConfigError

__all__ = ["DataConfig"]


@dataclass
class DataConfig:
    """Where the videos are and what one training clip looks like."""

    root: str = "data/world"  # dataset folder (with manifest.csv) or a manifest file
    manifest: str = "manifest.csv"
    #: dataset layout (docs/data_formats.md): auto | csv | folder | ucf101 | hmdb51 | kinetics | unlabeled
    format: Literal["auto", "csv", "folder", "ucf101", "hmdb51", "kinetics", "unlabeled"] = "auto"
    deny_list: str | None = None  # file written by `glocal scan DATA --out FILE`; its files are left out
    split: str | None = "train"  # manifest split used for pretraining (None: every row)
    clip_frames: int = 32
    fps: float = 25.0
    crop_size: int = 112
    decode_size: int | None = None  # decode frames at this square size (None: native size)
    sample_rate: int = 16000
    #: how a view's audio speed change is played (AVTS): sinc | linear resampling (tempo and pitch
    #: together) | stretch (tempo only, pitch kept: phase vocoder)
    audio_speed_mode: Literal["sinc", "linear", "stretch"] = "sinc"
    crop_scale: tuple[float, float] = (0.2, 1.0)
    flip_p: float = 0.5
    #: colour-jitter strengths (brightness, contrast, saturation, hue); hue in turns, <= 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    num_workers: int = 2
    #: video decoder threads per file: auto (one for frames up to 640x480, else the loader
    #: process's share of the cores) | an int | ffmpeg (FFmpeg's own automatic threading)
    decoder_threads: int | Literal["auto", "ffmpeg"] = "auto"
    #: colour jitter, grayscale, blur and normalisation on the training device, on uint8 clips
    #: (loader workers only decode, crop, resize and flip; 4x fewer bytes per clip to move).
    #: auto: on when training on CUDA; off on CPU, where it would move work from the loader
    #: workers onto the cores the training step needs
    augment_on_device: bool | Literal["auto"] = "auto"
    on_error: Literal["raise", "skip"] = "raise"
    #: a malformed manifest row (bad fields, not UTF-8, unknown label): raise | skip (left out and counted)
    on_bad_row: Literal["raise", "skip"] = "raise"
    missing_audio: Literal["error", "skip", "silence"] = "error"
    max_retries: int = 10

    def validate(self) -> None:
        check_range("data.clip_frames", self.clip_frames, 1, 4096)
        check_range("data.fps", self.fps, 0.1, 1000)
        check_range("data.crop_size", self.crop_size, 8, 4096)
        check_range("data.sample_rate", self.sample_rate, 4000, 192000)
        check_range("data.num_workers", self.num_workers, 0, 256)
        if isinstance(self.decoder_threads, int):
            check_range("data.decoder_threads", self.decoder_threads, 1, 256)
        for key in ("flip_p", "jitter_p", "grayscale_p"):
            check_range(f"data.{key}", getattr(self, key), 0.0, 1.0)
        if len(self.jitter) != 4 or not all(x >= 0 for x in self.jitter[:3]) or not 0 <= self.jitter[3] <= 0.5:
            raise ConfigError(
                f"config key 'data.jitter' = {list(self.jitter)} must be [brightness, contrast, saturation, hue] "
                "with the first three >= 0 and hue in [0, 0.5]"
            )
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"config key 'data.crop_scale' = {list(self.crop_scale)} must satisfy 0 < lo <= hi <= 1")
