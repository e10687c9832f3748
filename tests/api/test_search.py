"""`glocal search` / `glocal.api.search` on the tiny world and checkpoints of conftest.py: exact
top-k against a slow reference, chunking, faiss (when installed), the joint space, cross-modal
search, one-line errors for bad input, and the command end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import glocal
from fixtures.tiny_models import TINY_GLCM, save_tiny_checkpoint, tiny_config, tiny_method
from glocal.api.embed import EmbedOptions, embed_dataset
from glocal.api.search import (
    Hit,
    SearchOptions,
    SearchResult,
    faiss_available,
    load_index,
    search,
    top_k,
    write_results,
)
from glocal.api.search_sheet import SheetItem, render_sheet
from glocal.cli import main
from glocal.errors import GlocalError


def reference_top_k(index: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Obviously correct: every cosine one by one in float64, then a full stable argsort."""
    rows, scores = [], []
    for q in queries.astype(np.float64):
        s = np.array([float(q @ x) / (np.linalg.norm(q) * np.linalg.norm(x)) for x in index.astype(np.float64)])
        order = np.argsort(-s, kind="stable")[:k]
        rows.append(order)
        scores.append(s[order])
    return np.array(scores), np.array(rows)


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(503, 24)).astype(np.float32), rng.normal(size=(9, 24)).astype(np.float32)


def test_torch_top_k_matches_the_reference(vectors):
    x, q = vectors
    ref_s, ref_i = reference_top_k(x, q, 10)
    s, i, used = top_k(x, q, 10, backend="torch")
    assert used == "torch" and s.shape == i.shape == (9, 10)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, atol=1e-5)
    assert np.all(np.diff(s, axis=1) <= 0)  # best first


@pytest.mark.parametrize("chunk", [1, 7, 10, 64, 502, 100000])
def test_chunking_gives_the_one_chunk_result(vectors, chunk):
    x, q = vectors
    s1, i1, _ = top_k(x, q, 10, backend="torch", chunk_size=len(x))
    s, i, _ = top_k(x, q, 10, backend="torch", chunk_size=chunk)
    np.testing.assert_array_equal(i, i1)
    np.testing.assert_allclose(s, s1, atol=1e-6)


def test_k_beyond_the_index_and_bad_shapes(vectors):
    x, q = vectors
    s, i, _ = top_k(x[:4], q, 10, backend="torch")
    assert i.shape == (9, 4) and sorted(i[0].tolist()) == [0, 1, 2, 3]
    with pytest.raises(GlocalError, match="same D"):
        top_k(x, q[:, :5], 3, backend="torch")
    with pytest.raises(GlocalError, match="empty"):
        top_k(x[:0], q, 3, backend="torch")


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed (pip install 'glocal[search]')")
def test_faiss_gives_the_torch_top_k(vectors):
    x, q = vectors
    st, it, _ = top_k(x, q, 10, backend="torch", chunk_size=50)
    sf, jf, used = top_k(x, q, 10, backend="faiss", chunk_size=64)  # the index added chunk by chunk
    assert used == "faiss"
    np.testing.assert_array_equal(jf, it)
    np.testing.assert_allclose(sf, st, atol=1e-5)


