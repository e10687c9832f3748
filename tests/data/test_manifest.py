"""Manifest reading: columns, relative paths, splits, and clear errors for bad rows."""

from __future__ import annotations

import numpy as np
import pytest

from glocal.data.manifest import read_manifest, resolve_manifest
from glocal.errors import DataError


def _write(path, text):
    path.write_text(text)
    return path


def test_reads_columns_and_resolves_paths(tmp_path):
    m = read_manifest(_write(tmp_path / "m.csv", "path,label,split\nv/a.mp4,dog,train\nv/b.mp4,cat,test\n/abs/c.mp4,dog,train\n"))
    assert len(m) == 3
    assert m.class_names == ["cat", "dog"]
    assert m.labels.tolist() == [1, 0, 1]
    assert m.paths[0] == str((tmp_path / "v" / "a.mp4").resolve())
    assert m.paths[2] == "/abs/c.mp4"
    train = m.split("train")
    assert len(train) == 2 and train.class_names == ["cat", "dog"]
    with pytest.raises(DataError, match="split \\['val'\\] is empty"):
        m.split("val")


def test_tsv_and_unlabelled(tmp_path):
    m = read_manifest(_write(tmp_path / "m.tsv", "path\tsplit\nx.mp4\ttrain\n"))
    assert m.labels.tolist() == [-1]
    with pytest.raises(DataError, match="no 'label' column"):
        read_manifest(tmp_path / "m.tsv", require_label=True)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "is empty"),
        ("file,label\na,b\n", "no 'path' column"),
        ("path,label\n", "no rows"),
        ("path,label\na.mp4,dog,extra\n", "line 2: expected 2 fields"),
        ("path,label\n,dog\n", "line 2: empty path"),
    ],
)
def test_bad_manifests_name_the_problem(tmp_path, text, fragment):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as err:
        read_manifest(path)
    assert fragment in str(err.value) and "bad.csv" in str(err.value)


def test_fixed_class_list_rejects_unknown(tmp_path):
    path = _write(tmp_path / "m.csv", "path,label\na.mp4,dog\nb.mp4,emu\n")
    with pytest.raises(DataError, match="emu"):
        read_manifest(path, class_names=["cat", "dog"])


def test_resolve_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="glocal synth"):
        resolve_manifest(tmp_path / "nope")
    with pytest.raises(DataError, match="no manifest"):
        resolve_manifest(tmp_path)


def test_columns_are_numpy_arrays(tmp_path):
    m = read_manifest(_write(tmp_path / "m.csv", "path,label,fold\na,x,1\nb,y,2\n"))
    assert isinstance(m.paths, np.ndarray) and isinstance(m.columns["fold"], np.ndarray)
    codes, names = m.encode("fold")
    assert names == ["1", "2"] and codes.tolist() == [0, 1]
