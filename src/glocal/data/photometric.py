"""The photometric half of :class:`~glocal.data.transforms.ClipTransform`, run on the training
device on uint8 clips ("transfer uint8, normalise on the GPU").

With ``MultiViewDataset(augment_on_device=True)`` (``data.augment_on_device``, on by default for
pretraining) loader workers only decode, crop, resize and flip: a view arrives as uint8
``"{view}/video"`` ``(3, T, S, S)`` plus ``"{view}/photo"`` float32 ``(PHOTO_DIM,)`` (or
``(T, PHOTO_DIM)`` for per-frame draws), a quarter of the bytes of a float clip to collate, send
between processes and copy to the device. :func:`finish_batch` then applies, per clip,

    y = clamp(M x + b, 0, 1)           x: uint8 pixel values, M already holds the 1/255
    y = G y          if grayscale      G: (3, 3) luma replicated on the three channels
    y = blur_sigma(y) if sigma > 0     separable Gaussian over H and W
    out = (y - mean) / std             ImageNet statistics

which is exactly :meth:`ClipTransform.apply` (the colour jitter is one 3x3 matrix ``M`` and
offset ``b``, computed in the worker since contrast needs the clip's mean luma). A batch takes
one batched matrix multiply for ``M x + b`` (clips without grayscale / blur get the
normalisation folded into ``M``, ``b`` and their clamp bounds, as
:func:`~glocal.data.transforms.colour_and_normalise` does), one for the grayscale clips and one
for the normalisation of the clips that were grayed or blurred; only the blur runs per clip (its
kernel depends on the clip's sigma). Bit-identical to
:func:`~glocal.data.transforms.colour_and_normalise` clip by clip (``tests/data/test_photometric.py``).

Parameter vector layout (:data:`~glocal.data.transforms.PHOTO_DIM` = 14, written by
:func:`~glocal.data.transforms.photo_vector` in the worker): ``M`` row-major (9), ``b`` (3),
grayscale flag (1), blur sigma in output pixels (1, 0 = no blur).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .transforms import INV_STD64, MEAN64, PHOTO_DIM, gaussian_blur, gray_matrix, photo_vector

__all__ = ["PHOTO_DIM", "photo_vector", "finish_clips", "finish_batch"]


@dataclass(frozen=True)
class _Constants:
    """The fixed small matrices of :func:`finish_clips` on one device (built once per device)."""

    lo: tuple[float, ...]  # per-channel clamp bounds of a normalised value: normalise(0) ...
    hi: tuple[float, ...]  # ... and normalise(1)
    gray: torch.Tensor  # float32 (3, 3) luma replicated on the three channels
    scale: torch.Tensor  # float32 (3, 3) diag(1 / std)
    shift: torch.Tensor  # float32 (3, 1) -mean / std


@functools.lru_cache(maxsize=None)
def _constants(device: torch.device) -> _Constants:
    mean, inv_std = MEAN64, INV_STD64
    lo, hi = tuple((-mean * inv_std).tolist()), tuple(((1 - mean) * inv_std).tolist())
    # [0, 1] lies inside every channel's [lo, hi]: clamping an unfolded piece to them first changes
    # nothing its own clamp(0, 1) does not (finish_clips clamps the whole batch with them)
    assert max(lo) < 0 and min(hi) > 1
    return _Constants(
        lo=lo, hi=hi, gray=gray_matrix(torch.float32).to(device), scale=torch.diag(inv_std).float().to(device),
        shift=(-mean * inv_std).float().view(3, 1).to(device),
    )


def _to_device(rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host indices on ``device`` without waiting for it (an asynchronous copy)."""
    return torch.from_numpy(rows).to(device, non_blocking=True)


def _host_params(photo: torch.Tensor) -> torch.Tensor:
    """float64 ``(P, PHOTO_DIM)`` rows of ``photo`` on the host (a device-to-host copy if it is not
    there: keep ``/photo`` on the host, as the engine does)."""
    params = photo.detach()
    if params.device.type != "cpu":
        params = params.cpu()
    return params.reshape(-1, PHOTO_DIM).double()


