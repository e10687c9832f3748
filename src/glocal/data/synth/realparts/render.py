"""Rendering of a :class:`~.scene.RealScene`: frames, per-animal masks and boxes, and audio.

Photos are resampled with Pillow's antialiased resize (Pillow comes with matplotlib, a glocal
dependency) at sub-pixel positions and composited with premultiplied alpha, back to front.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ..render_audio import _coloured_noise
from .scene import PULSE_HOP, PULSE_SWELL, PULSE_TAU, RealScene
from .sources import load_sound, load_stamp, load_texture

__all__ = ["RenderedVideo", "pulse_envelope", "place_stamp", "render_video", "render_audio"]


@dataclass(frozen=True)
class RenderedVideo:
    """``frames`` uint8 ``(T, H, W, 3)``; ``masks`` uint8 ``(A, T, H, W)`` visible pixels of each
    animal (scene order, 0 = source); ``boxes`` float ``(A, T, 4)`` normalised extent of each
    animal's own alpha > 0.5 (occluded parts included)."""

    frames: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray


def pulse_envelope(times: np.ndarray, pulses: np.ndarray) -> np.ndarray:
    """``(T,)`` in [0, 1]: ``exp(-(t - p) / PULSE_TAU)`` of the latest pulse ``p <= t``, so the
    peak is the first frame at or after each pulse."""
    env = np.zeros(times.shape, dtype=np.float64)
    for p in pulses:
        d = times - p
        env = np.maximum(env, np.where(d >= 0, np.exp(-np.maximum(d, 0) / PULSE_TAU), 0.0))
    return env


@lru_cache(maxsize=64)
def _stamp_image(stamps: str, stem: str, flip: bool) -> tuple[Image.Image, int]:
    """Stamp as a padded uint8 RGBA Pillow image and its padding (transparent pixels per side)."""
    rgba = load_stamp(stamps, stem)
    if flip:
        rgba = rgba[:, ::-1]
    pad = 24
    arr = np.zeros((rgba.shape[0] + 2 * pad, rgba.shape[1] + 2 * pad, 4), dtype=np.uint8)
    arr[pad:-pad, pad:-pad] = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(arr, "RGBA"), pad


def place_stamp(stamps: str, stem: str, flip: bool, cx: float, cy: float, size: float,
                height: int, width: int) -> np.ndarray:
    """The stamp with its longer side ``size`` px centred at pixel ``(cx, cy)``, as a float32
    premultiplied RGBA layer ``(H, W, 4)`` (zero outside the stamp)."""
    img, pad = _stamp_image(stamps, stem, flip)
    h, w = img.height - 2 * pad, img.width - 2 * pad
    s = size / max(h, w)  # frame px per stamp px
    ox, oy = cx - w * s / 2, cy - h * s / 2
    x0, y0 = max(int(np.floor(ox)) - 1, 0), max(int(np.floor(oy)) - 1, 0)
    x1, y1 = min(int(np.ceil(ox + w * s)) + 1, width), min(int(np.ceil(oy + h * s)) + 1, height)
    layer = np.zeros((height, width, 4), dtype=np.float32)
    if x1 <= x0 or y1 <= y0:
        return layer
    box = ((x0 - ox) / s + pad, (y0 - oy) / s + pad, (x1 - ox) / s + pad, (y1 - oy) / s + pad)
    box = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], img.width), min(box[3], img.height))
    patch = np.asarray(img.resize((x1 - x0, y1 - y0), Image.Resampling.BICUBIC, box=box), dtype=np.float32) / 255.0
    patch[..., :3] *= patch[..., 3:]
    layer[y0:y1, x0:x1] = patch
    return layer


