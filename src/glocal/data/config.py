"""The data section of a run config: where the videos are and what one training clip looks like.

It lives in the data layer so that every data hook (samplers, transforms, dataset builders) and
every method that reads the sample rate or frame rate can be typed with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from ..config import Interval, Range

__all__ = ["SAMPLE_RATE", "FPS", "DataConfig"]

#: the default audio sample rate (Hz) and video frame rate (frames/s): the data config's defaults,
#: and what a reader or sampler uses when it is not given one
SAMPLE_RATE = 16000
FPS = 25.0


@dataclass
class DataConfig:
    """Where the videos are and what one training clip looks like."""

    root: str = "data/world"  # dataset folder (with manifest.csv) or a manifest file
    manifest: str = "manifest.csv"
    #: dataset layout (docs/data_formats.md): auto | csv | folder | ucf101 | hmdb51 | kinetics | unlabeled
    format: Literal["auto", "csv", "folder", "ucf101", "hmdb51", "kinetics", "unlabeled"] = "auto"
    deny_list: str | None = None  # file written by `glocal scan DATA --out FILE`; its files are left out
    split: str | None = "train"  # manifest split used for pretraining (None: every row)
    clip_frames: Annotated[int, Range(1, 4096)] = 32
    fps: Annotated[float, Range(0.1, 1000)] = FPS
    crop_size: Annotated[int, Range(8, 4096)] = 112
    decode_size: int | None = None  # decode frames at this square size (None: native size)
    sample_rate: Annotated[int, Range(4000, 192000)] = SAMPLE_RATE
    #: how a view's audio speed change is played (AVTS): sinc | linear resampling (tempo and pitch
    #: together) | stretch (tempo only, pitch kept: phase vocoder)
    audio_speed_mode: Literal["sinc", "linear", "stretch"] = "sinc"
    #: random-resized-crop area range (fractions of the frame)
    crop_scale: Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)] = (0.2, 1.0)
    #: probability that a training crop is centred on a moving pixel (motion-focused cropping,
    #: glocal.data.motion_crop) instead of placed uniformly: for small moving objects over
    #: per-video backgrounds, where two random crops share mostly background
    motion_crop_p: Annotated[float, Range(0.0, 1.0)] = 0.0
    flip_p: Annotated[float, Range(0.0, 1.0)] = 0.5
    #: colour-jitter strengths (brightness, contrast, saturation, hue); hue in turns, <= 0.5
    jitter: tuple[Annotated[float, Range(0.0)], Annotated[float, Range(0.0)], Annotated[float, Range(0.0)],
                  Annotated[float, Range(0.0, 0.5)]] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: Annotated[float, Range(0.0, 1.0)] = 0.8
    grayscale_p: Annotated[float, Range(0.0, 1.0)] = 0.2
    #: DataLoader worker processes (0: load in the training process). Pretraining keeps them
    #: alive across epochs (persistent workers; the epoch travels with each sample's index)
    num_workers: Annotated[int, Range(0, 256)] = 2
    #: video decoder threads per file: auto (one for frames up to 640x480, else the loader
    #: process's share of the cores) | an int | ffmpeg (FFmpeg's own automatic threading)
    decoder_threads: Annotated[int, Range(1, 256)] | Literal["auto", "ffmpeg"] = "auto"
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