def _colour_matrices(params: torch.Tensor, folded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 ``(P, 3, 3)`` matrices and ``(P, 3, 1)`` offsets of ``M x + b`` per piece; where
    ``folded`` ``(P,)``, the normalisation folded in: ``diag(1/std) M`` and ``(b - mean) / std``."""
    mats, bias = params[:, :9].reshape(-1, 3, 3), params[:, 9:12]
    mats = torch.where(folded[:, None, None], INV_STD64[:, None] * mats, mats)
    bias = torch.where(folded[:, None], INV_STD64 * (bias - MEAN64), bias)
    return mats, bias[:, :, None]


def _clamp_channels(y: torch.Tensor, k: _Constants) -> None:
    """Clamp normalised ``(P, 3, N)`` to the normalised ``[0, 1]`` of each channel, in place
    (per channel with scalar bounds: much faster than tensor bounds)."""
    for ch in range(3):
        y[:, ch].clamp_(k.lo[ch], k.hi[ch])


def _gray_blur_normalise(y: torch.Tensor, gray: np.ndarray, sigma: np.ndarray, piece: tuple[int, ...],
                         k: _Constants) -> torch.Tensor:
    """The unfolded path on ``y = M x + b`` ``(n, 3, N)``: clamp to [0, 1], luma of the ``gray``
    pieces (one batched multiply), blur of each piece with ``sigma > 0`` (``piece`` = its
    ``(3, T', H, W)``), then ``(y - mean) / std`` (one batched multiply)."""
    y = y.clamp_(0, 1)
    n = y.shape[0]
    g = np.flatnonzero(gray)
    if len(g):
        sel = _to_device(g, y.device)
        y[sel] = torch.bmm(k.gray.expand(len(g), 3, 3), y[sel])
    for i in np.flatnonzero(sigma > 0).tolist():
        y[i] = gaussian_blur(y[i].view(piece), float(sigma[i])).reshape(3, -1)
    return torch.baddbmm(k.shift.expand(n, 3, 1), k.scale.expand(n, 3, 3), y)


def finish_clips(video: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, T, H, W)`` + parameters ``(B, PHOTO_DIM)`` or ``(B, T, PHOTO_DIM)`` ->
    normalised float32 ``(B, 3, T, H, W)`` on ``video``'s device (formula in the module doc).

    Each clip (each frame for per-frame draws) gets the arithmetic of
    :func:`~glocal.data.transforms.colour_and_normalise` (bit for bit), batched: one
    ``baddbmm`` for ``M x + b`` of the whole batch, whose ``(3, 4)`` matrices cross to the device
    in one copy. ``photo`` is read on the host (the engine keeps it there; on a device it costs a
    device-to-host copy); no value of ``video`` is read on the host.
    """
    if video.dtype != torch.uint8 or video.dim() != 5 or video.shape[1] != 3:
        raise ValueError(f"finish_clips needs uint8 (B, 3, T, H, W) clips, got {video.dtype} {tuple(video.shape)}")
    b, _, t, h, w = video.shape
    if photo.shape not in ((b, PHOTO_DIM), (b, t, PHOTO_DIM)):
        raise ValueError(f"photo parameters {tuple(photo.shape)} do not match clips {tuple(video.shape)}")
    per_frame = photo.dim() == 3
    params = _host_params(photo)  # (P, PHOTO_DIM): P = B clips or B*T frames
    flags = params[:, 12:].numpy()  # host values: grayscale flag, blur sigma
    gray, sigma = flags[:, 0] > 0.5, flags[:, 1]
    folded = ~gray & ~(sigma > 0)
    mats, bias = _colour_matrices(params, torch.from_numpy(folded))
    ab = torch.cat([mats, bias], dim=2).float().to(video.device, non_blocking=True)  # (P, 3, 4): one copy
    x = video.transpose(1, 2).reshape(b * t, 3, h * w) if per_frame else video.reshape(b, 3, t * h * w)
    k = _constants(video.device)
    y = torch.baddbmm(ab[:, :, 3:], ab[:, :, :3], x.float())  # (P, 3, N): M x + b
    _clamp_channels(y, k)  # the folded pieces' clamp; a no-op for the rest's own clamp(0, 1) below
    if not folded.all():
        rest = np.flatnonzero(~folded)
        sel = _to_device(rest, y.device)
        piece = (3, 1 if per_frame else t, h, w)
        y[sel] = _gray_blur_normalise(y[sel], gray[rest], sigma[rest], piece, k)
    if per_frame:
        return y.view(b, t, 3, h, w).transpose(1, 2).contiguous()
    return y.view(b, 3, t, h, w)


def finish_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Replace every uint8 ``"{view}/video"`` that has a ``"{view}/photo"`` by its finished float
    clip (:func:`finish_clips`) and drop the ``/photo`` keys; other entries pass through."""
    out = dict(batch)
    for key in [k for k in batch if k.endswith("/photo")]:
        view = key[: -len("/photo")]
        photo = out.pop(key)
        video = out.get(f"{view}/video")
        if video is None:
            raise KeyError(f"{key} has no {view}/video to finish")
        out[f"{view}/video"] = finish_clips(video, photo)
    return out