def _background(scene: RealScene, textures: str) -> np.ndarray:
    """``(T, H, W, 3)`` float32 panning, tinted texture crop."""
    cfg, bg = scene.cfg, scene.background
    tex = np.rot90(load_texture(textures, bg.texture), bg.rot90)
    if bg.flip:
        tex = tex[:, ::-1]
    img = Image.fromarray(np.ascontiguousarray(tex, dtype=np.float32), "F")
    cw, ch = cfg.width * bg.zoom, cfg.height * bg.zoom
    out = np.empty((cfg.num_frames, cfg.height, cfg.width, 3), dtype=np.float32)
    tint = np.asarray(bg.tint, dtype=np.float32)
    for k, t in enumerate(scene.times):
        x = float(np.clip(bg.start[0] + bg.velocity[0] * t, 0, img.width - cw))
        y = float(np.clip(bg.start[1] + bg.velocity[1] * t, 0, img.height - ch))
        g = np.asarray(img.resize((cfg.width, cfg.height), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch)))
        g = np.clip((g - 0.5) * bg.contrast + 0.5, 0, 1) * bg.brightness
        out[k] = g[..., None] * tint
    return out


def _over(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    return base * (1 - layer[..., 3:]) + layer[..., :3]


def _box(alpha: np.ndarray) -> list[float]:
    """Normalised pixel extent of ``alpha > 0.5`` (``[0, 0, 0, 0]`` when empty)."""
    on = alpha > 0.5
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    h, w = alpha.shape
    return [cols[0] / w, rows[0] / h, (cols[-1] + 1) / w, (rows[-1] + 1) / h]


def render_video(scene: RealScene, stamps: str, textures: str) -> RenderedVideo:
    """Frames, masks and boxes of ``scene``."""
    cfg = scene.cfg
    H, W, T = cfg.height, cfg.width, cfg.num_frames
    frames = _background(scene, textures)
    bg = scene.background
    n = len(scene.animals)
    masks = np.zeros((n, T, H, W), dtype=np.uint8)
    boxes = np.zeros((n, T, 4), dtype=np.float64)
    envs = [pulse_envelope(scene.times, a.pulses) for a in scene.animals]
    for k, t in enumerate(scene.times):
        shift = (-bg.velocity[0] * t / bg.zoom, -bg.velocity[1] * t / bg.zoom)
        img = frames[k]
        for p in scene.plants:
            img = _over(img, place_stamp(stamps, p.stem, p.flip, p.center[0] + shift[0],
                                         p.center[1] + shift[1], p.size, H, W))
        alphas = {}
        for i in scene.depth:
            a = scene.animals[i]
            e = envs[i][k]
            size = a.size * (1 + PULSE_SWELL * e)
            cx, cy = a.centers[k, 0], a.centers[k, 1] - PULSE_HOP * a.size * e
            layer = place_stamp(stamps, a.stem, a.flip, cx, cy, size, H, W)
            img = _over(img, layer)
            alphas[i] = layer[..., 3]
        for pos, i in enumerate(scene.depth):
            visible = alphas[i].copy()
            for j in scene.depth[pos + 1 :]:
                visible *= 1 - alphas[j]
            masks[i, k] = visible > 0.5
            boxes[i, k] = _box(alphas[i])
        frames[k] = img
    return RenderedVideo(np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8), masks, boxes)


def render_audio(scene: RealScene, stamps: str) -> np.ndarray:
    """float32 mono ``(num_samples,)``: the recorded sound at each event (3 ms fade in, 30 ms
    fade out, per-event gain) plus coloured noise at ``snr_db``, peak-normalised to ``peak``."""
    cfg = scene.cfg
    sr, n = cfg.sample_rate, cfg.num_samples
    sound = load_sound(stamps, scene.sound_stem, sr)
    sig = np.zeros(n, dtype=np.float64)
    for (on, off), g in zip(scene.events, scene.gains):
        i0 = int(round(on * sr))
        seg = sound[: max(1, min(int(round((off - on) * sr)), n - i0))].astype(np.float64)
        ramp_in, ramp_out = min(len(seg), int(0.003 * sr)), min(len(seg), int(0.03 * sr))
        seg[:ramp_in] *= np.linspace(0, 1, ramp_in, endpoint=False)
        seg[len(seg) - ramp_out :] *= np.linspace(1, 0, ramp_out)
        sig[i0 : i0 + len(seg)] += g * seg
    rng = np.random.default_rng(scene.noise_seed)
    noise = _coloured_noise(rng, n, sr, scene.noise_alpha)
    p_sig = float(np.mean(sig**2))
    mix = sig + noise * np.sqrt(p_sig / 10 ** (scene.snr_db / 10))
    return (mix * scene.peak / max(float(np.abs(mix).max()), 1e-9)).astype(np.float32)
