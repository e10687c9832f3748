"""A report as a list of blocks, rendered to Markdown and to one self-contained HTML page: the
one renderer of ``glocal eval --report`` / the demo's report (:mod:`glocal.eval.report`) and of
``glocal report`` (:mod:`glocal.study.report`).

Blocks: :class:`Heading`, :class:`Text`, :class:`Fields`, :class:`Table`, :class:`Image`. The HTML has its style
inline and every picture as a base64 ``data:`` URI: no scripts, no external files, it opens
offline and can be mailed as one file. Markdown links the pictures by relative path.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from ..runtime.files import png_data_uri

__all__ = ["Heading", "Text", "Fields", "Table", "Image", "Block", "to_markdown", "to_html"]


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Fields:
    """``key: value`` lines (a report's header): a bold-key list in Markdown, a ``<dl>`` in HTML."""

    items: dict[str, str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    path: Path  # a PNG
    caption: str


Block = Union[Heading, Text, Fields, Table, Image]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block], base: Path) -> str:
    """Markdown of ``blocks``; images linked relative to ``base`` (the folder of report.md)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Text):
            out.append(b.text)
        elif isinstance(b, Fields):
            out.append("\n".join(f"- **{k}**: {v}" for k, v in b.items.items()))
        elif isinstance(b, Table):
            if b.caption:
                out.append(f"*{b.caption}*")
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            rel = Path(b.path).resolve().relative_to(base.resolve()) if Path(b.path).resolve().is_relative_to(
                base.resolve()) else Path(b.path)
            out.append(f"![{b.caption}]({rel.as_posix()})\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}caption{text-align:left;font-style:italic}
img{max-width:100%}figure{margin:1em 0}figcaption{font-style:italic;color:#555}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}dd{margin:0}
.holds{background:#dff0d8}.does-not-hold{background:#f2dede}.inconclusive{background:#fcf8e3}"""

_VERDICT_CLASS = {"holds": "holds", "does not hold": "does-not-hold", "inconclusive": "inconclusive"}


def _td(text: str, tag: str = "td") -> str:
    cls = _VERDICT_CLASS.get(str(text).split(" (")[0])
    return f"<{tag}{f' class={cls!r}' if cls else ''}>{html.escape(str(text))}</{tag}>"


def to_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page of ``blocks`` (inline style, pictures as data URIs, no scripts)."""
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Fields):
            out.append("<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                                        for k, v in b.items.items()) + "</dl>")
        elif isinstance(b, Table):
            cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
            head = "".join(_td(h, "th") for h in b.header)
            rows = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in b.rows)
            out.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            out.append(f"<figure><img src='{png_data_uri(b.path)}' alt='{html.escape(b.caption, quote=True)}'>"
                       f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
