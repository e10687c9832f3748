"""Dataset layouts read by ``load_manifest``: each built in tmp_path in its exact on-disk form.

The loaders never decode media, so the "videos" here are small placeholder files.
"""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from glocal.data.denylist import apply_deny_list, read_deny_list, write_deny_list
from glocal.data.formats import detect_format, list_media, load_manifest
from glocal.data.manifest import Manifest, read_manifest
from glocal.errors import DataError


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _rel(m: Manifest) -> list[str]:
    return m.relative_paths().tolist()


# ------------------------------------------------------------------------------------------ csv


def test_csv_with_window_and_split_columns(tmp_path):
    _write(tmp_path / "manifest.csv", "path,label,start,end,split\na.mp4,dog,1.5,3,train\nb.mp4,cat,,,test\n")
    m = load_manifest(tmp_path)
    assert m.report.format == "csv" and "auto-detected" in m.report.detail
    assert m.class_names == ["cat", "dog"] and m.labels.tolist() == [1, 0]
    assert m.column("start").dtype == np.float64 and m.column("start")[0] == 1.5
    assert np.isnan(m.column("end")[1])
    assert _rel(load_manifest(tmp_path, split="test")) == ["b.mp4"]


def test_csv_file_given_directly_and_tsv(tmp_path):
    path = _write(tmp_path / "lists" / "all.tsv", "path\tlabel\n../v/a.mp4\tx\n")
    m = load_manifest(path)
    assert m.report.format == "csv" and m.paths[0] == str(tmp_path.resolve() / "v" / "a.mp4")


# -------------------------------------------------------------------------------------- folders


def test_folder_per_class_without_splits(tmp_path):
    _touch(tmp_path, "dog/1.mp4", "dog/sub/2.avi", "cat/3.mkv", "cat/notes.txt", "cat/.tmp.mp4")
    m = load_manifest(tmp_path)
    assert m.report.format == "folder"
    assert m.class_names == ["cat", "dog"]
    assert _rel(m) == ["cat/3.mkv", "dog/1.mp4", "dog/sub/2.avi"]
    assert m.labels.tolist() == [0, 1, 1]
    assert set(m.column("split").tolist()) == {"train"}
    with pytest.raises(DataError, match="splits present: \\['train'\\]"):
        load_manifest(tmp_path, split="test")


def test_folder_with_split_folders(tmp_path):
    _touch(tmp_path, "train/dog/1.mp4", "train/cat/2.mp4", "val/dog/3.mp4", "test/emu/4.mp4", "stray.mp4")
    assert detect_format(tmp_path)[0] == "unlabeled"  # a media file in the root means unlabeled
    (tmp_path / "stray.mp4").unlink()
    m = load_manifest(tmp_path)
    assert m.report.format == "folder" and m.class_names == ["cat", "dog", "emu"]
    assert dict(zip(_rel(m), m.column("split").tolist())) == {
        "train/cat/2.mp4": "train", "train/dog/1.mp4": "train", "val/dog/3.mp4": "val", "test/emu/4.mp4": "test"}
    val = load_manifest(tmp_path, split="val")
    assert val.labels.tolist() == [1] and val.class_names == ["cat", "dog", "emu"]


def test_folder_reports_stray_files_and_unknown_classes(tmp_path):
    _touch(tmp_path, "dog/1.mp4", "cat/2.mp4", "owl/3.mp4")
    m = load_manifest(tmp_path, "folder", class_names=["dog", "cat"])
    assert m.labels.tolist() == [1, 0] and m.report.count("file of an unknown class") == 1


def test_unlabeled_folder(tmp_path):
    _touch(tmp_path, "a.mp4", "deep/er/b.webm", "c.wav", "d.txt")
    m = load_manifest(tmp_path)
    assert m.report.format == "unlabeled"
    assert _rel(m) == ["a.mp4", "deep/er/b.webm"] and m.labels.tolist() == [-1, -1]
    assert m.class_names == []
    sounds = load_manifest(tmp_path, "unlabeled", extensions=[".wav"])
    assert _rel(sounds) == ["c.wav"]


def test_list_media_skips_hidden_and_follows_links_once(tmp_path):
    _touch(tmp_path, "a/x.mp4", ".hidden/y.mp4")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    assert list_media(tmp_path) == ["a/x.mp4"]


# ---------------------------------------------------------------------------------------- ucf101


