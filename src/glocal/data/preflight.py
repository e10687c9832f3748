"""Checks of a dataset against the clip geometry, run once before training starts.

:func:`preflight_notes` returns warnings (one line each) for what would otherwise surface deep
inside a run or not at all: listed files that are not on disk, a crop larger than the decoded
frames, a clip longer than the videos (read from a few evenly spaced files' metadata), and a
config that asks for more than a ``glocal prepare`` folder holds (its ``prepared.json``).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DataError
from .config import DataConfig
from .io import probe
from .manifest import Manifest
from .prepare import prepared_notes

__all__ = ["missing_files", "preflight_notes"]


def missing_files(manifest: Manifest) -> list[str]:
    """Paths of ``manifest`` that are not on disk."""
    return [p for p in manifest.paths.tolist() if not os.path.exists(p)]


def preflight_notes(manifest: Manifest, data_cfg: DataConfig, *, probes: int = 4, with_video: bool = True) -> list[str]:
    """Warnings about ``manifest`` for ``data_cfg`` (``crop_size``, ``decode_size``, ``clip_frames``, ``fps``).

    Args:
        probes: how many evenly spaced existing files are probed for size and duration.
        with_video: whether frames are decoded (no crop check otherwise).
    """
    notes = prepared_notes(data_cfg.root, data_cfg, with_video=with_video)  # a `glocal prepare` folder
    gone = missing_files(manifest)
    if gone:
        notes.append(f"warning: {len(gone)} of {len(manifest)} listed files are not on disk (e.g. {gone[0]}); "
                     "they will be skipped or fail when drawn: check data.root, or list them with `glocal scan`")
    present = sorted(set(manifest.paths.tolist()) - set(gone))
    if not present:
        return notes
    picks = [present[int(i)] for i in np.unique(np.linspace(0, len(present) - 1, min(probes, len(present))).round())]
    infos = []
    for path in picks:
        try:
            infos.append(probe(path))
        except DataError:
            continue  # a broken file is reported when it is drawn (or by `glocal scan`)
    crop = int(data_cfg.crop_size)
    decode = getattr(data_cfg, "decode_size", None)
    if with_video and decode and crop > int(decode):
        notes.append(f"warning: data.crop_size={crop} is larger than the decoded frames (data.decode_size={decode}): "
                     "crops are upscaled; lower data.crop_size or raise data.decode_size")
    elif with_video and not decode:
        small = [i for i in infos if i.has_video and min(i.width, i.height) < crop]
        if small and not any("data.crop_size" in n for n in notes):  # (said already for a prepared folder)
            i = small[0]
            notes.append(f"warning: data.crop_size={crop} is larger than the frames of {len(small)} of {len(infos)} "
                         f"probed videos (e.g. {i.path}: {i.width}x{i.height}): crops are upscaled; lower "
                         "data.crop_size or set data.decode_size")
    clip_s = float(data_cfg.clip_frames) / float(data_cfg.fps)
    short = [i for i in infos if 0 < i.duration < clip_s]
    if short:
        i = short[0]
        notes.append(f"warning: a clip ({data_cfg.clip_frames} frames at {data_cfg.fps:g} fps = {clip_s:.2f} s) is "
                     f"longer than {len(short)} of {len(infos)} probed videos (e.g. {i.path}: {i.duration:.2f} s): "
                     "their frames repeat; lower data.clip_frames or data.fps")
    return notes
