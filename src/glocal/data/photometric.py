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
offset ``b``, computed in the worker since contrast needs the clip's mean luma).

Parameter vector layout (``PHOTO_DIM = 14``): ``M`` row-major (9), ``b`` (3), grayscale flag
(1), blur sigma in output pixels (1, 0 = no blur).
"""

from __future__ import annotations

from typing import Any

import torch

from .transforms import colour_and_normalise

__all__ = ["PHOTO_DIM", "photo_vector", "finish_clips", "finish_batch"]

PHOTO_DIM = 14


def photo_vector(mat: torch.Tensor, bias: torch.Tensor, photo: dict) -> torch.Tensor:
    """float32 ``(PHOTO_DIM,)`` from the colour matrix ``(3, 3)`` acting on uint8 values, the
    offset ``(3,)`` and the drawn grayscale / blur of ``photo``."""
    extra = torch.tensor([float(bool(photo.get("grayscale"))), float(photo.get("blur", 0.0))], dtype=torch.float64)
    return torch.cat([mat.reshape(9).double(), bias.reshape(3).double(), extra]).float()


def finish_clips(video: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, T, H, W)`` + parameters ``(B, PHOTO_DIM)`` or ``(B, T, PHOTO_DIM)`` ->
    normalised float32 ``(B, 3, T, H, W)`` on ``video``'s device (formula in the module doc).

    Per clip (per frame for per-frame draws) the same arithmetic as :meth:`ClipTransform.apply`
    (:func:`~glocal.data.transforms.colour_and_normalise`). Keep ``photo`` on the host (the
    engine does): it is read there, and one on a GPU costs a device-to-host copy.
    """
    if video.dtype != torch.uint8 or video.dim() != 5 or video.shape[1] != 3:
        raise ValueError(f"finish_clips needs uint8 (B, 3, T, H, W) clips, got {video.dtype} {tuple(video.shape)}")
    b, _, t, h, w = video.shape
    if photo.shape not in ((b, PHOTO_DIM), (b, t, PHOTO_DIM)):
        raise ValueError(f"photo parameters {tuple(photo.shape)} do not match clips {tuple(video.shape)}")
    params = photo.detach().to("cpu", torch.float64)
    out = torch.empty(video.shape, dtype=torch.float32, device=video.device)
    per_frame = params.dim() == 3
    for i in range(b):
        for k in range(t) if per_frame else [None]:
            p = params[i, k] if per_frame else params[i]
            sel = slice(None) if k is None else slice(k, k + 1)
            colour_and_normalise(video[i, :, sel], p[:9].view(3, 3), p[9:12], bool(p[12] > 0.5), float(p[13]),
                                 out=out[i, :, sel])
    return out


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
