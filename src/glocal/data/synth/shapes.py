"""Signed-distance functions of the shape classes and a fast look-up renderer.

Every shape lives in "unit" coordinates ``(u, v)`` (u to the right, v downwards) with its
extent inside ``[-1, 1]^2``; an object of radius ``r`` pixels is the unit shape scaled by ``r``.
The signed distance is negative inside. For rendering, each shape's SDF is tabulated once per
process on a fine grid (:func:`sdf_table`) and sampled with bilinear interpolation, which keeps
rendering of a whole ``(T, H, W)`` video a handful of vectorised numpy operations.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import SHAPES

__all__ = ["unit_sdf", "sdf_table", "shape_extent", "sample_sdf", "LUT_HALF", "LUT_SIZE"]

#: The table covers ``[-LUT_HALF, LUT_HALF]^2`` in unit coordinates; outside it the clamped
#: border value (>= 0.3, i.e. outside the shape) is used.
LUT_HALF = 1.35
#: Table resolution per axis (spacing ``2 * LUT_HALF / (LUT_SIZE - 1)`` ~ 0.005 units).
LUT_SIZE = 541


def _polygon_sdf(u: np.ndarray, v: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Exact signed distance of points ``(u, v)`` (any equal shapes) to a simple polygon.

    ``verts`` is ``(K, 2)``. Distance = min over edges; sign from the even-odd crossing rule.
    """
    d2 = np.full(u.shape, np.inf)
    inside = np.zeros(u.shape, dtype=bool)
    k = len(verts)
    for i in range(k):  # loop over the (<= 12) edges, vectorised over points
        ax, ay = verts[i]
        bx, by = verts[(i + 1) % k]
        ex, ey = bx - ax, by - ay
        wx, wy = u - ax, v - ay
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dx, dy = wx - ex * h, wy - ey * h
        np.minimum(d2, dx * dx + dy * dy, out=d2)
        crosses = (ay > v) != (by > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (v - ay) * ex / np.where(ey == 0, 1.0, ey)
        inside ^= crosses & (u < x_at)
    return np.where(inside, -1.0, 1.0) * np.sqrt(d2)


def _regular_polygon(n: int, radius: float, phase: float) -> np.ndarray:
    ang = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(ang), radius * np.sin(ang)], axis=1)


def _star(points: int, outer: float, inner: float) -> np.ndarray:
    ang = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    rad = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def _rect(hx: float, hy: float) -> np.ndarray:
    return np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])


def unit_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exact-ish signed distance (unit coordinates) of shape ``shape`` at points ``(u, v)``.

    ``u`` and ``v`` are broadcastable float arrays; the result has their broadcast shape.
    """
    u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
    if shape == "circle":
        return np.hypot(u, v) - 0.95
    if shape == "ring":
        return np.abs(np.hypot(u, v) - 0.7) - 0.28
    if shape == "crescent":
        outer = np.hypot(u, v) - 0.95
        bite = np.hypot(u - 0.45, v + 0.2) - 0.75
        return np.maximum(outer, -bite)
    if shape == "square":
        verts = _rect(0.8, 0.8)
    elif shape == "triangle":
        verts = _regular_polygon(3, 1.0, -np.pi / 2) + np.array([0.0, 0.2])
    elif shape == "diamond":
        verts = _regular_polygon(4, 1.0, -np.pi / 2)
    elif shape == "cross":
        verts = np.array(
            [[-0.3, -0.95], [0.3, -0.95], [0.3, -0.3], [0.95, -0.3], [0.95, 0.3], [0.3, 0.3],
             [0.3, 0.95], [-0.3, 0.95], [-0.3, 0.3], [-0.95, 0.3], [-0.95, -0.3], [-0.3, -0.3]]
        )
    elif shape == "star":
        verts = _star(5, 1.0, 0.45) + np.array([0.0, 0.1])
    elif shape == "hbar":
        verts = _rect(1.0, 0.32)
    elif shape == "vbar":
        verts = _rect(0.32, 1.0)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
    return _polygon_sdf(u, v, verts)


@lru_cache(maxsize=None)
def sdf_table(shape: str) -> np.ndarray:
    """Tabulated unit SDF of ``shape``: float32 ``(LUT_SIZE, LUT_SIZE)`` indexed ``[v, u]``."""
    g = np.linspace(-LUT_HALF, LUT_HALF, LUT_SIZE)
    table = unit_sdf(shape, g[None, :], g[:, None]).astype(np.float32)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=None)
def shape_extent(shape: str) -> tuple[float, float, float, float]:
    """Bounding box ``(u0, v0, u1, v1)`` of the shape's interior in unit coordinates."""
    table = sdf_table(shape)
    g = np.linspace(-LUT_HALF, LUT_HALF, LUT_SIZE)
    inside = table <= 0
    cols = np.flatnonzero(inside.any(axis=0))
    rows = np.flatnonzero(inside.any(axis=1))
    step = g[1] - g[0]
    # The true boundary lies within half a grid step outside the last inside sample.
    return (
        float(g[cols[0]] - step / 2),
        float(g[rows[0]] - step / 2),
        float(g[cols[-1]] + step / 2),
        float(g[rows[-1]] + step / 2),
    )


def sample_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinearly interpolated unit SDF of ``shape`` at ``(u, v)`` (broadcastable arrays).

    Typical use: ``u`` of shape ``(T, 1, W)`` and ``v`` of shape ``(T, H, 1)`` give a
    ``(T, H, W)`` float32 result. Points outside the table take the clamped border value.
    """
    table = sdf_table(shape).ravel()
    scale = np.float32((LUT_SIZE - 1) / (2 * LUT_HALF))
    half = np.float32(LUT_HALF)
    fu = np.clip((np.asarray(u, dtype=np.float32) + half) * scale, 0, LUT_SIZE - 1.001)
    fv = np.clip((np.asarray(v, dtype=np.float32) + half) * scale, 0, LUT_SIZE - 1.001)
    iu = fu.astype(np.intp)
    iv = fv.astype(np.intp)
    au = (fu - iu).astype(np.float32)
    av = (fv - iv).astype(np.float32)
    flat = iv * LUT_SIZE + iu  # broadcast to the output shape
    t00 = table.take(flat)
    t01 = table.take(flat + 1)
    t10 = table.take(flat + LUT_SIZE)
    t11 = table.take(flat + (LUT_SIZE + 1))
    top = t00 + (t01 - t00) * au
    bot = t10 + (t11 - t10) * au
    return top + (bot - top) * av
