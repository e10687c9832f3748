"""User-facing errors.

Anything raised as :class:`GlocalError` is a problem with the user's input (a file, a manifest
row, a config value) and is printed by the CLI as one clear message without a traceback.
Programming errors stay ordinary exceptions so that they keep their tracebacks.
"""

from __future__ import annotations


class GlocalError(Exception):
    """An error caused by user input; the message must name the culprit and what to do."""


class ConfigError(GlocalError):
    """A bad config key or value."""


class DataError(GlocalError):
    """A missing, broken or malformed data file, folder or manifest row."""
