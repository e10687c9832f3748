"""``glocal localize``: the audio-visual heat map drawn over a video's frames.

For each video ``OUT/<stem>.mp4`` (every original frame with the nearest heat map overlaid, the
original audio track re-encoded as AAC) and ``OUT/<stem>.png`` (a contact sheet: ``frames`` frames
across time with the map, its peak, and -- where the dataset's annotations.json has them -- the
sounding object's box outline and mask contour, silent distractors' boxes), plus ``OUT/report.json``. Maps come from
:meth:`glocal.api.Encoder.localize` (centre crop of the clip; outside the crop nothing is drawn).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Range
from ..data.formats import VIDEO_EXTENSIONS
from ..errors import DataError
from ..eval.localization_gt import frame_index
from ..eval.source_masks import load_masks
from ..eval.usable import file_state, unusable_reason
from ..runtime.rundir import check_writable
from . import Encoder, Localization, load

__all__ = ["LocalizeOptions", "localize_files", "render", "contact_sheet", "BOX_COLOUR", "MASK_COLOUR", "PEAK_COLOUR",
           "DISTRACTOR_COLOUR"]

BOX_COLOUR = (0, 255, 0)  #: ground-truth box outline on the contact sheet
MASK_COLOUR = (255, 0, 255)  #: ground-truth mask contour
PEAK_COLOUR = (255, 255, 255)  #: cross at the map's peak
DISTRACTOR_COLOUR = (255, 128, 0)  #: boxes of silent distractors (when annotated)


@dataclass
class LocalizeOptions:
    """``key=value`` options of ``glocal localize``."""

    #: frames on the contact sheet
    frames: Annotated[int, Range(1)] = 6
    #: overlay opacity of the heat map
    alpha: Annotated[float, Range(0.0, 1.0)] = 0.5
    #: matplotlib colormap name
    colormap: str = "jet"
    #: uniformly spaced clips per video (default: ceil(duration / clip length))
    clips_per_video: Annotated[Optional[int], Range(1)] = None
    #: contact-sheet tile side in pixels (smaller frames are scaled up to it by an integer factor,
    #: larger ones scaled down to it)
    tile: Annotated[int, Range(16)] = 192
    #: draw the ground truth when annotations exist
    gt: bool = True
    #: write the overlay video (the sheet is always written)
    video: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"


# ---------------------------------------------------------------------------- inputs
def _video_files(src: Path) -> list[Path]:
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not files:
            raise DataError(f"no video files in {src} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
        return files
    return [src]


def _annotation(path: Path) -> tuple[dict[str, Any], Path] | None:
    """The video's entry of the nearest annotations.json above it (and that folder), if any."""
    for folder in list(path.resolve().parents)[:4]:
        ann = folder / "annotations.json"
        if ann.is_file():
            try:
                videos = json.loads(ann.read_text()).get("videos", {})
            except (OSError, ValueError):
                return None
            entry = videos.get(path.resolve().relative_to(folder).as_posix())
            return (entry, folder) if entry else None
    return None


def _decode(path: Path) -> tuple[np.ndarray, float, np.ndarray | None, int]:
    """All frames ``(N, H, W, 3)`` uint8, their fps, the audio ``(C, S)`` float32 (or None) and its rate.

    The overlay's AAC track is mono or stereo as the source's; a track of more channels (5.1, ...)
    is mixed down to mono (``C = 1``)."""
    import av

    from ..data.io import probe, read_audio

    info = probe(path)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    if not frames:
        raise DataError(f"{path}: no video frames")
    audio, rate = None, 0
    if info.has_audio:
        rate = int(info.audio_sample_rate)
        audio, _ = read_audio(path, sample_rate=rate, mono=info.audio_channels > 2)
    return np.stack(frames), float(info.fps or 8.0), audio, rate


