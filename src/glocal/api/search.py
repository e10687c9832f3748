"""``glocal search``: the nearest videos of an index for a video or a sound.

An *index* is the ``--out`` folder of ``glocal embed`` (``video.npy`` / ``audio.npy``, ``index.csv``,
``report.json``, ``settings.json``). :func:`search` embeds the query file with the index's own
checkpoint and settings (``clips_per_video``, ``pool``, ``space``; ``settings.json``), then ranks the
index rows by cosine similarity and returns a :class:`SearchResult`; :func:`write_results` writes
``results.json``, ``results.csv``, ``sheet.png`` and ``sheet.html`` (pictures:
:mod:`glocal.api.search_sheet`).

Design (docs/api.md, "Search"):

* **Cross-modal search needs a joint space.** ``glocal embed``'s default embeddings are backbone
  features (``space=backbone``: what the linear probe sees); a video's and a sound's backbone
  features live in different spaces and cannot be compared. Methods that contrast video with audio
  (GLCM, AVID, AVTS) have projection heads into one space (:meth:`Method.joint_video` /
  :meth:`Method.joint_audio`); an index made with ``space=joint modality=both`` serves sound ->
  video (and video -> sound) queries. A query of the other modality against a backbone index is a
  one-line error saying how to build a joint one; SimCLR, MoCo, VCLR and CtrlAug have no joint space.
* **Exact search.** :func:`top_k` L2-normalises both sides and takes inner products: in torch over
  ``chunk_size`` index rows at a time, keeping a running top-k (memory ``Q x (chunk + k)``, so a
  1M x 512 index never needs ``Q x N`` at once), or with faiss (``IndexFlatIP``, exact too;
  ``backend=faiss``, ``pip install 'glocal[search]'``). Both return the same top-k up to ties.
  ``backend=auto`` is torch: an exact flat index has to be built for every call, and measured on
  2 CPU threads over 1M x 512 random rows faiss took 7.9 s and +2.4 GB for 3 queries and 30 s for
  256, torch 1.7 s (+0.3 GB) and 5.5 s, with identical hits. faiss stays available for whoever
  wants its kernels.
* **Which index.** The query's modality is ``modality`` (``auto``: a sound file extension -> audio,
  else video; a video file searched with ``modality=audio`` uses its soundtrack). The rows searched
  are ``target`` (``auto``: the index's videos when it has them, else its sounds).
* **One-line errors** for a folder that is not an index, an empty index, a query that cannot be
  read, a checkpoint of another method or embedding size than the index's, a modality the method
  lacks, and a cross-modal query without a joint index.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import torch

from ..config import Range
from ..data.formats import AUDIO_EXTENSIONS
from ..errors import DataError, GlocalError
from ..runtime.files import write_atomic
from ..runtime.rundir import check_writable
from . import Encoder, load
from .search_sheet import SheetItem, png_bytes, render_sheet, sheet_html

__all__ = ["SearchOptions", "SearchIndex", "Hit", "SearchResult", "load_index", "top_k", "search",
           "write_results", "sheet_items", "run_search", "faiss_available"]

INDEX_FILES = ("report.json", "settings.json", "index.csv")


@dataclass
class SearchOptions:
    """``key=value`` options of ``glocal search`` (built and checked by :func:`glocal.config.build`)."""

    #: hits returned
    k: Annotated[int, Range(1)] = 10
    #: the query's modality: auto (a sound file -> audio, else video), video, or audio (a video file's soundtrack)
    modality: Literal["auto", "video", "audio"] = "auto"
    #: the index rows searched: auto (videos when the index has them, else sounds), video or audio
    target: Literal["auto", "video", "audio"] = "auto"
    #: exact search in torch (chunked) or with faiss (IndexFlatIP; pip install 'glocal[search]'); auto = torch (faster, see above)
    backend: Literal["auto", "torch", "faiss"] = "auto"
    #: index rows scored at once by the torch backend
    chunk_size: Annotated[int, Range(1)] = 65536
    #: side of a sheet tile in pixels
    tile: Annotated[int, Range(32, 1024)] = 128
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass
class SearchIndex:
    """A loaded ``glocal embed`` folder: ``vectors[modality]`` float32 ``(N, D)``, ``rows`` the
    index table (dicts of ``index.csv``), ``root`` the dataset folder the paths are relative to."""

    folder: Path
    vectors: dict[str, np.ndarray]
    rows: list[dict[str, str]]
    root: Path
    settings: dict[str, Any]
    report: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.report.get("method", ""))

    @property
    def space(self) -> str:
        """``backbone`` or ``joint`` (indexes from before ``space`` existed are backbone ones)."""
        return str(self.settings.get("space", "backbone"))

    def file(self, row: int) -> str:
        """The absolute path of row ``row``'s media file."""
        return str(self.root / self.rows[row]["path"])


