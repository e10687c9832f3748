"""Version-dependent PyAV behaviour handled by ``glocal.data.av_compat`` and the readers."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from glocal.data import av_compat
from glocal.data.io import _seconds


def test_open_keywords_per_version() -> None:
    assert av_compat.open_kwargs(18) == {"metadata_errors": "ignore"}
    assert av_compat.open_kwargs(19) == {}  # removed in PyAV 19: passing it is a TypeError there


def test_reformat_keywords_per_version() -> None:
    assert av_compat.reformat_kwargs(16) == {}
    assert av_compat.reformat_kwargs(17) == {"threads": 1}


def test_an_unset_time_base_gives_no_time() -> None:
    """PyAV 19 reports an unset time base as a falsy ``AVRational(0, 1)`` instead of None:
    a timestamp in it is unknown, not 0 s."""
    assert _seconds(90, Fraction(0, 1)) is None
    assert _seconds(90, None) is None
    assert _seconds(90, Fraction(1, 90)) == 1.0


@pytest.mark.parametrize("channels,name", [(0, "mono"), (1, "mono"), (2, "stereo"), (6, "5.1"), (8, "7.1")])
def test_channel_layout_by_count(channels: int, name: str) -> None:
    """``av.AudioLayout(int)`` is refused from PyAV 13: layouts are built by name."""
    layout = av_compat.channel_layout(channels)
    assert isinstance(layout, av.AudioLayout) and layout.name == name


def test_channel_layout_without_a_default() -> None:
    with pytest.raises(ValueError, match="no default channel layout for 9 channels"):
        av_compat.channel_layout(9)
