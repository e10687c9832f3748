"""Typed configs: dataclasses loaded from YAML, with ``key.sub=value`` command-line overrides.

Every config section is a plain dataclass. :func:`build` turns a nested ``dict`` into the
dataclass, converting and checking every value against its type hint (``int``, ``float``,
``bool``, ``str``, ``Literal[...]``, ``tuple[...]``, ``list[...]``, ``dict``, ``Optional``,
nested dataclasses) and against the bounds written on the field::

    tau: Annotated[float, Range(1e-4, 100.0)] = 0.07               # 1e-4 <= tau <= 100
    lr: Annotated[float, Range(0.0, None, lo_open=True)] = 1e-3     # lr > 0
    crop_scale: Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)] = (0.2, 1.0)
    grid: tuple[Annotated[int, Range(1)], ...] = (2, 4, 4)          # every entry >= 1

Unknown keys, wrong types and out-of-range values raise :class:`~glocal.errors.ConfigError`
naming the full key, the value and what is allowed. A dataclass can add a ``validate(self)``
method for rules between fields; it is called after construction. :func:`check` applies the
same to a dataclass built directly (``WorldConfig(fps=8)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")

__all__ = ["Range", "Interval", "build", "check", "field_types", "to_dict", "load_yaml", "apply_overrides",
           "check_range", "check_choice"]


class _BoundError(ConfigError):
    """A value of the right type outside the bounds of its field (not retried as another type of a union)."""


def _num(x: float) -> str:
    return f"{x:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a number field, written on it: ``Annotated[int, Range(1, 4096)]``.

    ``lo`` / ``hi`` are inclusive; ``None`` leaves that side open (unbounded); ``lo_open`` /
    ``hi_open`` exclude the bound itself (``Range(0.0, None, lo_open=True)``: ``> 0``);
    ``multiple_of`` also asks for a multiple (``Range(32, 1024, multiple_of=2)``: even). ``None``
    values (an ``Optional`` field) pass; NaN never does."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    multiple_of: int | None = None

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else repr(self.lo)
        hi = "inf" if self.hi is None else repr(self.hi)
        text = f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        return text + (f", a multiple of {self.multiple_of}" if self.multiple_of else "")

    def contains(self, value: float) -> bool:
        if value != value:  # NaN
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            return False
        return not (self.multiple_of and value % self.multiple_of)

    def check(self, key: str, value: Any) -> None:
        """Raise :class:`ConfigError` (``config key 'k' = v is out of range; allowed: [lo, hi]``)."""
        if value is not None and not self.contains(value):
            raise _BoundError(f"config key '{key}' = {value!r} is out of range; allowed: {self}")


@dataclasses.dataclass(frozen=True)
class Interval:
    """A ``(lo, hi)`` pair field with ``lo <= hi``, both inside the bounds (the interval rule):
    ``Annotated[tuple[float, float], Interval(0.0, 1.0, lo_open=True)]`` is ``0 < lo <= hi <= 1``.
    Bounds as in :class:`Range`."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __str__(self) -> str:
        left = "" if self.lo is None else f"{_num(self.lo)} {'<' if self.lo_open else '<='} "
        right = "" if self.hi is None else f" {'<' if self.hi_open else '<='} {_num(self.hi)}"
        return f"{left}lo <= hi{right}"

    def check(self, key: str, value: Any) -> None:
        """Raise :class:`ConfigError` (``config key 'k' = [a, b] must satisfy 0 < lo <= hi <= 1``)."""
        if value is None:
            return
        lo, hi = value
        inside = Range(self.lo, self.hi, self.lo_open, self.hi_open)
        if not (inside.contains(lo) and inside.contains(hi) and lo <= hi):
            raise _BoundError(f"config key '{key}' = {list(value)} must satisfy {self}")


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise :class:`ConfigError` unless ``lo <= value <= hi`` (either bound may be None); NaN never
    passes. For bounds that depend on another field (``validate``); a fixed bound is a :class:`Range`
    on the field."""
    Range(lo, hi).check(key, value)


def check_choice(key: str, value: Any, allowed: typing.Iterable[Any]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed; allowed values: {allowed}")


def _markers(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(base type, bound markers)`` of ``Annotated[base, *markers]`` (else ``(tp, ())``)."""
    if get_origin(tp) is Annotated:
        base, *extras = get_args(tp)
        return base, tuple(m for m in extras if callable(getattr(m, "check", None)))
    return tp, ()


def _type_name(tp: Any) -> str:
    """Readable type for error messages: ``int | 'auto' | 'ffmpeg'``, ``float``, ..."""
    tp = _markers(tp)[0]
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (tuple, list) and get_args(tp):
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _type_name(a) for a in get_args(tp))}]"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


#: how YAML 1.1 (PyYAML) reads these words: a ``Literal`` that has them takes them back
_YAML_BOOL_WORDS = {True: ("on", "yes", "true", "y"), False: ("off", "no", "false", "n")}


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` to type ``tp`` (checking the bounds written on it) or raise ConfigError naming ``key``."""
    tp, markers = _markers(tp)
    out = _convert_type(value, tp, key)
    for marker in markers:
        marker.check(key, out)
    return out


def _convert_type(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except _BoundError:
                raise  # the type fits, the value does not: say so, not "matches none"
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}' = {value!r} matches none of {_type_name(tp)}")
    if origin is Literal:
        allowed = list(get_args(tp))
        if isinstance(value, bool):
            found = [a for a in allowed if a is value or (isinstance(a, str) and a.lower() in _YAML_BOOL_WORDS[value])]
        else:
            found = [a for a in allowed if not isinstance(a, bool) and a == value]
        if not found:
            raise ConfigError(f"config key '{key}' = {value!r} is not allowed; allowed values: {allowed}")
        return found[0]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping (section), got {value!r}")
        return build(tp, value, prefix=f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key '{key}' must have {len(args)} items, got {len(value)}: {value!r}")
            items = [_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        args = get_args(tp)
        if args:
            return {str(k): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return str(value)
    return value


def _hints(cls: type) -> dict[str, Any]:
    """Type hints of a dataclass with their ``Annotated`` bounds (string annotations resolved)."""
    return get_type_hints(cls, include_extras=True)


def build(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (missing keys take their defaults): every given value
    converted to its field's type and checked against the field's bounds, then ``validate()``."""
    data = dict(data or {})
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown config key '{prefix}{key}'{hint}; allowed keys: {sorted(fields)}"
        )
    kwargs = {name: _convert(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def check(obj: T, prefix: str = "") -> T:
    """``obj`` (a config dataclass built directly, e.g. ``WorldConfig(fps=8)``) converted and checked
    as :func:`build` does: a new instance (lists as tuples, ints as floats where the field says so),
    or :class:`ConfigError` naming the first bad key."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"check() takes a dataclass instance, got {obj!r}")
    names = {f.name for f in dataclasses.fields(obj) if f.init}
    return build(type(obj), {k: v for k, v in to_dict(obj).items() if k in names}, prefix)


def field_types(cls: type) -> dict[str, Any]:
    """``{field: type without its bounds}`` of a config dataclass (e.g. to parse a command-line alias)."""
    return {name: _markers(tp)[0] for name, tp in _hints(cls).items()}


def to_dict(obj: Any) -> Any:
    """Plain ``dict``/``list`` form of a (nested) config dataclass, safe for YAML and JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with safe loading; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML scalars/lists) to a nested dict."""
    out = _deepcopy_dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{item}' has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy_dict(v) if isinstance(v, Mapping) else v for k, v in d.items()}
