"""Where the real media of the real-parts set come from, and how they are read.

* Animal photos and recorded animal sounds: Debian's ``tuxpaint-stamps-default`` (GPL-2+),
  a folder tree of PNG cut-outs with alpha; a stamp ``stem.png`` may have its recorded sound
  ``stem.ogg`` beside it (``stem_desc*.ogg`` are spoken descriptions and are never used;
  ``cartoon/`` folders hold drawings and are skipped).
* Background textures: the real photographs ``grass.png``, ``gravel.png`` and ``brick.png``
  bundled in the scikit-image wheel on PyPI (BSD-3; only the wheel's data files are read,
  scikit-image is never imported or installed).

Both are found in a given folder, an environment variable or a cache folder, and fetched into the
cache with the ordinary package clients (``apt-get download`` + ``dpkg -x``; ``pip download``)
when missing. Only the generator calls this; nothing in glocal downloads at run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from glocal.errors import DataError

__all__ = [
    "RESERVED_WORDS",
    "is_reserved",
    "CATALOGUE",
    "DEFAULT_CLASSES",
    "BACKGROUND_STEMS",
    "TEXTURE_NAMES",
    "cache_root",
    "find_stamps",
    "find_textures",
    "stamp_path",
    "load_stamp",
    "load_sound",
    "load_texture",
]

#: Animals reserved for held-out evaluation, with their near-duplicates. A stamp whose stem
#: contains any of these words (``dromedary``, ``rabbit_little``, ``rabbit-2``, ``rat`` ...) is
#: never read by the generator.
RESERVED_WORDS: tuple[str, ...] = (
    "bison", "blackbird", "camel", "crow", "duck", "ferret", "horse", "lark", "mouse", "rabbit",
    "dromedary", "drake", "rat",
)


def is_reserved(stem: str) -> bool:
    """True when a stamp stem (file name without extension) contains a reserved word.

    Deliberately broad: ``crowned_crane`` and ``pirate`` are excluded too (they contain ``crow``
    and ``rat``), so no near-duplicate of a held-out animal can slip in.
    """
    s = stem.lower()
    return any(word in s for word in RESERVED_WORDS)


#: Classes available to the generator: name -> (photo stems, sound stems). Every photo is a real
#: photograph (checked by eye) and every sound a recorded ``stem.ogg`` of that animal.
CATALOGUE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dog": (("dog",), ("dog",)),
    "cow": (("cow", "cow_white"), ("cow", "cow_white")),
    "sheep": (("sheep", "sheep_lamb"), ("sheep", "sheep_lamb")),
    "pig": (("pig", "pig_golden", "pig_golden2"), ("pig", "pig_golden", "pig_golden2")),
    "rooster": (("rooster",), ("rooster",)),
    "owl": (("owl",), ("owl",)),
    "lion": (("lion", "lion-2"), ("lion",)),
    "elephant": (("elephant",), ("elephant",)),
    "frog": (("frog", "frog-1"), ("frog",)),
    "goat": (("goat",), ("goat",)),
    "gorilla": (("gorilla",), ("gorilla",)),
    "turkey": (("turkey",), ("turkey",)),
    "donkey": (("donkey", "donkey_eating"), ("donkey",)),
    "tiger": (("tiger", "tiger_sumatran"), ("tiger",)),
    "seagull": (("seagull",), ("seagull",)),
    "hen": (("hen",), ("hen",)),
    "bear": (("bear",), ("bear",)),
    "orca": (("orca",), ("orca",)),
}

#: The default ten classes: distinct photos and distinct recorded sounds.
DEFAULT_CLASSES: tuple[str, ...] = (
    "dog", "cow", "sheep", "pig", "rooster", "owl", "lion", "elephant", "frog", "goat",
)

#: Silent real-photo clutter drawn on the background (plants, flowers, mushrooms).
BACKGROUND_STEMS: tuple[str, ...] = (
    "holly_leaves", "holm_oak", "birch", "lettuce_bolted", "thyme", "lavender", "cep", "cep-1",
    "rose", "daffodil", "marigold", "iris", "yellow-flower", "red-gazania", "whitestar-petunia",
    "anemone_red", "pinecone",
)

#: Real-photo textures read out of the scikit-image wheel (``skimage/data/<name>.png``).
TEXTURE_NAMES: tuple[str, ...] = ("grass", "gravel", "brick")
SKIMAGE_WHEEL = ("scikit-image", "0.26.0")
DEBIAN_PACKAGE = "tuxpaint-stamps-default"
STAMPS_SUBDIR = Path("usr/share/tuxpaint/stamps")


def cache_root() -> Path:
    """``$GLOCAL_CACHE`` or ``~/.cache/glocal``."""
    return Path(os.environ.get("GLOCAL_CACHE") or Path.home() / ".cache" / "glocal")


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise DataError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")


def find_stamps(stamps: str | Path | None = None, *, fetch: bool = True) -> Path:
    """The tuxpaint ``stamps`` folder: ``stamps``, else ``$GLOCAL_TUXPAINT_STAMPS``, else
    ``<cache>/tuxpaint/usr/share/tuxpaint/stamps``, fetched there with ``apt-get download
    tuxpaint-stamps-default`` + ``dpkg -x`` when missing and ``fetch`` is True.

    Raises:
        DataError: the folder is not found and cannot be fetched.
    """
    given = stamps or os.environ.get("GLOCAL_TUXPAINT_STAMPS")
    if given:
        p = Path(given)
        if (p / STAMPS_SUBDIR).is_dir():
            p = p / STAMPS_SUBDIR
        if not (p / "animals").is_dir():
            raise DataError(f"{p} is not a tuxpaint stamps folder (no animals/ inside)")
        return p
    dest = cache_root() / "tuxpaint"
    if (dest / STAMPS_SUBDIR / "animals").is_dir():
        return dest / STAMPS_SUBDIR
    if not fetch:
        raise DataError(f"tuxpaint stamps not found in {dest}; pass --stamps DIR")
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise DataError("tuxpaint stamps not found and apt-get/dpkg are not available; pass --stamps DIR")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        _run(["apt-get", "download", DEBIAN_PACKAGE], Path(tmp))
        debs = sorted(Path(tmp).glob(f"{DEBIAN_PACKAGE}_*.deb"))
        if not debs:
            raise DataError(f"apt-get download {DEBIAN_PACKAGE} wrote no .deb")
        _run(["dpkg", "-x", str(debs[-1]), str(dest)], Path(tmp))
    return dest / STAMPS_SUBDIR


def find_textures(textures: str | Path | None = None, *, fetch: bool = True) -> Path:
    """A folder holding ``grass.png``, ``gravel.png`` and ``brick.png``: ``textures``, else
    ``$GLOCAL_TEXTURES``, else ``<cache>/skimage-textures``, filled from the scikit-image wheel
    (``pip download --no-deps``) when missing and ``fetch`` is True."""
    given = textures or os.environ.get("GLOCAL_TEXTURES")
    dest = Path(given) if given else cache_root() / "skimage-textures"
    if all((dest / f"{n}.png").is_file() for n in TEXTURE_NAMES):
        return dest
    if given or not fetch:
        raise DataError(f"{dest} lacks {[f'{n}.png' for n in TEXTURE_NAMES]}")
    dest.mkdir(parents=True, exist_ok=True)
    name, version = SKIMAGE_WHEEL
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
              "--disable-pip-version-check", "-d", tmp, f"{name}=={version}"], Path(tmp))
        wheels = sorted(Path(tmp).glob("scikit_image-*.whl"))
        if not wheels:
            raise DataError("pip download scikit-image wrote no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            for n in TEXTURE_NAMES:
                (dest / f"{n}.png").write_bytes(zf.read(f"skimage/data/{n}.png"))
    return dest


@lru_cache(maxsize=None)
def _stamp_index(stamps: str) -> dict[str, Path]:
    """stem -> PNG path of every non-cartoon, non-reserved stamp (first in sorted order)."""
    index: dict[str, Path] = {}
    for p in sorted(Path(stamps).rglob("*.png")):
        if "cartoon" in p.relative_to(stamps).parts or is_reserved(p.stem):
            continue
        index.setdefault(p.stem, p)
    return index


def stamp_path(stamps: str | Path, stem: str, ext: str = ".png") -> Path:
    """Path of stamp ``stem`` (``.png``, or its sound with ``ext=".ogg"``).

    Raises:
        DataError: reserved stem, or no such stamp.
    """
    if is_reserved(stem):
        raise DataError(f"stamp {stem!r} is reserved for held-out evaluation")
    png = _stamp_index(str(stamps)).get(stem)
    if png is None:
        raise DataError(f"no stamp {stem!r} under {stamps}")
    path = png.with_suffix(ext)
    if not path.is_file():
        raise DataError(f"stamp {stem!r} has no {ext} file ({path})")
    return path


def _read_rgba(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.to_ndarray(format="rgba")


@lru_cache(maxsize=64)
def load_stamp(stamps: str, stem: str, max_side: int = 160) -> np.ndarray:
    """RGBA float32 ``(h, w, 4)`` in [0, 1], cropped to its alpha > 0.5 extent and shrunk so
    that its longer side is at most ``max_side`` (area averaging)."""
    rgba = _read_rgba(stamp_path(stamps, stem)).astype(np.float32) / 255.0
    rows = np.flatnonzero((rgba[..., 3] > 0.5).any(axis=1))
    cols = np.flatnonzero((rgba[..., 3] > 0.5).any(axis=0))
    if rows.size == 0:
        raise DataError(f"stamp {stem!r} is fully transparent")
    rgba = rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    factor = int(np.ceil(max(rgba.shape[:2]) / max_side))
    if factor > 1:
        h, w = (rgba.shape[0] // factor) * factor, (rgba.shape[1] // factor) * factor
        pm = rgba[:h, :w].copy()
        pm[..., :3] *= pm[..., 3:]
        pm = pm.reshape(h // factor, factor, w // factor, factor, 4).mean(axis=(1, 3))
        pm[..., :3] /= np.maximum(pm[..., 3:], 1e-6)
        rgba = pm
    rgba.setflags(write=False)
    return rgba


@lru_cache(maxsize=64)
def load_sound(stamps: str, stem: str, sample_rate: int) -> np.ndarray:
    """The recorded sound ``stem.ogg`` as float32 mono at ``sample_rate``, leading and trailing
    near-silence trimmed (below 5 % of the peak of a 10 ms envelope), peak-normalised to 1."""
    path = stamp_path(stamps, stem, ".ogg")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    x = np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)
    if x.size == 0 or not np.any(x):
        raise DataError(f"sound {path} is empty or silent")
    win = max(1, sample_rate // 100)
    env = np.sqrt(np.convolve(x**2, np.ones(win) / win, mode="same"))
    loud = np.flatnonzero(env > 0.05 * env.max())
    x = x[max(0, loud[0] - win // 2) : loud[-1] + win]
    x = x - x.mean()
    out = (x / np.abs(x).max()).astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def load_texture(textures: str, name: str) -> np.ndarray:
    """Grey texture ``name`` as float32 ``(H, W)`` in [0, 1]."""
    rgba = _read_rgba(Path(textures) / f"{name}.png").astype(np.float32) / 255.0
    grey = rgba[..., :3].mean(axis=-1)
    grey.setflags(write=False)
    return grey
