"""Frame rendering of a :class:`~.scene.Scene`: background, anti-aliased objects, boxes.

Everything is vectorised over frames; the only Python loops are over objects. Each object is
rendered inside a small per-frame window around it (``(T, S, S)``, gathered from and scattered
back into a padded canvas with fancy indexing), so its cost does not grow with the frame area.
Pixel ``(i, j)`` has its centre at ``(x, y) = (j + 0.5, i + 0.5)`` pixels; normalised
coordinates divide by ``W`` and ``H``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .scene import FLASH_TAU, ObjectTrack, Scene
from .shapes import sample_sdf, shape_extent

__all__ = [
    "FLASH_WHITE",
    "PULSE",
    "flash_envelope",
    "render_background",
    "object_radii",
    "object_colors",
    "object_window",
    "object_alpha",
    "object_boxes",
    "render_frames",
]

#: At a flash the colour moves this fraction of the way to white.
FLASH_WHITE = 0.75
#: At a flash the object grows by this fraction of its radius.
PULSE = 0.25


def flash_envelope(times: np.ndarray, onsets: np.ndarray, tau: float = FLASH_TAU) -> np.ndarray:
    """Visual event envelope ``(T,)`` in [0, 1]: ``max_k exp(-(t - onset_k) / tau)`` for
    ``t >= onset_k`` (0 before). It peaks at the first frame at or after each onset."""
    times = np.asarray(times, dtype=np.float64)
    onsets = np.asarray(onsets, dtype=np.float64)
    if onsets.size == 0:
        return np.zeros(times.shape, dtype=np.float32)
    dt = times[:, None] - onsets[None, :]
    env = np.where(dt >= 0, np.exp(-np.maximum(dt, 0.0) / tau), 0.0)
    return env.max(axis=1).astype(np.float32)


def render_background(scene: Scene) -> np.ndarray:
    """Background ``(T, H, W, 3)`` float32 in [0, 1]: gradient plus drifting texture."""
    bg = scene.background
    T, H, W = scene.num_frames, scene.height, scene.width
    x = (np.arange(W, dtype=np.float64) + 0.5) / W - 0.5
    y = (np.arange(H, dtype=np.float64) + 0.5) / H - 0.5
    s = np.cos(bg.angle) * x[None, :] + np.sin(bg.angle) * y[:, None]  # (H, W)
    s = (s - s.min()) / max(float(s.max() - s.min()), 1e-9)
    grad = bg.color_a * (1.0 - s[..., None]) + bg.color_b * s[..., None]  # (H, W, 3)

    fx, fy, phase, drift, amp = bg.waves.T  # each (K,)
    a = 2 * np.pi * (fx[:, None, None] * x[None, None, :] + fy[:, None, None] * y[None, :, None])
    a = (a + phase[:, None, None]).reshape(len(amp), H * W)  # (K, H*W) spatial phase
    b = 2 * np.pi * drift[None, :] * scene.times[:, None]  # (T, K) temporal phase
    # sin(a + b) = sin(a) cos(b) + cos(a) sin(b): one batched (H*W, 2K) @ (T, 2K, 3) product.
    basis = np.concatenate([np.sin(a), np.cos(a)], axis=0).T.astype(np.float32)  # (H*W, 2K)
    weights = np.concatenate([np.cos(b) * amp, np.sin(b) * amp], axis=1)  # (T, 2K)
    tints = np.concatenate([bg.tints, bg.tints], axis=0)  # (2K, 3)
    mix = (weights[:, :, None] * tints[None]).astype(np.float32)  # (T, 2K, 3)
    frames = np.matmul(basis[None], mix)  # (T, H*W, 3)
    frames += grad.reshape(1, H * W, 3).astype(np.float32)
    np.clip(frames, 0.0, 1.0, out=frames)
    return frames.reshape(T, H, W, 3)


def _envelope(scene: Scene, obj: ObjectTrack) -> np.ndarray:
    return flash_envelope(scene.times, obj.flashes)


def object_radii(scene: Scene, obj: ObjectTrack) -> np.ndarray:
    """``(T,)`` radius in pixels per frame (base radius times the pulse)."""
    return obj.radius * (1.0 + PULSE * _envelope(scene, obj).astype(np.float64))


def object_colors(scene: Scene, obj: ObjectTrack) -> np.ndarray:
    """``(T, 3)`` float32 colour per frame (flashes move it toward white)."""
    g = _envelope(scene, obj)[:, None]
    return (obj.color[None, :] + FLASH_WHITE * g * (1.0 - obj.color[None, :])).astype(np.float32)


def object_window(scene: Scene, obj: ObjectTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anti-aliased coverage of ``obj`` inside a per-frame square window around it.

    Returns:
        ``(alpha, y0, x0)``: alpha float32 ``(T, S, S)`` in [0, 1] (``clip(0.5 - sdf_px, 0, 1)``,
        so ``alpha > 0.5`` exactly where the pixel centre is inside the shape) and the integer
        top-left pixel ``(y0, x0)`` ``(T,)`` of each frame's window (may be negative or reach
        past the frame: callers pad). ``S`` covers the fully pulsed shape plus 2 pixels.
    """
    r = object_radii(scene, obj)  # (T,)
    size = int(np.ceil(2.0 * obj.radius * (1.0 + PULSE) * 1.01)) + 3
    x0 = np.floor(obj.centers[:, 0] - size / 2).astype(np.int64)
    y0 = np.floor(obj.centers[:, 1] - size / 2).astype(np.int64)
    grid = np.arange(size, dtype=np.float64) + 0.5
    u = (x0[:, None] + grid[None, :] - obj.centers[:, :1]) / r[:, None]  # (T, S)
    v = (y0[:, None] + grid[None, :] - obj.centers[:, 1:]) / r[:, None]  # (T, S)
    sdf = sample_sdf(obj.shape_name, u[:, None, :], v[:, :, None])  # (T, S, S) unit SDF
    sdf *= r.astype(np.float32)[:, None, None]
    np.subtract(np.float32(0.5), sdf, out=sdf)
    np.clip(sdf, 0.0, 1.0, out=sdf)
    return sdf, y0, x0


