"""benchmarks/data/cross_gallery.py: one set's test rows as queries, another's train rows as gallery."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("cross_gallery", ROOT / "benchmarks" / "data" / "cross_gallery.py")
cross_gallery = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cross_gallery)


def _set(root: Path, rows: list[tuple[str, str, str]], extra: str | None = None) -> Path:
    (root / "videos").mkdir(parents=True)
    fields = ["path", "label", "split"] + ([extra] if extra else [])
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for path, label, split in rows:
            (root / path).write_bytes(b"x")
            w.writerow([path, label, split] + (["e"] if extra else []))
    return root


def test_queries_are_test_rows_and_gallery_train_rows_through_links(tmp_path) -> None:
    q = _set(tmp_path / "a", [("videos/0.mp4", "owl", "test"), ("videos/1.mp4", "cow", "train"),
                              ("videos/2.mp4", "cow", "test"), ("videos/3.mp4", "owl", "val")])
    g = _set(tmp_path / "b", [("videos/0.mp4", "cow", "train"), ("videos/1.mp4", "owl", "train"),
                              ("videos/2.mp4", "owl", "test")], extra="fold")
    out = tmp_path / "cross"
    assert cross_gallery.main(["--queries", str(q), "--gallery", str(g), "--out", str(out)]) == 0
    with (out / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    got = [(r["path"], r["label"], r["split"], r["fold"]) for r in rows]
    assert got == [("queries/videos/0.mp4", "owl", "test", ""), ("queries/videos/2.mp4", "cow", "test", ""),
                   ("gallery/videos/0.mp4", "cow", "train", "e"), ("gallery/videos/1.mp4", "owl", "train", "e")]
    # every path resolves to the file of the set it came from
    assert (out / rows[0]["path"]).resolve() == (q / "videos/0.mp4").resolve()
    assert (out / rows[2]["path"]).resolve() == (g / "videos/0.mp4").resolve()
    assert sorted(p.name for p in out.iterdir()) == ["gallery", "manifest.csv", "queries"]  # no temporary file left


def test_absolute_paths_are_kept() -> None:
    rows = cross_gallery.cross_rows([{"path": "/data/q.mp4", "label": "owl", "split": "test"}],
                                    [{"path": "/data/g.mp4", "label": "owl", "split": "train"}])
    assert [r["path"] for r in rows] == ["/data/q.mp4", "/data/g.mp4"]


def test_a_query_class_missing_from_the_gallery_is_named(tmp_path) -> None:
    q = _set(tmp_path / "a", [("videos/0.mp4", "owl", "test"), ("videos/1.mp4", "frog", "test")])
    g = _set(tmp_path / "b", [("videos/0.mp4", "owl", "train")])
    with pytest.raises(SystemExit, match=r"\['frog'\] never occur in the gallery"):
        cross_gallery.main(["--queries", str(q), "--gallery", str(g), "--out", str(tmp_path / "c")])
    assert not (tmp_path / "c").exists()  # checked before anything is written


def test_refuses_a_non_empty_out_and_a_root_without_manifest(tmp_path) -> None:
    q = _set(tmp_path / "a", [("videos/0.mp4", "owl", "test")])
    g = _set(tmp_path / "b", [("videos/0.mp4", "owl", "train")])
    out = tmp_path / "c"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        cross_gallery.main(["--queries", str(q), "--gallery", str(g), "--out", str(out)])
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(SystemExit, match="manifest not found"):
        cross_gallery.main(["--queries", str(tmp_path), "--gallery", str(g), "--out", str(tmp_path / "d")])


def test_a_tab_separated_manifest_is_read_like_glocal_reads_it(tmp_path) -> None:
    q = tmp_path / "a"
    (q / "videos").mkdir(parents=True)
    (q / "videos" / "0.mp4").write_bytes(b"x")
    (q / "manifest.csv").write_text("path\tlabel\tsplit\nvideos/0.mp4\towl\ttest\n")
    g = _set(tmp_path / "b", [("videos/0.mp4", "owl", "train")])
    cross_gallery.main(["--queries", str(q), "--gallery", str(g), "--out", str(tmp_path / "c")])
    with (tmp_path / "c" / "manifest.csv").open(newline="") as f:
        rows = [(r["path"], r["label"], r["split"]) for r in csv.DictReader(f)]
    assert rows == [("queries/videos/0.mp4", "owl", "test"), ("gallery/videos/0.mp4", "owl", "train")]
