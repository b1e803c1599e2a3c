"""mm.example.toml documents every key with its default: it loads into exactly the built-in
defaults, and every field of every config struct appears in it (a new field without an entry
there fails here)."""
from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec

from engine import config

EXAMPLE = Path(__file__).resolve().parents[2] / "mm.example.toml"
_HEADER = re.compile(r"^\s*\[\[?([A-Za-z0-9_.]+)\]\]?")
_KEY = re.compile(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _keys_by_section(text: str) -> dict[str, set[str]]:
    """Section name ("" = top level) -> keys written in it, commented out or not."""
    out: dict[str, set[str]] = {"": set()}
    section = ""
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            section = m.group(1)
            out.setdefault(section, set())
            continue
        k = _KEY.match(line)
        if k:
            out[section].add(k.group(1))
    return out


def _struct_of(hint):
    """The Struct a field holds (directly, or as the items of a tuple), else None."""
    for t in (hint, *typing.get_args(hint)):
        if isinstance(t, type) and issubclass(t, msgspec.Struct):
            return t
    return None


def _required(struct, section: str = "") -> set[tuple[str, str]]:
    out = set()
    hints = typing.get_type_hints(struct)
    for f in msgspec.structs.fields(struct):
        sub = _struct_of(hints[f.name])
        if sub is not None:
            out |= _required(sub, f"{section}.{f.name}" if section else f.name)
        else:
            out.add((section, f.name))
    return out


def test_the_example_loads_into_the_defaults():
    cfg, configured = config.load_with_sources(EXAMPLE, env={})
    assert cfg == config.EngineConfig()
    assert configured["BTCUSDT"] == frozenset(config.INSTRUMENT_FILTERS)


def test_every_field_of_every_config_struct_is_in_the_example():
    written = _keys_by_section(EXAMPLE.read_text())
    missing = sorted(f"{s}.{n}" if s else n for s, n in _required(config.EngineConfig)
                     if n not in written.get(s, set()))
    assert not missing, f"mm.example.toml does not document: {missing}"


def test_the_check_sees_a_missing_key():
    text = EXAMPLE.read_text().replace("rollover_overlap_ms = 200", "")
    written = _keys_by_section(text)
    assert "rollover_overlap_ms" not in written["feed"]
    assert ("feed", "rollover_overlap_ms") in _required(config.EngineConfig)