def _window_index(
    y0: np.ndarray, x0: np.ndarray, size: int, pad: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fancy-index triple ``(t, rows, cols)`` addressing each frame's window in a canvas padded
    by ``pad`` pixels on every side (broadcasting to ``(T, S, S)``)."""
    k = np.arange(size)
    t = np.arange(len(y0))[:, None, None]
    rows = (y0 + pad)[:, None, None] + k[None, :, None]
    cols = (x0 + pad)[:, None, None] + k[None, None, :]
    return t, rows, cols


def _pad_for(
    windows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], height: int, width: int
) -> int:
    """Padding that keeps every window inside the padded canvas."""
    pad = 0
    for alpha, y0, x0 in windows:
        size = alpha.shape[1]
        pad = max(pad, int(-y0.min()), int(-x0.min()),
                  int(y0.max()) + size - height, int(x0.max()) + size - width)
    return pad


def object_alpha(scene: Scene, obj: ObjectTrack) -> np.ndarray:
    """Full-frame anti-aliased coverage ``(T, H, W)`` float32 in [0, 1] of one object."""
    T, H, W = scene.num_frames, scene.height, scene.width
    alpha, y0, x0 = object_window(scene, obj)
    pad = _pad_for([(alpha, y0, x0)], H, W)
    canvas = np.zeros((T, H + 2 * pad, W + 2 * pad), dtype=np.float32)
    canvas[_window_index(y0, x0, alpha.shape[1], pad)] = alpha
    return canvas[:, pad : pad + H, pad : pad + W].copy()


def object_boxes(scene: Scene, obj: ObjectTrack) -> np.ndarray:
    """``(T, 4)`` float64 normalised boxes ``[x0, y0, x1, y1]`` per frame, clipped to [0, 1].

    The box is the shape's exact extent at the frame's (pulsed) radius and centre.
    """
    u0, v0, u1, v1 = shape_extent(obj.shape_name)
    r = object_radii(scene, obj)
    cx, cy = obj.centers[:, 0], obj.centers[:, 1]
    boxes = np.stack(
        [
            (cx + u0 * r) / scene.width,
            (cy + v0 * r) / scene.height,
            (cx + u1 * r) / scene.width,
            (cy + v1 * r) / scene.height,
        ],
        axis=1,
    )
    return np.clip(boxes, 0.0, 1.0)


def render_frames(
    scene: Scene,
    *,
    objects: Sequence[int] | None = None,
    background: bool = True,
) -> np.ndarray:
    """Render the video: uint8 ``(T, H, W, 3)``.

    Args:
        scene: the scene.
        objects: indices of the objects to draw (default: all), drawn in ``scene.z_order``.
        background: draw the background (else black), mainly for tests and visualisation.
    """
    T, H, W = scene.num_frames, scene.height, scene.width
    keep = set(range(len(scene.objects)) if objects is None else objects)
    drawn = [i for i in scene.z_order if i in keep]
    windows = {i: object_window(scene, scene.objects[i]) for i in drawn}
    pad = _pad_for(list(windows.values()), H, W)
    hp, wp = H + 2 * pad, W + 2 * pad
    canvas = np.zeros((T, hp, wp, 3), dtype=np.float32)
    if background:
        canvas[:, pad : pad + H, pad : pad + W] = render_background(scene)
    flat_canvas = canvas.reshape(T * hp * wp, 3)  # a view: writes go to canvas
    for i in drawn:  # back to front; each object touches only its (T, S, S) windows
        alpha, y0, x0 = windows[i]
        t, rows, cols = _window_index(y0, x0, alpha.shape[1], pad)
        flat = ((t * hp + rows) * wp + cols).reshape(-1)  # (T*S*S,) pixel ids, no repeats
        region = flat_canvas.take(flat, axis=0)  # (T*S*S, 3)
        color = object_colors(scene, scene.objects[i])  # (T, 3)
        a = alpha.reshape(-1, 1)
        region += a * (np.repeat(color, alpha.shape[1] * alpha.shape[2], axis=0) - region)
        flat_canvas[flat] = region
    frame = canvas[:, pad : pad + H, pad : pad + W]
    out = np.empty((T, H, W, 3), dtype=np.uint8)
    np.multiply(np.clip(frame, 0.0, 1.0), 255.0, out=frame)
    np.add(frame, 0.5, out=frame)
    out[...] = frame
    return out
