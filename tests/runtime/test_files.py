"""runtime.files: atomic writes (old or new file, never a torn one; one-line errors) and data URIs."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from glocal.errors import DataError
from glocal.runtime import files
from glocal.runtime.files import atomic_path, png_data_uri, write_atomic


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_text() == "two" and os.listdir(target.parent) == ["out.json"]


def test_a_full_disk_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out.txt"
    write_atomic(target, "before")

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(DataError) as exc:
        write_atomic(target, "after", what="results", fix="free space there")
    assert str(exc.value) == f"cannot write results {target} (No space left on device); free space there"
    assert target.read_text() == "before" and os.listdir(tmp_path) == ["out.txt"]


def test_a_writer_error_leaves_nothing_and_other_errors_propagate(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    with pytest.raises(DataError, match=r"^cannot write .*model\.bin \(boom\); "):
        with atomic_path(target, errors=(OSError, RuntimeError)) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("a bug, not a disk problem")
    assert os.listdir(tmp_path) == []


def test_files_get_the_mode_of_a_new_file(tmp_path: Path) -> None:
    """A writer that makes its file owner-only (safetensors does) still yields a shareable file."""
    target = tmp_path / "weights.safetensors"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"x")
        os.chmod(tmp, 0o600)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_png_data_uri(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\nrest"
    (tmp_path / "a.png").write_bytes(png)
    for given in (png, tmp_path / "a.png", str(tmp_path / "a.png")):
        uri = png_data_uri(given)
        assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1]) == png