# ---------------------------------------------------------------------------- drawing
def _heat_frame(loc: Localization, i: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Map ``i`` normalised to [0, 1] and upsampled into its crop of an ``h x w`` frame; the crop mask."""
    x0, y0, x1, y1 = loc.crop[i]
    c0, c1 = int(round(x0 * w)), max(int(round(x1 * w)), int(round(x0 * w)) + 1)
    r0, r1 = int(round(y0 * h)), max(int(round(y1 * h)), int(round(y0 * h)) + 1)
    m = loc.maps[i].astype(np.float64)
    m = (m - m.min()) / max(m.max() - m.min(), 1e-12)
    up = F.interpolate(torch.from_numpy(m)[None, None].float(), size=(r1 - r0, c1 - c0), mode="bilinear",
                       align_corners=False)[0, 0].clamp(0, 1).numpy()
    heat, inside = np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    heat[r0:r1, c0:c1], inside[r0:r1, c0:c1] = up, True
    return heat, inside


def _overlay(frame: np.ndarray, heat: np.ndarray, inside: np.ndarray, cmap: Any, alpha: float) -> np.ndarray:
    colour = cmap(heat)[..., :3] * 255.0
    out = frame.astype(np.float32)
    a = alpha * inside[..., None]
    return np.clip(out * (1 - a) + colour * a, 0, 255).astype(np.uint8)


def _nearest(times: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(times - t)))


def _gt_boxes(entry: Any) -> list[list[float]]:
    """Every box of one frame's ``source_boxes`` entry (a box, boxes per annotator, or lists of them)."""
    if not isinstance(entry, (list, tuple)) or not entry:
        return []
    if not isinstance(entry[0], (list, tuple)):
        return [list(map(float, entry))]
    return [b for e in entry for b in _gt_boxes(e)]


def _contour(mask: np.ndarray) -> np.ndarray:
    m = mask > 0.5
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def _resize_mask(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    return F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], size=(h, w),
                         mode="nearest")[0, 0].numpy()


class _Truth:
    def __init__(self, entry: dict[str, Any], root: Path) -> None:
        self.fps = float(entry.get("fps", 0) or 0)
        self.boxes = entry.get("source_boxes") or None
        self.distractors = [d["boxes"] for d in entry.get("distractors", []) or []
                            if isinstance(d, dict) and d.get("boxes")]
        self.masks = None
        if entry.get("source_masks"):
            try:
                self.masks = load_masks(root / entry["source_masks"])
            except DataError:
                self.masks = None

    def at(self, t: float, fps: float) -> tuple[list[list[float]], np.ndarray | None]:
        f = self.fps or fps
        boxes = _gt_boxes(self.boxes[frame_index(t, f, len(self.boxes))]) if self.boxes else []
        mask = self.masks[frame_index(t, f, len(self.masks))] if self.masks is not None else None
        return boxes, mask

    def distractor_boxes(self, t: float, fps: float) -> list[list[float]]:
        f = self.fps or fps
        return [b for d in self.distractors for b in _gt_boxes(d[frame_index(t, f, len(d))])]


