"""Per-frame pixel masks as localisation ground truth (``source_masks`` / ``distractor_masks``).

Format (docs/world_format.md §4): a video's annotation may name a file, relative to the folder of
``annotations.json``: ``.npz`` with key ``masks`` or ``.npy``, holding a uint8 / bool array
``(num_frames, H, W)`` (frame k shown at ``k / fps``; nonzero = object pixel; any ``H, W``, covering
the full source frame). :func:`crop_mask` maps one frame through the evaluation crop exactly as
:func:`glocal.eval.localization.clip_box` maps boxes: crop pixel ``(i, j)`` takes the source pixel
under its centre (nearest neighbour), after the horizontal flip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["load_masks", "crop_mask"]


def load_masks(path: str | Path) -> np.ndarray:
    """Read a mask file: ``(num_frames, H, W)`` bool array (nonzero = object).

    Raises:
        DataError: missing / unreadable file, no ``masks`` key in an ``.npz``, wrong shape or dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"mask file {path} not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"mask file {path} cannot be read: {exc}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if "masks" not in data.files:
                raise DataError(f"mask file {path} has no array 'masks' (keys: {data.files})")
            arr = data["masks"]
    else:
        arr = data
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise DataError(f"mask file {path} must hold a (num_frames, H, W) array; got shape {arr.shape}")
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"mask file {path} must hold uint8 or bool masks; got dtype {arr.dtype}")
    return arr != 0


def crop_mask(mask: np.ndarray, crop: list[float], size: int) -> np.ndarray:
    """One source-frame mask mapped into the ``size x size`` evaluation crop.

    Args:
        mask: ``(H, W)`` bool mask of the full source frame.
        crop: ``(x0, y0, x1, y1, flip)``: the crop in normalised source coordinates, flipped
            horizontally when ``flip >= 0.5``.
        size: side of the crop in pixels.

    Returns:
        ``(size, size)`` float64 map with values in ``{0, 1}``.
    """
    cx0, cy0, cx1, cy1, flip = crop
    height, width = mask.shape
    u = (np.arange(size) + 0.5) / size  # crop-pixel centres, normalised crop coordinates
    if flip >= 0.5:
        u = 1.0 - u
    xs = cx0 + u * (cx1 - cx0)
    ys = cy0 + (np.arange(size) + 0.5) / size * (cy1 - cy0)
    cols = np.floor(xs * width).astype(np.int64)
    rows = np.floor(ys * height).astype(np.int64)
    col_ok = (cols >= 0) & (cols < width)
    row_ok = (rows >= 0) & (rows < height)
    out = mask[np.clip(rows, 0, height - 1)[:, None], np.clip(cols, 0, width - 1)[None, :]]
    return (out & row_ok[:, None] & col_ok[None, :]).astype(np.float64)