@dataclass
class Hit:
    """One search result: ``rank`` (1 = nearest), cosine ``score``, index ``row`` and its file."""

    rank: int
    score: float
    row: int
    path: str  #: relative to the dataset root (as in index.csv)
    label: str
    split: str
    file: str  #: absolute path


@dataclass
class SearchResult:
    """The ranked hits of one query and how they were found."""

    query: str
    query_modality: str
    target: str
    space: str
    backend: str
    method: str
    index: str
    hits: list[Hit] = field(default_factory=list)
    #: the query's label when the query file is itself a row of the index ("" otherwise)
    query_label: str = ""

    @property
    def cross_modal(self) -> bool:
        return self.query_modality != self.target

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "hits"}, "cross_modal": self.cross_modal,
                "hits": [asdict(h) for h in self.hits]}

    def table(self) -> str:
        """The hits as a plain-text table (rank, score, path, label)."""
        width = max([len(h.path) for h in self.hits] + [4])
        lines = [f"{'rank':>4}  {'score':>6}  {'path':<{width}}  label"]
        lines += [f"{h.rank:>4}  {h.score:>6.3f}  {h.path:<{width}}  {h.label}" for h in self.hits]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- the index
def load_index(folder: str | os.PathLike) -> SearchIndex:
    """Read a ``glocal embed`` output folder; one-line :class:`DataError` s when it is not one, is
    torn (row counts disagree) or empty."""
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise DataError(f"--index {d} is not a folder; give the --out folder of `glocal embed`")
    missing = [f for f in INDEX_FILES if not (d / f).is_file()]
    if missing:
        raise DataError(f"--index {d} is not a `glocal embed` folder (no {', '.join(missing)}); make one with "
                        f"`glocal embed DATA --checkpoint CKPT --out {d}`")
    try:
        report = json.loads((d / "report.json").read_text())
        settings = json.loads((d / "settings.json").read_text())
        with open(d / "index.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"--index {d}: cannot read its report.json / settings.json / index.csv ({exc}); "
                        "run `glocal embed` into it again") from None
    vectors: dict[str, np.ndarray] = {}
    for mod in ("video", "audio"):
        p = d / f"{mod}.npy"
        if not p.is_file():
            continue
        try:
            v = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"--index {d}: {p.name} is not a readable .npy ({exc}); run `glocal embed` again") from None
        if v.ndim != 2:
            raise DataError(f"--index {d}: {p.name} has shape {v.shape}, expected (N, D)")
        if v.shape[0] != len(rows):
            raise DataError(f"--index {d}: {p.name} has {v.shape[0]} rows but index.csv {len(rows)}; the folder is "
                            "torn, run `glocal embed` into it again")
        vectors[mod] = v.astype(np.float32, copy=False)
    if not vectors:
        raise DataError(f"--index {d} holds no video.npy or audio.npy; run `glocal embed` into it again")
    if not rows or any(v.shape[0] == 0 for v in vectors.values()):
        raise DataError(f"--index {d} is empty (0 rows); embed a dataset with files into it")
    root = Path(str(report.get("root") or settings.get("data") or d))
    return SearchIndex(folder=d, vectors=vectors, rows=rows, root=root, settings=settings, report=report)


