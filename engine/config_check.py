"""How every configuration section is checked: one way, with messages that name the field.

A field's range is a msgspec constraint on its annotation (`Annotated[int, Meta(ge=1, le=16)]`),
which msgspec checks when the file is decoded. msgspec does not check constraints on a Struct
built in code (a constructor, msgspec.structs.replace), so `check_struct` sends one through
msgspec again. Either way a failure is a ConfigError reading `quoter.levels: expected 1..16,
got 0`: the field as the file spells it, what it accepts, what it got. Rules no annotation can
say (one field against another, against the instruments) are plain code in each section's
`validate`; rules across sections live in engine/config.py's `check`.
"""
from __future__ import annotations

import re
import types
import typing
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


# Constraints several sections share.
Core = Annotated[int, msgspec.Meta(ge=-1, description="-1 (unpinned) or a CPU number")]
WsUrl = Annotated[str, msgspec.Meta(pattern=r"^(wss?://|$)", description="ws:// or wss:// URL")]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


def check_struct(obj: msgspec.Struct, section: str = "") -> None:
    """Check `obj`'s field constraints as loading would; ConfigError names `section.field`."""
    raw = msgspec.to_builtins(obj)
    try:
        msgspec.convert(raw, type(obj))
    except msgspec.ValidationError as e:
        raise ConfigError(explain(e, raw, type(obj), section)) from None


def check_decimal(field: str, value: str, positive: bool = False) -> Decimal:
    """`value` as a finite Decimal >= 0 (> 0 when `positive`); ConfigError naming `field`."""
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        d = None
    if d is None or not d.is_finite() or d < 0 or (positive and d == 0):
        raise ConfigError(f"{field}: expected a decimal string {'> 0' if positive else '>= 0'}, "
                          f"got {value!r}")
    return d


# ---------------------------------------------------------------------- readable errors
_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_TOKEN_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")
_UNKNOWN_RE = re.compile(r"Object contains unknown field `([^`]*)`")
_EXPECTED_RE = re.compile(r"Expected `([^`]*)`, got `([^`]*)`")
_CONSTRAINT_RE = re.compile(r"Expected `[^`]*` (?:[<>]=?|matching|of length|that is a multiple)")


def explain(err: msgspec.ValidationError, raw, root: type, section: str = "",
            moved: dict[str, str] | None = None) -> str:
    """msgspec's validation error of `raw` converted to `root` as the user should read it: the
    dotted field name first (under `section`), the range a constrained field accepts, the valid
    choices of a Literal field, a hint to quote a number meant as a decimal string, where a
    setting `moved` (old key -> new key) went."""
    text = str(err)
    m = _PATH_RE.search(text)
    what = text[:m.start()] if m else text       # no path: the top level
    tokens = _TOKEN_RE.findall(m.group("path")) if m else []
    hint, value, found = root, raw, True
    parts: list[str] = [section] if section else []
    for name, index in tokens:
        if name:
            parts.append(name)
            hint = _field_hint(hint, name)
            value = value.get(name) if isinstance(value, dict) else None
        elif index == "...":                       # a dict value; msgspec does not say which
            hint = typing.get_args(_strip(hint))[-1] if hint is not None else None
            bad = ({k: v for k, v in value.items() if not isinstance(v, str)}
                   if isinstance(value, dict) else {})
            key = next(iter(bad), None)
            parts[-1:] = [f"{parts[-1]}.{key}" if parts and key is not None else parts[-1]]
            value, found = (bad[key], True) if key is not None else (None, False)
        else:
            parts[-1:] = [f"{parts[-1]}[{index}]"] if parts else [f"[{index}]"]
            hint = typing.get_args(_strip(hint))[0] if hint is not None else None
            in_list = isinstance(value, list) and int(index) < len(value)
            value = value[int(index)] if in_list else None
    field = ".".join(parts)
    unknown = _UNKNOWN_RE.match(what)
    if unknown:
        key = f"{field + '.' if field else ''}{unknown.group(1)}"
        if moved and key in moved:
            new = moved[key]
            return f"{key}: moved to {new} (write it under [{new.rpartition('.')[0]}])"
        return f"{key}: unknown setting (every key is listed in mm.example.toml)"
    field = field or "config"
    got = f"{type(value).__name__} {value!r}" if found else "another type"
    choices = _literal_choices(hint)
    if choices:
        listed = ", ".join('""' if c == "" else str(c) for c in choices)
        return f"{field}: expected one of {listed}; got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _is_str(hint):
        if _is_decimal(hint):
            return (f"{field}: expected a decimal string like \"{value}\" (quote it in TOML), "
                    f"got {got}")
        return f"{field}: expected a string (quote it in TOML), got {got}"
    accepts = _constraint_text(hint) if _CONSTRAINT_RE.match(what) else ""
    if accepts:
        return f"{field}: expected {accepts}, got {value!r}"
    expected = _EXPECTED_RE.match(what)
    if expected:
        return f"{field}: expected {expected.group(1)}, got {got if found else expected.group(2)}"
    return f"{field}: {what[0].lower()}{what[1:]}"


def _constraint_text(hint) -> str:
    """What a constrained field accepts, from its msgspec.Meta: its description if it has one,
    else its bounds ("1..16", "> 0", "0 < x <= 1")."""
    meta = _metas(hint)
    if not meta:
        return ""
    if meta.get("description"):
        return meta["description"]
    low = [(op, _number(meta[k])) for op, k in ((">=", "ge"), (">", "gt")) if k in meta]
    high = [(op, _number(meta[k])) for op, k in (("<=", "le"), ("<", "lt")) if k in meta]
    if low and high:
        if low[0][0] == ">=" and high[0][0] == "<=":
            return f"{low[0][1]}..{high[0][1]}"
        return f"{low[0][1]} {low[0][0].replace('>', '<')} x {high[0][0]} {high[0][1]}"
    if low or high:
        op, bound = (low or high)[0]
        return f"{op} {bound}"
    if "pattern" in meta:
        return f"a string matching {meta['pattern']}"
    return ""


def _metas(hint) -> dict:
    """The constraints of an Annotated hint, every msgspec.Meta merged."""
    if typing.get_origin(hint) is not Annotated:
        return {}
    out: dict = {}
    for m in typing.get_args(hint)[1:]:
        if isinstance(m, msgspec.Meta):
            for k in ("ge", "gt", "le", "lt", "pattern", "min_length", "max_length",
                      "description"):
                if getattr(m, k) is not None:
                    out[k] = getattr(m, k)
    return out


def _number(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _strip(hint):
    """The type under Annotated[...] / Optional[...] (one level)."""
    if typing.get_origin(hint) is Annotated:
        return typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _field_hint(cls, name: str):
    cls = _strip(cls)
    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        return None
    return typing.get_type_hints(cls, include_extras=True).get(name)


def _literal_choices(hint) -> tuple:
    hint = _strip(hint)
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _is_str(hint) -> bool:
    return _strip(hint) is str


def _is_decimal(hint) -> bool:
    return _metas(hint).get("description") == "decimal string"
