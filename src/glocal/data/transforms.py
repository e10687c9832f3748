"""Video transforms that return their parameters: temporally consistent or per frame.

Input clips are uint8 ``(T, H, W, 3)`` tensors; outputs float ``(3, T, S, S)`` normalised with
ImageNet statistics. Randomness comes from a ``numpy.random.Generator`` passed in by the
dataset (seeded by ``(seed, epoch, index)``), so a sample is reproducible and resumable.

:class:`ClipTransform` draws one random resized crop + flip + colour jitter + grayscale + blur
for the whole clip (``per_frame=False``, GLCM / CtrlAug / AVTS) or an independent draw for every
frame (``per_frame=True``, VCLR). The sampled geometry is returned as :class:`CropParams` in
normalised source coordinates so aligned views can be mapped onto each other; passing
``crop=`` fixes the geometry and draws only the photometric part (how the dataset realises a
``region_of`` view: :func:`compose_crop` of the parent's crop and the region).

Geometry is exact: a crop whose edges fall on source pixels is sliced and resized with an
antialiased bilinear filter; a sub-pixel crop (a composed region) is resampled bilinearly at
exactly its box (after an antialiased integer pre-reduction when it shrinks more than 2x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .motion_crop import motion_map, sample_motion_centre

__all__ = [
    "CropParams",
    "ClipTransform",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MEAN64",
    "INV_STD64",
    "PHOTO_DIM",
    "colour_and_normalise",
    "compose_crop",
    "crop_resize",
    "gaussian_blur",
    "gray_matrix",
    "normalize_clip",
    "photo_vector",
    "sample_crop_size",
    "sample_motion_crop",
    "sample_resized_crop",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY = (0.299, 0.587, 0.114)
#: length of the deferred photometric parameter vector of :meth:`ClipTransform.split`:
#: ``M`` row-major (9), ``b`` (3), grayscale flag (1), blur sigma in output pixels (1, 0 = no blur)
PHOTO_DIM = 14


@dataclass(frozen=True)
class CropParams:
    """A crop in normalised source coordinates ``[0, 1]`` plus a horizontal flip flag."""

    x0: float
    y0: float
    x1: float
    y1: float
    flip: bool = False

    def as_list(self) -> list[float]:
        """``[x0, y0, x1, y1, flip]`` (the dataset's ``"{view}/crop"`` row)."""
        return [self.x0, self.y0, self.x1, self.y1, float(self.flip)]


def compose_crop(parent: CropParams, region: tuple[float, float, float, float]) -> CropParams:
    """The source-coordinate crop of ``region`` = ``(x0, y0, x1, y1)`` given in ``parent``'s
    displayed (cropped, possibly flipped) frame; the result shares ``parent``'s flip, so it
    displays exactly that part of ``parent``'s output."""
    rx0, ry0, rx1, ry1 = region
    w, h = parent.x1 - parent.x0, parent.y1 - parent.y0
    if parent.flip:
        x0, x1 = parent.x1 - rx1 * w, parent.x1 - rx0 * w
    else:
        x0, x1 = parent.x0 + rx0 * w, parent.x0 + rx1 * w
    return CropParams(x0, parent.y0 + ry0 * h, x1, parent.y0 + ry1 * h, parent.flip)


def sample_crop_size(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int] | None:
    """A RandomResizedCrop's ``(h, w)`` in pixels: area a ``scale`` fraction of the frame, aspect
    log-uniform in ``ratio``; None when none of ``attempts`` draws fits in the frame."""
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_r))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return h, w
    return None