# ---------------------------------------------------------------------------- exact top-k
def faiss_available() -> bool:
    """Whether ``import faiss`` works (the optional ``glocal[search]`` extra)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=1, eps=1e-12)


def top_k(index: np.ndarray | torch.Tensor, queries: np.ndarray | torch.Tensor, k: int, *, backend: str = "auto",
          chunk_size: int = 65536, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, str]:
    """Exact cosine top-k: ``index (N, D)``, ``queries (Q, D)`` -> ``scores (Q, k')`` float32 (best
    first), ``rows (Q, k')`` int64 and the backend used, with ``k' = min(k, N)``.

    ``backend="torch"`` scores ``chunk_size`` index rows at a time and merges each chunk's top-k into
    the running top-k; ``"faiss"`` adds the normalised chunks to a ``faiss.IndexFlatIP`` and searches
    it; ``"auto"`` is torch (measured faster for a flat index built per call: module docstring).
    """
    x, q = torch.as_tensor(index), torch.as_tensor(queries)
    if x.ndim != 2 or q.ndim != 2 or x.shape[1] != q.shape[1]:
        raise GlocalError(f"top_k needs index (N, D) and queries (Q, D) of the same D; got {tuple(x.shape)} and "
                          f"{tuple(q.shape)}")
    if x.shape[0] == 0:
        raise GlocalError("top_k: the index is empty (0 rows)")
    if backend not in ("auto", "torch", "faiss"):
        raise GlocalError(f"backend must be auto, torch or faiss, got {backend!r}")
    k = min(int(k), int(x.shape[0]))
    if backend == "faiss":
        try:
            import faiss
        except ImportError:
            raise GlocalError("backend=faiss but faiss is not installed; pip install 'glocal[search]' "
                              "(faiss-cpu) or use backend=torch") from None
        flat = faiss.IndexFlatIP(int(x.shape[1]))
        step = max(1, int(chunk_size))
        for start in range(0, x.shape[0], step):  # normalised chunk by chunk: no second full-size copy
            flat.add(np.ascontiguousarray(_unit(x[start:start + step]).numpy(), dtype=np.float32))
        scores, rows = flat.search(np.ascontiguousarray(_unit(q).numpy(), dtype=np.float32), k)
        return scores.astype(np.float32), rows.astype(np.int64), "faiss"
    dev = torch.device(device)
    qn = _unit(q).to(dev)
    best_s = torch.full((q.shape[0], 0), float("-inf"), device=dev)
    best_i = torch.zeros((q.shape[0], 0), dtype=torch.int64, device=dev)
    step = max(1, int(chunk_size))
    for start in range(0, x.shape[0], step):
        part = _unit(x[start:start + step]).to(dev)  # (c, D)
        s = qn @ part.T  # (Q, c)
        s_top, i_top = s.topk(min(k, s.shape[1]), dim=1)
        merged_s = torch.cat([best_s, s_top], dim=1)
        merged_i = torch.cat([best_i, i_top + start], dim=1)
        best_s, pick = merged_s.topk(min(k, merged_s.shape[1]), dim=1)
        best_i = merged_i.gather(1, pick)
    return best_s.cpu().numpy().astype(np.float32), best_i.cpu().numpy().astype(np.int64), "torch"


# ---------------------------------------------------------------------------- one query
def _query_modality(query: Path, modality: str) -> str:
    if modality != "auto":
        return modality
    return "audio" if query.suffix.lower() in AUDIO_EXTENSIONS else "video"


def _target(index: SearchIndex, target: str) -> str:
    if target == "auto":
        return "video" if "video" in index.vectors else "audio"
    if target not in index.vectors:
        raise GlocalError(f"--index {index.folder} holds no {target} embeddings (it has "
                          f"{', '.join(index.vectors)}); embed with modality={target} or modality=both")
    return target


def _encoder(index: SearchIndex, checkpoint: str | os.PathLike | None, opts: SearchOptions) -> Encoder:
    """The index's checkpoint (``settings.json``) or ``checkpoint``, checked against the index."""
    ckpt = Path(checkpoint) if checkpoint else Path(str(index.settings.get("checkpoint", "")))
    if not checkpoint and not ckpt.is_file():
        raise GlocalError(f"the checkpoint the index was made with ({ckpt}) is gone; pass --checkpoint CKPT "
                          "(the same method and embedding size)")
    enc = load(ckpt, opts.device)
    made_with = str(index.settings.get("checkpoint", ""))
    if checkpoint and made_with and os.path.realpath(ckpt) != os.path.realpath(made_with):
        print(f"glocal search: note: --checkpoint {ckpt} is not the checkpoint the index was made with ({made_with}); "
              "the query and the index rows come from different weights", file=sys.stderr)
    if index.method and enc.info.method != index.method:
        raise GlocalError(f"checkpoint {ckpt} is a '{enc.info.method}' checkpoint but the index {index.folder} was "
                          f"made by a '{index.method}' one ({index.settings.get('checkpoint')}); search it with "
                          "that checkpoint or embed the data again with this one")
    return enc


def _embed_query(enc: Encoder, index: SearchIndex, query: Path, modality: str) -> np.ndarray:
    s = index.settings
    clips = int(s.get("clips_per_video", 4))
    if modality == "video":
        emb = enc.embed_video(str(query), clips_per_video=clips, pool=str(s.get("pool", "mean")), space=index.space)
    else:
        emb = enc.embed_audio(str(query), clips_per_video=clips, space=index.space)
    return emb.numpy()


def search(index: str | os.PathLike | SearchIndex, query: str | os.PathLike, opts: SearchOptions | None = None, *,
           checkpoint: str | os.PathLike | None = None, encoder: Encoder | None = None) -> SearchResult:
    """The ``opts.k`` nearest index rows of the media file ``query`` (see the module docstring).

    ``index``: a ``glocal embed`` folder or a loaded :class:`SearchIndex`; ``checkpoint`` overrides
    the index's; ``encoder`` reuses a loaded one (it must be the index's method). Returns a
    :class:`SearchResult` whose hits carry the absolute file of each row (``report.json``'s root).
    """
    opts = opts or SearchOptions()
    idx = index if isinstance(index, SearchIndex) else load_index(index)
    q = Path(query).expanduser()
    if not q.is_file():
        raise DataError(f"--query {q}: file not found" if not q.exists() else f"--query {q} is not a file")
    if not os.access(q, os.R_OK):
        raise DataError(f"--query {q} is not readable (permissions)")
    qmod = _query_modality(q, opts.modality)
    target = _target(idx, opts.target)
    enc = encoder or _encoder(idx, checkpoint, opts)
    if enc.info.method != idx.method and idx.method:
        raise GlocalError(f"the encoder is '{enc.info.method}' but the index {idx.folder} was made by '{idx.method}'")
    enc.require(qmod)
    if qmod != target and idx.space != "joint":
        raise GlocalError(
            f"a {qmod} query against the {target} embeddings of {idx.folder} is cross-modal and needs the joint "
            f"audio-visual space, but this index holds {idx.space} features; build one with `glocal embed DATA "
            f"--checkpoint CKPT --out DIR space=joint modality=both`")
    emb = _embed_query(enc, idx, q, qmod)
    vectors = idx.vectors[target]
    if emb.shape[1] != vectors.shape[1]:
        raise GlocalError(f"the query embeds to {emb.shape[1]} dimensions but the index's {target} rows have "
                          f"{vectors.shape[1]}: the checkpoint is not the one the index was made with "
                          f"({idx.settings.get('checkpoint')}); pass that one as --checkpoint")
    scores, rows, used = top_k(vectors, emb, opts.k, backend=opts.backend, chunk_size=opts.chunk_size)
    hits = []
    for rank, (s, r) in enumerate(zip(scores[0].tolist(), rows[0].tolist()), start=1):
        row = idx.rows[r]
        hits.append(Hit(rank=rank, score=float(s), row=int(r), path=row.get("path", ""), label=row.get("label", ""),
                        split=row.get("split", ""), file=idx.file(r)))
    rel = os.path.relpath(os.path.realpath(q), os.path.realpath(idx.root))
    own = next((r for r, row in enumerate(idx.rows) if os.path.normpath(row.get("path", "")) == rel), None)
    return SearchResult(query=str(q.resolve()), query_modality=qmod, target=target, space=idx.space, backend=used,
                        method=enc.info.method, index=str(idx.folder.resolve()), hits=hits,
                        query_label="" if own is None else idx.rows[own].get("label", ""))


# ---------------------------------------------------------------------------- outputs
def sheet_items(result: SearchResult) -> tuple[SheetItem, list[SheetItem]]:
    """The query and hit tiles of a result (captions: rank, score, label)."""
    kind = "sound" if result.query_modality == "audio" else "video"
    query = SheetItem(result.query, (f"query ({kind})", result.query_label or Path(result.query).name))
    hits = [SheetItem(h.file, (f"#{h.rank}  {h.score:.3f}", h.label or Path(h.path).name)) for h in result.hits]
    return query, hits


def write_results(result: SearchResult, out: str | os.PathLike, *, tile: int = 128) -> dict[str, str]:
    """Write ``results.json``, ``results.csv``, ``sheet.png`` and ``sheet.html`` into ``out`` (each
    atomically); returns their paths by kind."""
    out = Path(out)
    check_writable(out, "the output folder --out")
    paths = {k: out / n for k, n in (("json", "results.json"), ("csv", "results.csv"), ("png", "sheet.png"),
                                     ("html", "sheet.html"))}
    write_atomic(paths["json"], json.dumps(result.to_dict(), indent=2).encode())
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(["rank", "score", "row", "path", "label", "split", "file"])
    w.writerows([h.rank, f"{h.score:.6f}", h.row, h.path, h.label, h.split, h.file] for h in result.hits)
    write_atomic(paths["csv"], text.getvalue().encode())
    query, hits = sheet_items(result)
    cache: dict[str, Any] = {}
    write_atomic(paths["png"], png_bytes(render_sheet(query, result.query_modality, hits, tile=tile, pictures=cache)))
    title = f"glocal search: {Path(result.query).name} ({result.query_modality} -> {result.target}, {result.method})"
    write_atomic(paths["html"], sheet_html(query, result.query_modality, hits, title=title, tile=tile,
                                            pictures=cache).encode())
    return {k: str(v) for k, v in paths.items()}


def missing_files(result: SearchResult) -> list[str]:
    """The hits whose file is not on disk (drawn as grey tiles)."""
    return [h.path for h in result.hits if not Path(h.file).is_file()]


def run_search(index: str | os.PathLike, query: str | os.PathLike, opts: SearchOptions, *,
               checkpoint: Optional[str] = None, out: Optional[str] = None) -> SearchResult:
    """``glocal search``: :func:`search`, then :func:`write_results` into ``out`` (checked writable
    first) when given; a note on stderr for hits whose files are missing."""
    if out:
        check_writable(Path(out), "the output folder --out")
    result = search(index, query, opts, checkpoint=checkpoint)
    gone = missing_files(result)
    if gone:
        print(f"glocal search: {len(gone)} hit files are missing (grey tiles), e.g. {gone[0]}", file=sys.stderr)
    if out:
        write_results(result, out, tile=opts.tile)
    return result
