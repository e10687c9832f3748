"""Pictures of a search: the query and its ranked hits as one PNG contact sheet or one HTML page.

:func:`render_sheet` draws a row of square tiles: the query on the left (a video: its middle frame;
a sound: its log-mel spectrogram, time left to right, low frequencies at the bottom), then one tile per
hit (its middle frame) with its rank, cosine score and label. A file that is missing or cannot be
decoded becomes a grey tile with its name, never an error, so a sheet of an index whose files moved
still renders. :func:`sheet_html` is the same as a self-contained page (every image inline as a
base64 PNG). Both take plain values (paths, :class:`SheetItem` s), so a report can draw a retrieval
example without the command line.
"""

from __future__ import annotations

import html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..runtime.files import png_data_uri

__all__ = ["SheetItem", "query_picture", "middle_frame", "sound_picture", "render_sheet", "sheet_html", "png_bytes"]

GREY = (96, 96, 96)  #: a missing file's tile
QUERY = (40, 90, 220)  #: the query tile's frame
HIT = (160, 160, 160)  #: a hit tile's frame


@dataclass(frozen=True)
class SheetItem:
    """One tile of a sheet: the media file, its caption lines (e.g. ``"#1 0.93"``, a label)."""

    path: str
    caption: tuple[str, ...] = ()


def middle_frame(path: str | os.PathLike) -> np.ndarray | None:
    """The frame in the middle of a video, uint8 ``(H, W, 3)``; None when it cannot be read."""
    from ..data.io import probe, read_clip
    from ..errors import DataError

    try:
        info = probe(path)
        if not info.has_video:
            return None
        clip = read_clip(path, max(0.0, info.duration / 2), 1, float(info.fps or 1.0), read_audio=False)
        return np.ascontiguousarray(clip.frames[0])
    except (DataError, OSError, ValueError):
        return None


def sound_picture(path: str | os.PathLike, sample_rate: int = 16000, n_mels: int = 64) -> np.ndarray | None:
    """The log-mel spectrogram of a file's (mono) audio as a uint8 ``(n_mels, S, 3)`` picture (the
    ``glcm`` log-mel preset; magma colours over the top 80 dB, low frequencies at the bottom); None
    when it has no readable audio."""
    import matplotlib
    import torch

    from ..data.audio_frontend import build_logmel
    from ..data.io import read_audio
    from ..errors import DataError

    try:
        wave, _ = read_audio(path, sample_rate=sample_rate)
    except (DataError, OSError, ValueError):
        return None
    x = torch.from_numpy(np.asarray(wave, dtype=np.float32).reshape(1, -1))
    if x.shape[1] < sample_rate // 10:
        return None
    with torch.no_grad():
        db = build_logmel("glcm", sample_rate, n_mels=n_mels)(x)[0].float() * (10 / np.log(10))  # (F, S) dB
    top = float(db.max())
    level = (db.clamp(min=top - 80) - (top - 80)) / 80  # [0, 1]
    rgb = matplotlib.colormaps["magma"](level.flip(0).numpy())[..., :3]
    return (rgb * 255).astype(np.uint8)


def query_picture(path: str | os.PathLike, modality: str) -> np.ndarray | None:
    """What stands for a query: a video's middle frame, a sound's spectrogram (None: unreadable)."""
    return sound_picture(path) if modality == "audio" else middle_frame(path)


def _tile(picture: np.ndarray | None, name: str, caption: Sequence[str], tile: int, border: tuple[int, int, int]):
    from PIL import Image, ImageDraw

    line = 12
    img = Image.new("RGB", (tile, tile + line * max(1, len(caption)) + 4), (255, 255, 255))
    if picture is None:
        inner = Image.new("RGB", (tile, tile), GREY)
        d = ImageDraw.Draw(inner)
        d.text((4, tile // 2 - 12), "missing:", fill=(255, 255, 255))
        d.text((4, tile // 2), name[-(tile // 6):], fill=(255, 255, 255))
    else:
        inner = Image.fromarray(picture).resize((tile, tile), Image.BILINEAR)
    img.paste(inner, (0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, tile - 1, tile - 1], outline=border, width=3)
    for i, text in enumerate(caption):
        d.text((3, tile + 2 + i * line), text[: tile // 6], fill=(0, 0, 0))
    return img


def _picture(cache: dict[str, np.ndarray | None], path: str, modality: str) -> np.ndarray | None:
    key = f"{modality}:{path}"
    if key not in cache:
        cache[key] = query_picture(path, modality) if Path(path).is_file() else None
    return cache[key]


def render_sheet(query: SheetItem, query_modality: str, hits: Sequence[SheetItem], *, tile: int = 128,
                 pictures: dict[str, np.ndarray | None] | None = None) -> np.ndarray:
    """The contact sheet uint8 ``(H, W, 3)``: the query tile (blue frame; ``query_modality`` video |
    audio picks its picture), a gap, then one tile per hit (grey frame). ``pictures`` caches the
    pictures by path (filled in as they are read)."""
    from PIL import Image

    cache = {} if pictures is None else pictures
    tiles = [_tile(_picture(cache, query.path, query_modality), Path(query.path).name, query.caption, tile, QUERY)]
    tiles += [_tile(_picture(cache, h.path, "video"), Path(h.path).name, h.caption, tile, HIT) for h in hits]
    gap = tile // 4
    height = max(t.height for t in tiles)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap + 2 * len(tiles), height), (255, 255, 255))
    x = 0
    for i, t in enumerate(tiles):
        sheet.paste(t, (x, 0))
        x += t.width + 2 + (gap if i == 0 else 0)
    return np.asarray(sheet)


def png_bytes(picture: np.ndarray) -> bytes:
    """A uint8 ``(H, W, 3)`` picture as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def sheet_html(query: SheetItem, query_modality: str, hits: Sequence[SheetItem], *, title: str = "glocal search",
               tile: int = 160, pictures: dict[str, np.ndarray | None] | None = None) -> str:
    """A self-contained HTML page of the same tiles as :func:`render_sheet` (images inline)."""
    cache = {} if pictures is None else pictures

    def figure(item: SheetItem, modality: str, cls: str) -> str:
        img = _tile(_picture(cache, item.path, modality), Path(item.path).name, (), tile, QUERY if cls == "query" else HIT)
        src = png_data_uri(png_bytes(np.asarray(img)[:tile, :tile]))
        caption = "<br>".join(html.escape(c) for c in item.caption)
        return (f'<figure class="{cls}"><img src="{src}" width="{tile}" height="{tile}" '
                f'alt="{html.escape(Path(item.path).name)}"><figcaption>{caption}<br><small>'
                f'{html.escape(item.path)}</small></figcaption></figure>')

    body = figure(query, query_modality, "query") + "".join(figure(h, "video", "hit") for h in hits)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;margin:1em}main{display:flex;flex-wrap:wrap;gap:8px}"
            "figure{margin:0;width:" + str(tile) + "px;font-size:12px;word-break:break-all}"
            "figure.query img{outline:3px solid #285adc}figure.query{margin-right:24px}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><main>{body}</main></body></html>\n")
