"""The generated audio-visual world: a procedural, seed-deterministic dataset of short videos
with sound (H.264 + AAC ``.mp4``) and full ground truth, written in the same documented formats
as users' datasets (``docs/world_format.md``).

Public API: :class:`WorldConfig` and :func:`generate_world`; the building blocks
(:func:`~.scene.sample_scene`, :func:`~.render_video.render_frames`,
:func:`~.render_audio.render_audio`, :func:`~.world.plan_world`) are importable from their
modules for tests and visualisation.
"""

from __future__ import annotations

from .config import RHYTHMS, SHAPES, WorldConfig
from .world import generate_world

__all__ = ["WorldConfig", "generate_world", "SHAPES", "RHYTHMS"]
