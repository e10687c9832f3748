"""The key=value commands name their options in --help without restating defaults; the names
listed must be exactly the fields of the dataclass that build() makes from them."""

from __future__ import annotations

import dataclasses
import re

import pytest

from glocal.api.embed import EmbedOptions
from glocal.api.localize import LocalizeOptions
from glocal.api.search import SearchOptions
from glocal.cli import build_parser
from glocal.data.reencode import EncodeParams


@pytest.mark.parametrize("command, options", [("embed", EmbedOptions), ("localize", LocalizeOptions),
                                              ("search", SearchOptions),
                                              ("prepare", EncodeParams)])
def test_help_lists_exactly_the_option_fields(command, options):
    sub = next(a for a in build_parser()._actions if a.dest == "command" or getattr(a, "choices", None))
    description = " ".join(sub.choices[command].description.split())
    listed = re.search(r"Options as key=value.*?: ([a-z_, ]+)\.$", description).group(1)
    assert [n.strip() for n in listed.split(",")] == [f.name for f in dataclasses.fields(options)]