def test_faiss_asked_for_but_missing_is_one_line(vectors, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_faiss(name, *a, **kw):
        if name == "faiss":
            raise ImportError("no faiss")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    x, q = vectors
    with pytest.raises(GlocalError, match=r"glocal\[search\]"):
        top_k(x, q, 3, backend="faiss")
    assert top_k(x, q, 3, backend="auto")[2] == "torch"


def test_auto_is_torch_even_with_faiss(vectors):
    assert top_k(*vectors, 3)[2] == top_k(*vectors, 3, backend="auto")[2] == "torch"


# ---------------------------------------------------------------------------- indexes of the tiny world
def _embed(world: Path, ckpt: Path, out: Path, **opts) -> Path:
    embed_dataset(world, ckpt, out, EmbedOptions(clips_per_video=1, device="cpu", **opts), progress=False)
    return out


@pytest.fixture(scope="module")
def joint_index(tmp_path_factory, api_world, glcm_ckpt) -> Path:
    return _embed(api_world, glcm_ckpt, tmp_path_factory.mktemp("search") / "joint", modality="both", space="joint")


@pytest.fixture(scope="module")
def backbone_index(tmp_path_factory, api_world, glcm_ckpt) -> Path:
    return _embed(api_world, glcm_ckpt, tmp_path_factory.mktemp("search") / "backbone", modality="both")


@pytest.fixture(scope="module")
def simclr_index(tmp_path_factory, api_world, simclr_ckpt) -> Path:
    return _embed(api_world, simclr_ckpt, tmp_path_factory.mktemp("search") / "simclr")


OPTS = dict(device="cpu", backend="torch")


def test_joint_space_embeddings(glcm_ckpt, simclr_ckpt, api_world):
    model = glocal.load(glcm_ckpt, device="cpu")
    video = api_world / "videos" / "000000.mp4"
    clips = model.preprocess_video(video, clips_per_video=1)
    wave = model.preprocess_audio(video, clips_per_video=1)
    v, a = model.embed_video(clips, space="joint"), model.embed_audio(wave, space="joint")
    assert v.shape == a.shape == (1, TINY_GLCM["proj_dim_global"])  # one space, the global projection's
    np.testing.assert_allclose(v.norm(dim=1), 1, atol=1e-5)
    np.testing.assert_allclose(a.norm(dim=1), 1, atol=1e-5)
    assert model.embed_video(clips).shape[1] != v.shape[1]  # backbone features are another space
    with pytest.raises(GlocalError, match="no joint audio-visual embedding space"):
        glocal.load(simclr_ckpt, device="cpu").embed_video(clips, space="joint")
    with pytest.raises(GlocalError, match="space must be one of"):
        model.embed_audio(wave, space="shared")


def test_video_query_finds_itself(joint_index, api_world):
    video = api_world / "videos" / "000003.mp4"
    res = search(joint_index, video, SearchOptions(k=3, **OPTS))
    assert res.query_modality == res.target == "video" and not res.cross_modal and res.space == "joint"
    assert len(res.hits) == 3 and [h.rank for h in res.hits] == [1, 2, 3]
    own = next(h for h in res.hits if h.path == "videos/000003.mp4")
    assert own.score == pytest.approx(1.0, abs=1e-4) and own.score == pytest.approx(res.hits[0].score, abs=1e-6)
    assert res.query_label == own.label != "" and Path(own.file).is_file()


def test_cross_modal_sound_query_ranks_by_the_joint_cosine(joint_index, api_world, glcm_ckpt):
    video = api_world / "videos" / "000002.mp4"
    res = search(joint_index, video, SearchOptions(k=6, modality="audio", **OPTS))
    assert res.cross_modal and res.query_modality == "audio" and res.target == "video"
    model = glocal.load(glcm_ckpt, device="cpu")
    q = model.embed_audio(video, clips_per_video=1, space="joint").numpy()
    ref_s, ref_i = reference_top_k(np.load(joint_index / "video.npy"), q, 6)
    assert [h.row for h in res.hits] == ref_i[0].tolist()
    np.testing.assert_allclose([h.score for h in res.hits], ref_s[0], atol=1e-5)
    sounds = search(joint_index, video, SearchOptions(k=2, modality="audio", target="audio", **OPTS))
    assert not sounds.cross_modal and sounds.hits[0].path == "videos/000002.mp4"


def test_cross_modal_needs_a_joint_index(backbone_index, api_world):
    with pytest.raises(GlocalError, match="space=joint modality=both") as e:
        search(backbone_index, api_world / "videos" / "000000.mp4", SearchOptions(modality="audio", **OPTS))
    assert "\n" not in str(e.value)


def _tone(path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes((np.sin(np.arange(8000) * np.pi / 2) * 8000).astype(np.int16).tobytes())  # 2 kHz
    return path


def test_a_sound_file_query_is_cross_modal_with_its_spectrogram(joint_index, tmp_path):
    res = search(joint_index, _tone(tmp_path / "tone.wav"), SearchOptions(k=2, **OPTS))
    assert res.query_modality == "audio" and res.target == "video" and res.cross_modal and len(res.hits) == 2
    sheet = np.asarray(Image.open(write_results(res, tmp_path / "out", tile=48)["png"]).convert("RGB"))
    query = sheet[3:45, 3:45].astype(int)  # the tone: one bright line on the dark -80 dB floor, not the grey tile
    assert query.max() > 150 and (np.abs(query - 96) < 2).all(axis=2).mean() < 0.5


def test_sound_query_against_a_video_only_method(simclr_index, api_world, tmp_path):
    with pytest.raises(GlocalError, match="'simclr' has no audio encoder"):
        search(simclr_index, api_world / "videos" / "000000.mp4", SearchOptions(modality="audio", **OPTS))
    wav = _tone(tmp_path / "tone.wav")
    with pytest.raises(GlocalError, match="'simclr' has no audio encoder"):
        search(simclr_index, wav, SearchOptions(**OPTS))  # a sound file is an audio query by default
    with pytest.raises(GlocalError, match="holds no audio embeddings"):
        search(simclr_index, api_world / "videos" / "000000.mp4", SearchOptions(target="audio", **OPTS))


def test_not_an_index_and_an_empty_or_torn_one(joint_index, tmp_path):
    with pytest.raises(GlocalError, match="is not a folder"):
        load_index(tmp_path / "nowhere")
    with pytest.raises(GlocalError, match="not a `glocal embed` folder"):
        load_index(tmp_path)
    empty = tmp_path / "empty"
    shutil.copytree(joint_index, empty)
    (empty / "index.csv").write_text("row,path,label,label_index,split\n")
    for mod in ("video", "audio"):
        np.save(empty / f"{mod}.npy", np.zeros((0, 16), np.float32))
    with pytest.raises(GlocalError, match="is empty"):
        load_index(empty)
    torn = tmp_path / "torn"
    shutil.copytree(joint_index, torn)
    np.save(torn / "video.npy", np.zeros((2, 16), np.float32))
    with pytest.raises(GlocalError, match="torn"):
        load_index(torn)
    (torn / "video.npy").write_bytes(b"garbage")
    with pytest.raises(GlocalError, match="not a readable .npy"):
        load_index(torn)


def test_bad_query_files(joint_index, tmp_path):
    with pytest.raises(GlocalError, match="file not found"):
        search(joint_index, tmp_path / "missing.mp4", SearchOptions(**OPTS))
    with pytest.raises(GlocalError, match="is not a file"):
        search(joint_index, tmp_path, SearchOptions(**OPTS))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(GlocalError, match="junk.mp4") as e:
        search(joint_index, junk, SearchOptions(**OPTS))
    assert "\n" not in str(e.value)


def test_another_checkpoint(joint_index, api_world, simclr_ckpt, tmp_path):
    video = api_world / "videos" / "000000.mp4"
    with pytest.raises(GlocalError, match="is a 'simclr' checkpoint but the index"):
        search(joint_index, video, SearchOptions(**OPTS), checkpoint=simclr_ckpt)
    not_ckpt = tmp_path / "x.pt"
    not_ckpt.write_bytes(b"nope")
    with pytest.raises(GlocalError):
        search(joint_index, video, SearchOptions(**OPTS), checkpoint=not_ckpt)
    cfg = tiny_config(api_world, {**TINY_GLCM, "proj_dim_global": 8})
    other = save_tiny_checkpoint(tmp_path / "other.pt", cfg, tiny_method(cfg))
    with pytest.raises(GlocalError, match="embeds to 8 dimensions but the index's video rows have 16"):
        search(joint_index, video, SearchOptions(**OPTS), checkpoint=other)
    gone = tmp_path / "gone"
    shutil.copytree(joint_index, gone)
    settings = json.loads((gone / "settings.json").read_text())
    (gone / "settings.json").write_text(json.dumps({**settings, "checkpoint": str(tmp_path / "deleted.pt")}))
    with pytest.raises(GlocalError, match="is gone; pass --checkpoint"):
        search(gone, video, SearchOptions(**OPTS))


def test_missing_hit_files_render_as_grey_tiles(api_world, tmp_path):
    hits = [Hit(rank=1, score=0.9, row=0, path="videos/000000.mp4", label="a", split="",
                file=str(api_world / "videos" / "000000.mp4")),
            Hit(rank=2, score=0.5, row=1, path="gone.mp4", label="b", split="", file=str(tmp_path / "gone.mp4"))]
    res = SearchResult(query=str(api_world / "videos" / "000001.mp4"), query_modality="audio", target="video",
                       space="joint", backend="torch", method="glcm", index=str(tmp_path), hits=hits)
    paths = write_results(res, tmp_path / "out", tile=48)
    sheet = np.asarray(Image.open(paths["png"]).convert("RGB"))
    assert sheet.shape[0] > 48 and sheet.shape[1] >= 3 * 48
    direct = render_sheet(SheetItem(res.query), "audio", [SheetItem(h.file) for h in hits], tile=48)
    grey = direct[10:38, -38:-10]  # inside the last (missing) tile, away from its frame and text
    assert (np.abs(grey.astype(int) - 96) < 2).mean() > 0.5
    html = Path(paths["html"]).read_text()
    assert html.count("data:image/png;base64,") == 3 and "gone.mp4" in html


def test_command_end_to_end(joint_index, api_world, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["search", "--index", str(joint_index), "--query", str(api_world / "videos" / "000004.mp4"),
               "--modality", "audio", "-k", "4", "--out", str(out), "device=cpu", "backend=torch", "tile=48"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "cross-modal joint space" in printed and "rank" in printed and printed.count("videos/") >= 4
    result = json.loads((out / "results.json").read_text())
    assert result["cross_modal"] and len(result["hits"]) == 4 and result["query_modality"] == "audio"
    assert (out / "results.csv").read_text().count("\n") == 5
    sheet = Image.open(out / "sheet.png")
    assert sheet.width >= 5 * 48 and sheet.height > 48
    assert (out / "sheet.html").read_text().count("data:image/png;base64,") == 5


def test_command_errors_are_one_line(tmp_path, api_world, capsys):
    rc = main(["search", "--index", str(tmp_path), "--query", str(api_world / "videos" / "000000.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("glocal: error: ") and "glocal embed" in err
    rc = main(["search", "--index", str(tmp_path), "--query", "x.mp4", "backend=annoy"])
    assert rc == 2 and "backend" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc = main(["search", "--index", str(tmp_path), "--query", "x.mp4", "--out", str(afile)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a file, not a folder" in err and err.count("\n") == 1  # --out checked first


def test_another_checkpoint_of_the_same_kind_is_noted(joint_index, api_world, glcm_ckpt, tmp_path, capsys):
    twin = tmp_path / "twin.pt"
    shutil.copy(glcm_ckpt, twin)
    res = search(joint_index, api_world / "videos" / "000000.mp4", SearchOptions(k=2, **OPTS), checkpoint=twin)
    assert len(res.hits) == 2 and "is not the checkpoint the index was made with" in capsys.readouterr().err