def _ucf(root: Path) -> None:
    lists = root / "ucfTrainTestlist"
    _write(lists / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    _write(lists / "trainlist01.txt",
           "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nArchery/v_Archery_g08_c01.avi 2\r\n")
    _write(lists / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n")
    _write(lists / "trainlist02.txt", "Archery/v_Archery_g01_c01.avi 2\n")
    _write(lists / "testlist02.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n")
    _touch(root / "UCF-101", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g08_c01.avi",
           "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi")  # Archery g01 is missing on disk


def test_ucf101_official_splits(tmp_path):
    _ucf(tmp_path)
    m = load_manifest(tmp_path)
    assert m.report.format == "ucf101" and "classInd.txt" in m.report.detail
    assert m.class_names == ["ApplyEyeMakeup", "Archery"]
    assert Path(m.root).name == "UCF-101"
    assert dict(zip(_rel(m), zip(m.labels.tolist(), m.column("split").tolist()))) == {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": (0, "train"),
        "Archery/v_Archery_g08_c01.avi": (1, "train"),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": (0, "test"),
    }
    assert m.report.count("missing file") == 1 and "v_Archery_g01_c01.avi" in m.report.examples["missing file"][0]
    fold2 = load_manifest(tmp_path, "ucf101", fold=2)
    assert fold2.column("split").tolist() == ["test"]  # the fold-2 train video is the missing one
    with pytest.raises(DataError, match="trainlist03.txt"):
        load_manifest(tmp_path, "ucf101", fold=3)
    with pytest.raises(DataError, match="fold must be 1, 2 or 3"):
        load_manifest(tmp_path, "ucf101", fold=4)


def test_ucf101_split_files_elsewhere_and_bad_lines(tmp_path):
    _ucf(tmp_path / "data")
    lists = tmp_path / "data" / "ucfTrainTestlist"
    moved = tmp_path / "lists"
    lists.rename(moved)
    _write(moved / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 7\n")
    with pytest.raises(DataError, match=r"trainlist01.txt, line 2: label '7'"):
        load_manifest(tmp_path / "data", "ucf101", split_file=moved)
    m = load_manifest(tmp_path / "data", split_file=moved / "classInd.txt", on_bad_row="skip")
    assert m.report.format == "ucf101" and m.report.count("bad row") == 1 and len(m) == 2


# ---------------------------------------------------------------------------------------- hmdb51


def test_hmdb51_splits(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    _write(splits / "brush_hair_test_split1.txt", "a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    _write(splits / "cartwheel_test_split1.txt", "d.avi 1\ne.avi 2\n")
    _write(splits / "cartwheel_test_split2.txt", "d.avi 2\ne.avi 1\n")
    _touch(tmp_path / "hmdb51_org", "brush_hair/a.avi", "brush_hair/b.avi", "brush_hair/c.avi",
           "cartwheel/d.avi", "cartwheel/e.avi")
    m = load_manifest(tmp_path)
    assert m.report.format == "hmdb51"
    assert m.class_names == ["brush_hair", "cartwheel"]
    got = dict(zip(_rel(m), m.column("split").tolist()))
    assert got == {"brush_hair/a.avi": "train", "brush_hair/b.avi": "test", "brush_hair/c.avi": "unused",
                   "cartwheel/d.avi": "train", "cartwheel/e.avi": "test"}
    assert len(load_manifest(tmp_path, split="train")) == 2
    fold2 = load_manifest(tmp_path, "hmdb51", fold=2, split="train")
    assert _rel(fold2) == ["cartwheel/e.avi"] and fold2.class_names == ["cartwheel"]
    _write(splits / "cartwheel_test_split1.txt", "d.avi 1\ne.avi 3\n")
    with pytest.raises(DataError, match=r"cartwheel_test_split1.txt, line 2: expected '<video> 0\|1\|2'"):
        load_manifest(tmp_path, "hmdb51")


# -------------------------------------------------------------------------------------- kinetics

_K_CSV = (
    "label,youtube_id,time_start,time_end,split\n"
    "abseiling,AAA,10,20,train\n"
    "air drumming,BBB,0,10,train\n"
    "abseiling,CCC,5,15,val\n"
    "air drumming,DDD,30,40,val\n"
)


@pytest.mark.parametrize("layout", ["split_label", "flat"])
def test_kinetics_both_layouts_and_missing_files(tmp_path, layout):
    _write(tmp_path / "annotations" / "train.csv", _K_CSV)
    if layout == "split_label":
        _touch(tmp_path, "train/abseiling/AAA_000010_000020.mp4", "train/air_drumming/BBB_000000_000010.mp4",
               "val/abseiling/CCC_000005_000015.mp4")
    else:
        _touch(tmp_path, "AAA_000010_000020.mp4", "BBB_000000_000010.mp4", "CCC_000005_000015.mp4")
    m = load_manifest(tmp_path)
    assert m.report.format == "kinetics"
    assert m.class_names == ["abseiling", "air drumming"]
    assert m.column("youtube_id").tolist() == ["AAA", "BBB", "CCC"]
    assert m.labels.tolist() == [0, 1, 0] and m.column("split").tolist() == ["train", "train", "val"]
    assert m.column("time_start").tolist() == [10, 0, 5]
    assert m.report.count("missing file") == 1 and "DDD_000030_000040" in m.report.examples["missing file"][0]
    assert "3 of 4 listed clips found" in str(m.report)


def test_kinetics_csv_as_root_bad_rows_and_duplicates(tmp_path):
    csv_path = _write(tmp_path / "k.csv", _K_CSV + "abseiling,EEE,20,10,train\n")
    _touch(tmp_path, "train/abseiling/AAA_000010_000020.mp4", "val/abseiling/AAA_000010_000020.mp4",
           "other/AAA_000010_000020.mp4")
    with pytest.raises(DataError, match=r"k.csv, line 6: time_start/time_end"):
        load_manifest(csv_path)
    m = load_manifest(csv_path, on_bad_row="skip", split="train")
    assert _rel(m) == ["train/abseiling/AAA_000010_000020.mp4"]  # the <split>/<label>/ copy wins
    assert m.report.count("bad row") == 1 and m.report.count("missing file") == 3


# ----------------------------------------------------------------------------------- detection


def test_detection_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_manifest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no dataset found.*data_formats.md"):
        load_manifest(tmp_path / "empty")
    with pytest.raises(DataError, match="unknown dataset format"):
        load_manifest(tmp_path, "webdataset")
    _write(tmp_path / "two" / "a.csv", "path\nx.mp4\n")
    _write(tmp_path / "two" / "b.csv", "path\ny.mp4\n")
    with pytest.raises(DataError, match="several manifests"):
        load_manifest(tmp_path / "two")
    assert len(load_manifest(tmp_path / "two", manifest="b.csv")) == 1


def test_auto_detection_is_logged(tmp_path, caplog):
    _touch(tmp_path, "dog/1.mp4")
    with caplog.at_level(logging.INFO, logger="glocal.data"):
        load_manifest(tmp_path)
    assert "reading as folder" in caplog.text


# ------------------------------------------------------------------------------------ deny list


def test_deny_list_round_trip_and_report(tmp_path):
    _touch(tmp_path, "dog/1.mp4", "dog/2.mp4", "cat/vidéo 日本.mp4")
    deny = write_deny_list(tmp_path / "deny.txt", [("dog/2.mp4", "undecodable: moov atom not found"),
                                                  ("cat/vidéo 日本.mp4", "silent-audio"),
                                                  ("gone/x.mp4", "missing")], header="glocal scan test")
    assert read_deny_list(deny)[1] == ("cat/vidéo 日本.mp4", "silent-audio")
    m = load_manifest(tmp_path, deny_list=deny)
    assert _rel(m) == ["dog/1.mp4"]
    assert m.report.count("denied file") == 2
    assert "moov atom" in str(m.report) and "1 of 3 entries" in str(m.report)
    full = load_manifest(tmp_path)
    assert full.report.count("denied file") == 0  # reports are not shared between loads
    assert len(apply_deny_list(full, [str(Path(full.paths[0]))])) == 2  # absolute entries work too
    with pytest.raises(DataError, match="deny list not found"):
        load_manifest(tmp_path, deny_list=tmp_path / "missing.txt")


# ------------------------------------------------------------------------------------ memory


def test_million_row_manifest_is_compact():
    n = 1_000_000
    rel = np.char.add("videos/v_", np.arange(n).astype("U7"))
    columns = {"split": np.where(np.arange(n) % 5, "train", "test"), "extra": np.array(["a"] * n, dtype=object)}
    m = Manifest(root=Path("/data"), paths=rel, labels=np.arange(n) % 400, class_names=[str(i) for i in range(400)],
                 columns=columns)
    for arr in (m.paths, m.labels, *m.columns.values()):
        assert arr.dtype != object and arr.dtype.kind in "Ui"
        assert arr.nbytes == n * arr.itemsize  # one flat buffer, nothing hanging off it
    assert m.paths.itemsize == 4 * len("videos/v_9999999")
    tracemalloc.start()
    train = m.split("train")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(train) == 800_000 and train.paths.dtype == m.paths.dtype
    # selecting rows costs about the selected buffers (+ a mask), not per-row objects
    selected = sum(a.nbytes for a in (train.paths, train.labels, *train.columns.values()))
    assert peak < 1.5 * selected + 4 * n


def test_read_manifest_builds_fixed_width_columns(tmp_path):
    n = 20_000
    lines = "\n".join(f"v/{i}.mp4,c{i % 7},{'train' if i % 3 else 'test'}" for i in range(n))
    m = read_manifest(_write(tmp_path / "m.csv", "path,label,split\n" + lines + "\n"))
    assert len(m) == n and m.paths.dtype.kind == "U" and m.column("split").dtype.kind == "U"
    assert m.labels.dtype == np.int64 and m.class_names == [f"c{i}" for i in range(7)]
    assert m.paths[123] == str(tmp_path.resolve() / "v" / "123.mp4")


def test_kinetics_test_csv_without_labels(tmp_path):
    _write(tmp_path / "test.csv", "youtube_id,time_start,time_end\nZZZ,0,10\n")
    _touch(tmp_path, "test/ZZZ_000000_000010.mp4")
    m = load_manifest(tmp_path)
    assert m.report.format == "kinetics" and m.labels.tolist() == [-1] and m.column("split").tolist() == ["test"]