def sample_resized_crop(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """RandomResizedCrop box ``(top, left, h, w)`` in pixels, placed uniformly (falls back to a
    centre crop)."""
    size = sample_crop_size(rng, height, width, scale, ratio, attempts)
    if size is None:
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side
    h, w = size
    top = int(rng.integers(0, height - h + 1))
    left = int(rng.integers(0, width - w + 1))
    return top, left, h, w


def sample_motion_crop(
    rng: np.random.Generator,
    motion: tuple[np.ndarray, int],
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int] | None:
    """A RandomResizedCrop box ``(top, left, h, w)`` centred, as far as the frame allows, on a
    pixel drawn from ``motion`` (a :func:`~glocal.data.motion_crop.motion_map` and its stride);
    the largest square when no size draw fits; None when the clip has no motion."""
    centre = sample_motion_centre(rng, motion[0], motion[1], height, width)
    if centre is None:
        return None
    side = min(height, width)
    h, w = sample_crop_size(rng, height, width, scale, ratio, attempts) or (side, side)
    top = min(max(centre[0] - h // 2, 0), height - h)
    left = min(max(centre[1] - w // 2, 0), width - w)
    return top, left, h, w


def normalize_clip(x: torch.Tensor) -> torch.Tensor:
    """Normalise float ``(3, T, H, W)`` in [0, 1] with ImageNet mean/std: ``(x - mean) / std``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(3, 1, 1, 1)
    return (x - mean) / std


def _on_pixels(v: float, n: int) -> int | None:
    """``v * n`` as an int when it is one (within 1e-6), else None."""
    p = v * n
    r = int(round(p))
    return r if abs(p - r) < 1e-6 else None


def _crop_resize_cthw(frames: torch.Tensor, crop: CropParams, size: int) -> torch.Tensor:
    """``(T, H, W, 3)`` -> cropped, resized, flipped ``(3, T, size, size)`` in the input's dtype
    and range when the crop lies on pixel edges (uint8 stays uint8: the antialiased bilinear
    resize has a fast SIMD path for it), float otherwise."""
    t, h, w, _ = frames.shape
    edges = [_on_pixels(crop.x0, w), _on_pixels(crop.y0, h), _on_pixels(crop.x1, w), _on_pixels(crop.y1, h)]
    x = frames.permute(0, 3, 1, 2)  # (T, 3, H, W), channels-last memory
    if all(e is not None for e in edges):
        left, top, right, bottom = edges  # type: ignore[misc]
        right, bottom = max(right, left + 1), max(bottom, top + 1)
        x = x[:, :, top:bottom, left:right]
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    else:
        x = _resample_box(x.float(), crop, size)
    return _channel_major(x, crop.flip)


def _channel_major(x: torch.Tensor, flip: bool) -> torch.Tensor:
    """``(T, C, S, S)`` -> contiguous ``(C, T, S, S)``, mirrored left-right when ``flip``. On the
    CPU in one numpy copy (a negative-stride view is free there): torch's flip and permute copy
    twice, 0.56-0.66 ms against 0.34 for a 32 x 112² uint8 clip (issue 14)."""
    if x.device.type == "cpu" and not x.requires_grad and x.dtype in (torch.uint8, torch.float32, torch.float64):
        a = x.numpy().transpose(1, 0, 2, 3)
        return torch.from_numpy(np.ascontiguousarray(a[..., ::-1] if flip else a))
    return (x.flip(-1) if flip else x).permute(1, 0, 2, 3).contiguous()


def crop_resize(frames: torch.Tensor, crop: CropParams, size: int) -> torch.Tensor:
    """Crop ``frames`` uint8/float ``(T, H, W, 3)`` to ``crop`` (normalised, flip applied) and
    resize to ``size`` x ``size`` -> float ``(T, 3, size, size)`` in [0, 1] (uint8 input) or in
    the input's range (float input)."""
    out = _crop_resize_cthw(frames, crop, size).permute(1, 0, 2, 3).float()
    return out / 255.0 if frames.dtype == torch.uint8 else out


def _resample_box(x: torch.Tensor, crop: CropParams, size: int) -> torch.Tensor:
    """Bilinear sampling of float ``(T, C, H, W)`` at a sub-pixel box -> ``(T, C, size, size)``."""
    t, _, h, w = x.shape
    shrink = min((crop.x1 - crop.x0) * w, (crop.y1 - crop.y0) * h) / size
    factor = int(shrink // 2) * 2 if shrink >= 2 else 1
    if factor > 1:  # antialiased pre-reduction; normalised coordinates are unchanged
        x = F.interpolate(x, size=(max(1, h // factor), max(1, w // factor)), mode="bilinear",
                          align_corners=False, antialias=True)
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    gx = (crop.x0 + centres * (crop.x1 - crop.x0)) * 2 - 1
    gy = (crop.y0 + centres * (crop.y1 - crop.y0)) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)  # (S, S, 2) as (x, y)
    grid = grid.unsqueeze(0).expand(t, -1, -1, -1)
    return F.grid_sample(x.contiguous(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def channel_sums(flat: torch.Tensor) -> torch.Tensor:
    """float64 ``(C,)`` sums of ``(C, N)`` values. uint8 values are summed exactly in int32 when
    ``255 N`` fits, else in int64; other dtypes in float64. uint8 on the CPU goes through numpy,
    whose integer reduction vectorises: a 32 x 112² clip takes 0.19 ms against torch's 0.88 ms
    (``sum(dtype=int32)``) and 1.2 ms (float64), the same numbers (issue 14)."""
    if flat.dtype == torch.uint8:
        fits = 255 * flat.shape[1] < 2**31
        if flat.device.type == "cpu":
            sums = flat.numpy().sum(axis=1, dtype=np.int32 if fits else np.int64)
            return torch.from_numpy(sums).to(torch.float64)
        return flat.sum(dim=1, dtype=torch.int32 if fits else torch.int64).to(torch.float64)
    return flat.sum(dim=1, dtype=torch.float64)


def gray_matrix(dtype: torch.dtype) -> torch.Tensor:
    """``(3, 3)`` matrix mapping RGB to the luma replicated on the three channels."""
    return torch.tensor(_GRAY, dtype=dtype).view(1, 3).expand(3, 3).contiguous()


def _hue_matrix(shift: float) -> torch.Tensor:
    """float64 ``(3, 3)`` hue rotation by ``shift`` turns (in [-0.5, 0.5]) in YIQ space."""
    m_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
    c, s = math.cos(2 * math.pi * shift), math.sin(2 * math.pi * shift)
    rot = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
    return torch.linalg.inv(m_yiq) @ rot @ m_yiq


#: float64 ImageNet mean and 1 / std (the normalisation ``(y - mean) * inv_std``)
MEAN64 = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
INV_STD64 = 1.0 / torch.tensor(IMAGENET_STD, dtype=torch.float64)


def photo_vector(mat: torch.Tensor, bias: torch.Tensor, photo: dict) -> torch.Tensor:
    """float32 ``(PHOTO_DIM,)`` from the colour matrix ``(3, 3)`` acting on uint8 values, the
    offset ``(3,)`` and the drawn grayscale / blur of ``photo`` (layout at :data:`PHOTO_DIM`)."""
    extra = torch.tensor([float(bool(photo.get("grayscale"))), float(photo.get("blur", 0.0))], dtype=torch.float64)
    return torch.cat([mat.reshape(9).double(), bias.reshape(3).double(), extra]).float()


def colour_and_normalise(
    x: torch.Tensor,
    mat: torch.Tensor,
    bias: torch.Tensor,
    grayscale: bool = False,
    blur: float = 0.0,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The photometric half of a clip transform: ``(3, T, H, W)`` pixel values (any dtype; ``mat``
    includes their scale, e.g. 1/255 for uint8) -> normalised float32 on ``x``'s device::

        y = clamp(M x + b, 0, 1);  y = G y (grayscale);  y = blur_sigma(y);  (y - mean) / std

    ``mat`` ``(3, 3)`` and ``bias`` ``(3,)`` are float64 on the host. Without grayscale and blur
    the normalisation is folded into the matrix and the clamp becomes per-channel bounds (one
    ``addmm``). ``out``: an optional float32 ``(3, T, H, W)`` to write into.
    """
    dev = x.device
    flat = x.reshape(3, -1).float()
    mean, inv_std = MEAN64, INV_STD64
    direct = out is not None and out.is_contiguous()
    target = out.view(3, -1) if direct else None
    if not grayscale and blur <= 0:
        # normalise(clamp(y, 0, 1)) == clamp(normalise(y), per-channel bounds)
        a = (inv_std[:, None] * mat).float().to(dev)
        c = (inv_std * (bias - mean)).float().to(dev)
        y = torch.addmm(c.view(3, 1), a, flat, out=target) if direct else torch.addmm(c.view(3, 1), a, flat)
        lo, hi = (-mean * inv_std).tolist(), ((1 - mean) * inv_std).tolist()
        for ch in range(3):  # per row with scalar bounds: ~14x faster than tensor bounds
            y[ch].clamp_(lo[ch], hi[ch])
    else:
        y = torch.addmm(bias.float().to(dev).view(3, 1), mat.float().to(dev), flat).clamp_(0, 1)
        if grayscale:
            y = gray_matrix(y.dtype).to(dev) @ y
        if blur > 0:
            y = gaussian_blur(y.view(x.shape), blur).reshape(3, -1)
        y = torch.addmm((-mean * inv_std).float().to(dev).view(3, 1), torch.diag(inv_std).float().to(dev), y)
    if out is None:
        return y.view(x.shape)
    if not (direct and y.data_ptr() == out.data_ptr()):
        out.copy_(y.view(x.shape))
    return out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(C, T, H, W)`` over H and W (radius ``ceil(3 sigma)`` pixels,
    reflect padding); same shape out, on ``x``'s device (the kernel is built there)."""
    c, t, h, w = x.shape
    radius = min(int(math.ceil(3 * sigma)), h - 1, w - 1)
    if radius < 1:
        return x
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    y = x.reshape(c * t, 1, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(c, t, h, w)


@dataclass
class ClipTransform:
    """Random resized crop + flip + colour jitter + grayscale + Gaussian blur, ImageNet-normalised.

    ``per_frame=False``: one draw for the whole clip (temporally consistent); ``True``: an
    independent draw for every frame (the returned crop is then a list, one per frame). With
    ``train=False`` it is a deterministic centre crop of the largest square (``scale`` ignored,
    no photometric change). ``blur_sigma`` is in output pixels. ``motion_crop_p``: the
    probability that a training crop is centred on a moving pixel instead of placed uniformly
    (:mod:`glocal.data.motion_crop`; area and aspect as drawn from ``scale`` and ``ratio``; with
    ``per_frame``, every frame's crop comes from the whole clip's motion map); a clip without
    motion falls back to the uniform placement.
    """

    size: int = 112
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    per_frame: bool = False
    train: bool = True
    motion_crop_p: float = 0.0

    def sample_crop(self, rng: np.random.Generator, height: int, width: int,
                    motion: tuple[np.ndarray, int] | None = None) -> CropParams:
        """Draw the crop geometry (and flip) for a ``height`` x ``width`` source; ``motion``: the
        clip's :func:`~glocal.data.motion_crop.motion_map` (used with ``motion_crop_p``)."""
        if self.train:
            box = None
            if motion is not None and self.motion_crop_p > 0 and rng.random() < self.motion_crop_p:
                box = sample_motion_crop(rng, motion, height, width, self.scale, self.ratio)
            top, left, h, w = box or sample_resized_crop(rng, height, width, self.scale, self.ratio)
            flip = bool(rng.random() < self.flip_p)
        else:
            side = min(height, width)
            top, left, h, w = (height - side) // 2, (width - side) // 2, side, side
            flip = False
        return CropParams(left / width, top / height, (left + w) / width, (top + h) / height, flip)

    def sample_photo(self, rng: np.random.Generator) -> dict:
        """Draw the photometric parameters (jitter factors and order, grayscale, blur sigma)."""
        photo: dict = {}
        if self.train and rng.random() < self.jitter_p:
            b, c, s, hue = self.jitter
            photo = {
                "brightness": float(rng.uniform(1 - b, 1 + b)),
                "contrast": float(rng.uniform(1 - c, 1 + c)),
                "saturation": float(rng.uniform(1 - s, 1 + s)),
                "hue": float(rng.uniform(-hue, hue)),
                "order": rng.permutation(4).tolist(),
            }
        photo["grayscale"] = bool(self.train and rng.random() < self.grayscale_p)
        if self.train and self.blur_p > 0 and rng.random() < self.blur_p:
            photo["blur"] = float(rng.uniform(*self.blur_sigma))
        return photo

    def sample(self, rng: np.random.Generator, height: int, width: int,
               motion: tuple[np.ndarray, int] | None = None) -> tuple[CropParams, dict]:
        """Draw crop geometry and photometric parameters for one clip (``motion``: see :meth:`sample_crop`)."""
        crop = self.sample_crop(rng, height, width, motion)
        return crop, self.sample_photo(rng)

    def apply(self, frames: torch.Tensor, crop: CropParams, photo: dict) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` -> normalised float ``(3, T, size, size)``.

        The colour jitter (brightness, contrast, saturation, hue in the drawn ``order``) is one
        3x3 colour matrix plus offset, applied with the ImageNet normalisation in a single pass
        and clamped once to the valid range (contrast uses the mean luma the preceding ops
        give). Grayscale and blur follow on the clamped colours.
        """
        x = _crop_resize_cthw(frames, crop, self.size)  # (3, T, S, S)
        scale = 1.0 / 255.0 if frames.dtype == torch.uint8 else 1.0
        mat, bias = self._colour_matrix(photo, x.reshape(3, -1), scale)
        return colour_and_normalise(x, mat * scale, bias, bool(photo.get("grayscale")), float(photo.get("blur", 0.0)))

    @staticmethod
    def _colour_matrix(photo: dict, flat: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """float64 ``(3, 3)`` matrix and ``(3,)`` offset of the jitter in ``photo`` (identity
        without jitter); ``flat`` ``(3, N)`` pixels times ``scale`` are in [0, 1]."""
        mat = torch.eye(3, dtype=torch.float64)
        bias = torch.zeros(3, dtype=torch.float64)
        if "order" not in photo:
            return mat, bias
        gray = torch.tensor(_GRAY, dtype=torch.float64)
        eye, zero = torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
        for op in photo["order"]:
            if op == 0:
                step, shift = photo["brightness"] * eye, zero
            elif op == 1:
                mean_rgb = channel_sums(flat) * scale / flat.shape[1]
                luma = float(gray @ (mat @ mean_rgb + bias))
                c = photo["contrast"]
                step, shift = c * eye, torch.full((3,), (1 - c) * luma, dtype=torch.float64)
            elif op == 2:
                f = photo["saturation"]
                step, shift = f * eye + (1 - f) * gray_matrix(torch.float64), zero
            else:
                step, shift = _hue_matrix(photo["hue"]), zero
            mat, bias = step @ mat, step @ bias + shift
        return mat, bias

    def split_apply(self, frames: torch.Tensor, crop: CropParams, photo: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The geometric part of :meth:`apply` here, the photometric part deferred.

        uint8 ``(T, H, W, 3)`` -> (uint8 ``(3, T, size, size)`` cropped, resized and flipped;
        float32 ``(PHOTO_DIM,)`` parameters of the rest, see :mod:`glocal.data.photometric`).
        :func:`~glocal.data.photometric.finish_clips` of the two equals :meth:`apply` (up to
        float rounding; a sub-pixel crop is also rounded to uint8 here).
        """
        if frames.dtype != torch.uint8:
            raise ValueError(f"split_apply needs uint8 frames, got {frames.dtype}")
        x = _crop_resize_cthw(frames, crop, self.size)  # (3, T, S, S)
        if x.dtype != torch.uint8:  # sub-pixel crop: resampled in float on the 0..255 scale
            x = x.round_().clamp_(0, 255).to(torch.uint8)
        mat, bias = self._colour_matrix(photo, x.reshape(3, -1), 1.0 / 255.0)
        return x, photo_vector(mat / 255.0, bias, photo)  # the matrix acts on uint8 values

    def _draws(
        self, frames: torch.Tensor, rng: np.random.Generator, crop: CropParams | None
    ) -> list[tuple[torch.Tensor, CropParams, dict]]:
        """The ``(frames, crop, photometric parameters)`` pieces of one call, drawn from ``rng``:
        the whole clip with one draw, or every frame with its own (``per_frame``; crop then
        photometry, frame by frame). A given ``crop`` fixes the geometry of every piece."""
        _, h, w, _ = frames.shape
        motion = motion_map(frames) if crop is None and self.train and self.motion_crop_p > 0 else None
        if not self.per_frame:
            if crop is None:
                crop, photo = self.sample(rng, int(h), int(w), motion)
            else:
                photo = self.sample_photo(rng)
            return [(frames, crop, photo)]
        pieces = []
        for t in range(frames.shape[0]):
            c = self.sample_crop(rng, int(h), int(w), motion) if crop is None else crop
            pieces.append((frames[t : t + 1], c, self.sample_photo(rng)))
        return pieces

    def split(
        self, frames: torch.Tensor, rng: np.random.Generator, crop: CropParams | None = None
    ) -> tuple[torch.Tensor, CropParams | list[CropParams], torch.Tensor]:
        """:meth:`__call__` with the photometric part deferred (same draws from ``rng``): uint8
        ``(T, H, W, 3)`` -> (uint8 ``(3, T, size, size)``, crop, float32 parameters ``(PHOTO_DIM,)``,
        or ``(T, PHOTO_DIM)`` per frame). Finish with :func:`~glocal.data.photometric.finish_clips`
        on the training device."""
        pieces = self._draws(frames, rng, crop)
        parts = [self.split_apply(f, c, p) for f, c, p in pieces]
        if not self.per_frame:
            return parts[0][0], pieces[0][1], parts[0][1]
        return torch.cat([x for x, _ in parts], dim=1), [c for _, c, _ in pieces], torch.stack([q for _, q in parts])

    def __call__(
        self, frames: torch.Tensor, rng: np.random.Generator, crop: CropParams | None = None
    ) -> tuple[torch.Tensor, CropParams | list[CropParams]]:
        """uint8 ``(T, H, W, 3)`` -> (float ``(3, T, size, size)``, crop). ``crop`` given: fixed
        geometry (e.g. a composed region), photometric parameters still drawn from ``rng``."""
        pieces = self._draws(frames, rng, crop)
        outs = [self.apply(f, c, p) for f, c, p in pieces]
        if not self.per_frame:
            return outs[0], pieces[0][1]
        return torch.cat(outs, dim=1), [c for _, c, _ in pieces]
