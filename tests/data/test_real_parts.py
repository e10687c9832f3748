"""The real-parts generator (glocal.data.synth.realparts) on a tiny set built from the real
Debian/PyPI media. Skipped, with the reason, only when the media cannot be found or fetched."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from glocal.data.formats import load_manifest
from glocal.data.io import read_clip
from glocal.data.synth.realparts import (
    CATALOGUE, DEFAULT_CLASSES, RESERVED_WORDS, RealPartsConfig, find_stamps, find_textures,
    generate_real_parts, is_reserved,
)
from glocal.data.synth.realparts.sources import BACKGROUND_STEMS, load_sound, stamp_path
from glocal.errors import ConfigError, DataError

HELD_OUT = ("bison", "blackbird", "camel", "crow", "duck", "ferret", "horse", "lark", "mouse", "rabbit")


@pytest.fixture(scope="module")
def media() -> tuple[Path, Path]:
    try:
        return find_stamps(), find_textures()
    except DataError as e:  # e.g. no apt-get / no network on this machine
        pytest.skip(f"real-parts media not available: {e}")


@pytest.fixture(scope="module")
def tiny(media: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rp") / "set"
    cfg = RealPartsConfig(classes=("dog", "sheep"), num_videos=6, duration=2.0, height=48, width=64,
                          train_fraction=0.5, val_fraction=0.0, test_fraction=0.5, seed=3)
    generate_real_parts(cfg, out, stamps=media[0], textures=media[1], workers=1, progress=False)
    return out


def test_reserved_list_and_catalogue() -> None:
    for word in HELD_OUT + ("dromedary", "drake", "rabbit_little", "rabbit-2", "rat", "crowned_crane"):
        assert is_reserved(word), word
    assert set(HELD_OUT) <= set(RESERVED_WORDS)
    stems = set(CATALOGUE) | set(BACKGROUND_STEMS)
    for photos, sounds in CATALOGUE.values():
        stems |= set(photos) | set(sounds)
    assert not [s for s in stems if is_reserved(s)]
    assert set(DEFAULT_CLASSES) <= set(CATALOGUE) and len(DEFAULT_CLASSES) == 10
    with pytest.raises(ConfigError, match="horse"):
        RealPartsConfig.from_dict({"classes": ["dog", "horse"]})


def test_reserved_stems_are_refused(media: tuple[Path, Path]) -> None:
    for stem in ("horse", "duck", "rabbit-2", "dromedary"):
        with pytest.raises(DataError, match="reserved"):
            stamp_path(media[0], stem)


def test_sounds_decode_to_16k_mono(media: tuple[Path, Path]) -> None:
    x = load_sound(str(media[0]), "dog", 16000)
    assert x.dtype == np.float32 and x.ndim == 1 and 0.2 * 16000 < x.size < 3 * 16000
    assert np.isclose(np.abs(x).max(), 1.0)


def test_tiny_set_reads_back(tiny: Path) -> None:
    m = load_manifest(tiny, "auto")
    assert len(m.paths) == 6 and sorted(m.class_names) == ["dog", "sheep"]
    assert sorted(set(m.column("split"))) == ["test", "train"]
    with open(tiny / "manifest.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label", "split", "sound_label", "rhythm_label", "fold", "duration", "fps"]
    assert all(r["label"] == r["sound_label"] and 1 <= int(r["fold"]) <= 5 for r in rows)
    clip = read_clip(tiny / rows[0]["path"], 0.0, 32, 16)  # real H.264 + AAC, through glocal's reader
    assert clip.frames.shape == (32, 48, 64, 3) and clip.audio is not None and clip.audio.shape == (1, 32000)
    assert float(np.abs(clip.audio).max()) > 0.1
    summary = json.loads((tiny / "realparts.json").read_text())
    assert summary["counts"]["videos"] == 6 and not [s for s in summary["stems_used"] if is_reserved(s)]


def test_masks_lie_inside_boxes(tiny: Path) -> None:
    ann = json.loads((tiny / "annotations.json").read_text())
    assert ann["format"] == "glocal-annotations-v1" and ann["classes"] == ["dog", "sheep"]
    for key, v in ann["videos"].items():
        assert v["num_frames"] == 32 and len(v["source_boxes"]) == 32 and len(v["distractors"]) == 1
        assert not is_reserved(v["source_stem"]) and not is_reserved(v["sound_stem"])
        pairs = [(v["source_masks"], v["source_boxes"])]
        pairs += [(p, d["boxes"]) for p, d in zip(v["distractor_masks"], v["distractors"])]
        assert v["distractors"][0]["label"] != v["label"]
        for rel, boxes in pairs:
            masks = np.load(tiny / rel)["masks"]
            assert masks.dtype == np.uint8 and masks.shape == (32, 48, 64)
            for k, box in enumerate(boxes):
                rows, cols = np.nonzero(masks[k])
                if rows.size:
                    x0, y0, x1, y1 = np.asarray(box) * [64, 48, 64, 48]
                    assert cols.min() >= x0 - 1e-3 and cols.max() + 1 <= x1 + 1e-3, (key, k)
                    assert rows.min() >= y0 - 1e-3 and rows.max() + 1 <= y1 + 1e-3, (key, k)
        src = np.load(tiny / v["source_masks"])["masks"]
        dis = np.load(tiny / v["distractor_masks"][0])["masks"]
        assert src.any() and not np.any(src & dis)  # occluded pixels belong to one animal only


def test_same_seed_same_files_and_overwrite_policy(media: tuple[Path, Path], tiny: Path, tmp_path: Path) -> None:
    cfg = json.loads((tiny / "realparts.json").read_text())["config"]
    out = tmp_path / "again"
    generate_real_parts(cfg, out, stamps=media[0], textures=media[1], workers=2, progress=False)
    for name in ("manifest.csv", "annotations.json"):
        assert (out / name).read_bytes() == (tiny / name).read_bytes()
    again = generate_real_parts(cfg, out, stamps=media[0], textures=media[1], workers=1, progress=False)
    assert again["skipped"]
    with pytest.raises(ConfigError, match="different"):
        generate_real_parts({**cfg, "seed": 4}, out, stamps=media[0], textures=media[1], progress=False)


def test_val_manifest_relabels_val_as_test_and_drops_test(tiny: Path) -> None:
    from glocal.data.synth.realparts.generate import val_as_test

    rows = [["a.mp4", "dog", "train", 1], ["b.mp4", "cow", "val", 2], ["c.mp4", "cow", "test", 3]]
    assert val_as_test(rows) == [["a.mp4", "dog", "train", 1], ["b.mp4", "cow", "test", 2]]
    assert rows[1][2] == "val"  # the input is not modified
    # the tiny set has no val split: no tuning manifest is written (it would have no test rows)
    assert not (tiny / "manifest_val.csv").exists()
    assert "val_manifest" not in json.loads((tiny / "realparts.json").read_text())["files"]


def test_shared_background_changes_only_the_background() -> None:
    """``shared_background``: every scene gets video 0's background; everything else of a scene
    (plants, animals, paths, sounds) is what the default draws for that index."""
    import dataclasses

    from glocal.data.synth.realparts.scene import sample_real_scene

    lengths = {stem: 2.0 for name in ("dog", "sheep") for stem in CATALOGUE[name][1]}
    base = RealPartsConfig(classes=("dog", "sheep"), num_videos=4, seed=5)
    shared = dataclasses.replace(base, shared_background=True)
    scenes = {k: [sample_real_scene(c, i, i % 2, lengths) for i in range(3)] for k, c in (("base", base), ("shared", shared))}
    assert scenes["base"][1].background != scenes["base"][2].background
    assert scenes["shared"][1].background == scenes["shared"][2].background == scenes["base"][0].background
    for own, same in zip(scenes["base"], scenes["shared"]):
        assert own.plants == same.plants and own.sound_stem == same.sound_stem
        assert [(a.label, a.stem, a.size) for a in own.animals] == [(a.label, a.stem, a.size) for a in same.animals]
        np.testing.assert_array_equal(own.animals[0].centers, same.animals[0].centers)


def test_motion_share_diagnostic_reads_the_masks(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/data/motion_share.py on the tiny set: shares are fractions, the sounding animal's
    share is part of either animal's, and the uniform share is the masks' area."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "motion_share.py"
    spec = importlib.util.spec_from_file_location("motion_share", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main([str(tiny), "--videos", "3", "--frames", "8", "--fps", "8", "--size", "32", "--map", "2,4,4"])
    out = capsys.readouterr().out
    shares = dict(part.rsplit(" ", 1) for part in out.split(": ", 1)[1].strip().split(", "))
    vals = {k: float(v) for k, v in shares.items()}
    assert 0 < vals["uniform_source"] < vals["uniform_either"] < 1
    assert 0 <= vals["motion_source"] <= vals["motion_either"] <= 1
    entry = json.loads((tiny / "annotations.json").read_text())["videos"]
    rows = [r for r in csv.DictReader(open(tiny / "manifest.csv")) if r["split"] == "train"][:3]
    # clip frame k at k / 8 s is annotation frame floor(k / 8 * fps)
    area = np.mean([(m[[int(k / 8 * float(entry[r["path"]]["fps"])) for k in range(8)]] > 0).mean()
                    for r in rows for m in [np.load(tiny / entry[r["path"]]["source_masks"])["masks"]]])
    assert vals["uniform_source"] == pytest.approx(area, abs=2e-3)