def render(loc: Localization, frames: np.ndarray, fps: float, opts: LocalizeOptions,
           truth: _Truth | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The overlay frames ``(N, H', W', 3)`` (even size), the contact sheet ``(H, W, 3)`` and per-tile facts."""
    import matplotlib
    from PIL import Image, ImageDraw

    cmap = matplotlib.colormaps[opts.colormap]
    n, h, w, _ = frames.shape
    he, we = h - h % 2, w - w % 2
    video = np.empty((n, he, we, 3), np.uint8)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in range(n):
        k = _nearest(loc.times, i / fps)
        if k not in cache:
            cache[k] = _heat_frame(loc, k, h, w)
        video[i] = _overlay(frames[i], *cache[k], cmap, opts.alpha)[:he, :we]
    picks = np.unique(np.linspace(0, len(loc.times) - 1, min(opts.frames, len(loc.times))).round().astype(int))
    # small frames: scaled up by an integer factor (crisp pixels); frames larger than the tile
    # (real footage, 1280x720): scaled down to it, so the sheet stays ``frames`` tiles wide
    side = max(h, w)
    shrink = side > opts.tile
    scale: float = opts.tile / side if shrink else max(1, int(np.ceil(opts.tile / side)))
    th, tw, label = max(1, round(h * scale)), max(1, round(w * scale)), 14
    sheet = Image.new("RGB", (tw * len(picks), th + label), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    tiles = []
    for j, k in enumerate(picks.tolist()):
        t = float(loc.times[k])
        fi = min(n - 1, max(0, int(round(t * fps))))
        heat, inside = cache.get(k) or _heat_frame(loc, k, h, w)
        img = _overlay(frames[fi], heat, inside, cmap, opts.alpha)
        peak = np.unravel_index(int(np.argmax(np.where(inside, heat, -1))), heat.shape)
        fact: dict[str, Any] = {"time": round(t, 3), "frame": fi, "peak_xy": [(peak[1] + 0.5) / w, (peak[0] + 0.5) / h]}
        boxes, mask = truth.at(t, fps) if truth is not None and opts.gt else ([], None)
        if mask is not None:
            mk = _resize_mask(mask, h, w)
            if not shrink:
                img[_contour(mk)] = MASK_COLOUR
            fact["peak_on_mask"] = bool(mk[peak] > 0.5)
        tile = Image.fromarray(img).resize((tw, th), Image.LANCZOS if shrink else Image.NEAREST)
        if mask is not None and shrink:  # the contour drawn at the tile's size, one pixel wide
            arr = np.array(tile)
            arr[_contour(_resize_mask(mask, th, tw))] = MASK_COLOUR
            tile = Image.fromarray(arr)
        d = ImageDraw.Draw(tile)
        others = truth.distractor_boxes(t, fps) if truth is not None and opts.gt else []
        for b in others:
            d.rectangle([b[0] * tw, b[1] * th, b[2] * tw - 1, b[3] * th - 1], outline=DISTRACTOR_COLOUR, width=1)
        if others:
            px, py = fact["peak_xy"]
            fact["peak_in_distractor"] = any(b[0] <= px <= b[2] and b[1] <= py <= b[3] for b in others)
        for b in boxes:
            d.rectangle([b[0] * tw, b[1] * th, b[2] * tw - 1, b[3] * th - 1], outline=BOX_COLOUR, width=2)
        if boxes:
            px, py = fact["peak_xy"]
            fact["peak_in_box"] = any(b[0] <= px <= b[2] and b[1] <= py <= b[3] for b in boxes)
        cx, cy = (peak[1] + 0.5) * scale, (peak[0] + 0.5) * scale
        d.line([cx - 5, cy, cx + 5, cy], fill=PEAK_COLOUR, width=1)
        d.line([cx, cy - 5, cx, cy + 5], fill=PEAK_COLOUR, width=1)
        sheet.paste(tile, (j * tw, label))
        draw.text((j * tw + 3, 1), f"t={t:.2f}s", fill=(255, 255, 255))
        tiles.append(fact)
    return video, np.asarray(sheet), {"tiles": tiles}


def contact_sheet(enc: Encoder, path: str | Path, opts: LocalizeOptions | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The contact sheet ``(H, W, 3)`` uint8 of one video (ground truth drawn where its dataset's
    annotations.json has it) and its facts (``tiles``, ``ground_truth``); a file without frames or
    audio is a one-line :class:`DataError`."""
    opts = opts or LocalizeOptions()
    path = Path(path)
    reason = unusable_reason(file_state(str(path)), ("video", "audio"))
    if reason is not None:
        raise DataError(f"{path}: {reason}")
    loc = enc.localize(str(path), clips_per_video=opts.clips_per_video)
    frames, fps, _, _ = _decode(path)
    found = _annotation(path)
    truth = _Truth(*found) if found else None
    _, sheet, facts = render(loc, frames, fps, opts, truth)
    return sheet, {**facts, "ground_truth": truth is not None}


# ---------------------------------------------------------------------------- command
def localize_files(src: str | Path, checkpoint: str | Path, out: str | Path,
                   opts: LocalizeOptions | None = None, *, encoder: Encoder | None = None) -> dict[str, Any]:
    """``glocal localize``: an overlay ``.mp4`` and a contact-sheet ``.png`` per video into ``out``;
    returns (and writes as ``report.json``) what was made and what was skipped."""
    from PIL import Image

    from ..data.av_writer import write_mp4

    opts = opts or LocalizeOptions()
    out = Path(out)
    src = Path(src).expanduser()
    if not src.exists():
        raise DataError(f"not found: {src}")
    files = _video_files(src)
    check_writable(out, "--out")
    enc = encoder or load(checkpoint, opts.device)
    enc.require_av()
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "options": asdict(opts), "videos": [], "skipped": {}}
    for path in files:
        reason = unusable_reason(file_state(str(path)), ("video", "audio"))
        try:
            if reason is not None:
                raise DataError(reason)
            loc = enc.localize(str(path), clips_per_video=opts.clips_per_video)
            frames, fps, audio, rate = _decode(path)
        except DataError as exc:
            msg = str(exc).splitlines()[0]
            report["skipped"][str(path)] = msg
            print(f"glocal localize: skipped {path}: {msg}", file=sys.stderr)
            continue
        found = _annotation(path)
        truth = _Truth(*found) if found else None
        video, sheet, facts = render(loc, frames, fps, opts, truth)
        stem = path.stem if src.is_file() else path.relative_to(src).with_suffix("").as_posix().replace("/", "__")
        entry: dict[str, Any] = {"video": str(path), "maps": int(len(loc.maps)), "map_size": list(loc.maps.shape[1:]),
                                 "ground_truth": truth is not None, **facts}
        if opts.video:
            write_mp4(out / f"{stem}.mp4", video, fps, audio, rate or None)
            entry["mp4"] = f"{stem}.mp4"
        Image.fromarray(sheet).save(out / f"{stem}.png", optimize=True)
        entry["png"] = f"{stem}.png"
        report["videos"].append(entry)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
