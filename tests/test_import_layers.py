"""The house rule of docs/architecture.md: every import in ``src/glocal`` points down the layer
order, and no files import each other in a loop.

Layers, lowest first (each may import only the layers below it)::

    errors  ->  boxes, config  ->  runtime  ->  models, objectives  ->  data  ->  methods
        ->  train, eval (train may use eval for its monitor; eval never imports train)
        ->  demo, api, study  ->  cli

Every ``import`` statement counts, also those inside functions and under ``TYPE_CHECKING``: a
lazy import hides a dependency from the reader, not from the structure.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "glocal"

#: top-level part of the package -> its layer (0 = ground)
LAYERS: dict[str, int] = {
    "errors": 0,
    "boxes": 1, "config": 1,
    "runtime": 2,
    "models": 3, "objectives": 3,
    "data": 4,
    "methods": 5,
    "train": 6, "eval": 6,
    "demo": 7, "api": 7, "study": 7,
    "cli": 8,
}
#: imports between parts of the same layer that the house allows (importer, imported)
SIDEWAYS = {("train", "eval")}


def module_name(path: Path) -> str:
    parts = ["glocal", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported_modules(name: str, source: str, known: dict[str, Path], *, is_package: bool = False) -> set[str]:
    """The glocal modules that module ``name`` (whose code is ``source``) imports: ``from pkg
    import sub`` counts as ``pkg.sub`` when that is a module, else as ``pkg``."""
    package = name if is_package else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("glocal")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("glocal"):
                continue
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
            found |= subs if subs else {target}
            if subs and len(subs) < len(node.names):
                found.add(target)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_modules(name, path.read_text(), known, is_package=path.name == "__init__.py")
            for name, path in known.items()}


def part(module: str) -> str | None:
    """``glocal.data.io`` -> ``data``; the package's own ``__init__`` has no part."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in edges.items():
        a = part(src)
        for dst in targets:
            b = part(dst)
            if a is None or b is None or a == b:
                continue
            if a not in LAYERS or b not in LAYERS:
                bad.append(f"{src} -> {dst}: '{a if a not in LAYERS else b}' has no layer in LAYERS")
            elif LAYERS[b] > LAYERS[a] or (LAYERS[b] == LAYERS[a] and (a, b) not in SIDEWAYS):
                bad.append(f"{src} (layer {LAYERS[a]}) -> {dst} (layer {LAYERS[b]})")
    return sorted(bad)


def import_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return circles


def test_every_import_points_down_the_layers():
    assert upward_imports(graph()) == []


def test_no_import_circles():
    assert import_circles(graph()) == []


def test_the_checker_catches_what_it_should():
    edges = {
        "glocal.data.build": {"glocal.methods.base"},  # data -> methods: up
        "glocal.eval.suite": {"glocal.train.config"},  # eval -> train: sideways, not allowed
        "glocal.train.monitor": {"glocal.eval.features"},  # train -> eval: allowed
        "glocal.models.heads": {"glocal.objectives.glcm"},  # peers on one layer: not allowed
        "glocal.methods.base": {"glocal.data.build", "glocal.runtime.precision"},  # down: fine
    }
    assert upward_imports(edges) == [
        "glocal.data.build (layer 4) -> glocal.methods.base (layer 5)",
        "glocal.eval.suite (layer 6) -> glocal.train.config (layer 6)",
        "glocal.models.heads (layer 3) -> glocal.objectives.glcm (layer 3)",
    ]
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("source, expected", [
    ("from ..runtime.precision import autocast", {"glocal.runtime.precision"}),
    ("from . import io", {"glocal.data.io"}),
    ("from .. import config", {"glocal.config"}),
    ("import glocal.errors", {"glocal.errors"}),
    ("def f():\n    from ..methods import build_method", {"glocal.methods"}),
])
def test_imports_are_resolved(source, expected):
    assert imported_modules("glocal.data.probe", source, modules()) == expected


def test_datasets_live_in_the_data_layer():
    """One data layer: no ``Dataset`` subclass outside ``glocal/data`` (evaluation reads samples
    through ``MultiViewDataset`` and its samplers, so it inherits the skip policy and one decode)."""
    outside = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "data":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and b.id.endswith("Dataset"))
                or (isinstance(b, ast.Attribute) and b.attr.endswith("Dataset"))
                for b in node.bases
            ):
                outside.append(f"{path.relative_to(SRC)}: {node.name}")
    assert outside == []
