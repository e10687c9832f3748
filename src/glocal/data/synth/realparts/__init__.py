"""The real-parts development set: real animal photographs and their real recorded sounds
(Debian ``tuxpaint-stamps-default``) composited over real-photo textures, written in the
generated world's layout plus per-frame masks (``docs/real_parts.md``).

Public API: :class:`RealPartsConfig`, :func:`generate_real_parts`, :func:`find_stamps`,
:func:`find_textures`, :data:`RESERVED_WORDS` / :func:`is_reserved`.
"""

from __future__ import annotations

from .config import RealPartsConfig
from .generate import generate_real_parts
from .sources import CATALOGUE, DEFAULT_CLASSES, RESERVED_WORDS, find_stamps, find_textures, is_reserved

__all__ = ["RealPartsConfig", "generate_real_parts", "find_stamps", "find_textures", "RESERVED_WORDS",
           "is_reserved", "CATALOGUE", "DEFAULT_CLASSES"]
