"""glocal's PyAV calls against the API of the newest PyAV release checked so far (19.0.2).

PyAV 19 needs Python >= 3.12, so a CI on Python 3.11 never imports it; its type stubs, stored
as ``tests/fixtures/av_api.json`` (see ``tests/fixtures/make_av_api.py`` for how it is made),
stand in for it. Every ``av.<name>`` glocal refers to must exist there, every keyword argument
of glocal's PyAV calls must be a parameter there, and the stream/frame/codec attributes the
readers use must be members there.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from glocal.data import av_compat

ROOT = Path(__file__).resolve().parents[2]
API = json.loads((ROOT / "tests" / "fixtures" / "av_api.json").read_text())
MODULES: dict[str, dict] = API["modules"]

# PyAV calls glocal makes, by the called name -> the stub functions / methods it may be.
CALLS: dict[str, list[str]] = {
    "av.open": ["av.container.core:open"],
    "AudioResampler": ["av.audio.resampler:AudioResampler.__init__"],
    "AudioLayout": ["av.audio.layout:AudioLayout.__init__"],
    "VideoReformatter": ["av.video.reformatter:VideoReformatter.__init__"],
    "reformat": ["av.video.reformatter:VideoReformatter.reformat"],
    "seek": ["av.container.input:InputContainer.seek"],
    "demux": ["av.container.input:InputContainer.demux"],
    "add_stream": ["av.container.output:OutputContainer.add_stream"],
    "from_ndarray": ["av.video.frame:VideoFrame.from_ndarray", "av.audio.frame:AudioFrame.from_ndarray"],
    "Capture": ["av.logging:Capture.__init__"],
}

# Attributes the readers use on PyAV objects (io.py, scan.py, av_writer.py): class -> members.
ATTRIBUTES: dict[str, list[str]] = {
    "av.stream:Stream": ["time_base", "start_time", "duration", "average_rate", "guessed_rate", "base_rate",
                         "codec_context", "type"],
    "av.video.stream:VideoStream": ["thread_type", "width", "height", "pix_fmt", "options", "decode", "encode"],
    "av.audio.stream:AudioStream": ["layout", "bit_rate", "decode", "encode"],
    "av.codec.context:CodecContext": ["thread_count", "thread_type", "skip_frame"],
    "av.video.codeccontext:VideoCodecContext": ["width", "height"],
    "av.audio.codeccontext:AudioCodecContext": ["sample_rate", "channels", "layout", "frame_size"],
    "av.frame:Frame": ["pts", "time_base"],
    "av.video.frame:VideoFrame": ["rotation", "width", "height", "planes", "to_ndarray"],
    "av.audio.frame:AudioFrame": ["samples", "format", "planes", "sample_rate", "to_ndarray"],
    "av.packet:Packet": ["pts", "dts", "time_base", "duration", "size"],
    "av.container.input:InputContainer": ["duration", "streams", "demux", "seek", "close"],
    "av.container.core:Container": ["format"],
    "av.audio.layout:AudioLayout": ["nb_channels", "name"],
    "av.video.plane:VideoPlane": ["line_size"],
}


def _sources() -> list[Path]:
    """glocal's modules and benchmarks that use PyAV."""
    files = sorted((ROOT / "src" / "glocal").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
    return [f for f in files if "import av" in f.read_text() or "from av" in f.read_text()]


def _class(ref: str) -> dict:
    mod, cls = ref.split(":")
    return MODULES[mod]["classes"][cls]


def _members(ref: str) -> dict[str, list[str] | None]:
    """Members of a stub class including those inherited from stub classes in the fixture."""
    mod, _ = ref.split(":")
    c = _class(ref)
    out: dict[str, list[str] | None] = {}
    for base in c["bases"]:
        name = base.split("[")[0].split(".")[-1]
        for m, data in MODULES.items():
            if name in data["classes"] and f"{m}:{name}" != ref:
                out.update(_members(f"{m}:{name}"))
                break
    out.update(c["members"])
    return out


def _params(ref: str) -> list[str]:
    mod, name = ref.split(":")
    if "." in name:
        cls, meth = name.split(".")
        params = _members(f"{mod}:{cls}").get(meth)
    else:
        params = MODULES[mod]["functions"].get(name)
    assert params is not None, f"PyAV {API['pyav']} has no {ref}"
    return params


def _exists(dotted: str) -> bool:
    """Whether ``av.x.y`` names a module, function, class or name in the fixture."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        mod = ".".join(parts[:i])
        if mod in MODULES or any(m.startswith(mod + ".") for m in MODULES):
            rest = parts[i:]
            if not rest:
                return True
            pool = [m for m in MODULES if m == mod or (m.startswith(mod + ".") and "*" in MODULES[mod]["names"])]
            return any(rest[0] in MODULES[m]["functions"] or rest[0] in MODULES[m]["classes"]
                       or rest[0] in MODULES[m]["names"] for m in pool) if pool else False
    return False


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _av_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "parent", None), ast.Attribute):
            d = _dotted(node)
            if d and d.startswith("av."):
                names.add(d)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "av":
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _calls(tree: ast.AST) -> list[tuple[str, list[str], int]]:
    """(call key in CALLS, keyword names, line) of every PyAV call with keywords."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        key = "av.open" if _dotted(f) == "av.open" else (
            f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None)
        if key in CALLS and node.keywords:
            out.append((key, [k.arg for k in node.keywords if k.arg is not None], node.lineno))
    return out


def test_fixture_is_the_stubs_of_pyav_19() -> None:
    assert API["pyav"] == "19.0.2"
    assert "hwaccel" in _params("av.container.core:open")  # a keyword new in the stubs: the fixture is real


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_every_av_name_exists_in_pyav_19(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # mark parents so only whole chains are checked
        for child in ast.iter_child_nodes(node):
            child.parent = node  # type: ignore[attr-defined]
    missing = sorted(n for n in _av_names(tree) if not _exists(n))
    assert not missing, f"{path.name} uses names PyAV {API['pyav']} does not have: {missing}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_every_keyword_of_pyav_calls_exists_in_pyav_19(path: Path) -> None:
    bad = []
    for key, keywords, line in _calls(ast.parse(path.read_text())):
        accepted = set().union(*(_params(ref) for ref in CALLS[key]))
        if any(p.startswith("**") for p in accepted):
            continue
        bad += [f"line {line}: {key}({k}=...)" for k in keywords if k not in accepted]
    assert not bad, f"{path.name}: keywords PyAV {API['pyav']} does not accept: {bad}"


def test_version_dependent_keywords_fit_pyav_19() -> None:
    """The keyword sets chosen per version (``**OPEN_KWARGS`` etc.) fit PyAV 19's signatures."""
    assert set(av_compat.open_kwargs(19)) <= set(_params("av.container.core:open"))
    assert set(av_compat.reformat_kwargs(19)) <= set(_params("av.video.reformatter:VideoReformatter.reformat"))


@pytest.mark.parametrize("ref", sorted(ATTRIBUTES))
def test_attributes_the_readers_use_exist_in_pyav_19(ref: str) -> None:
    members = _members(ref)
    missing = [a for a in ATTRIBUTES[ref] if a not in members]
    assert not missing, f"PyAV {API['pyav']} {ref} lacks {missing}"
