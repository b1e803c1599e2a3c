"""The instrument limit is a config value checked at load (the error names the field), and the
layout behind it holds at least 256 instruments: the quoter's counters name a position per
instrument, the supervisor's a holding at start."""
from __future__ import annotations

import os

import pytest

from engine.config import ConfigError, load
from engine.control import COUNTERS, MAX_INSTRUMENTS, Control
from engine.quoter.arrays import COUNTER_NAMES, N_COUNTERS, counter_names
from engine.ring.segment import list_segments, unlink


def _symbols(n: int) -> str:
    return ",".join(f"S{i:03d}USDT" for i in range(n))


def test_more_instruments_than_max_instruments_is_refused_at_load_naming_the_field():
    with pytest.raises(ConfigError, match=r"instruments: 300 configured .*max_instruments = 256"):
        load(env={"MM_SYMBOL": _symbols(300)})
    assert len(load(env={"MM_SYMBOL": _symbols(256)}).instruments) == 256


def test_max_instruments_is_checked_against_the_layout(tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(f"max_instruments = {MAX_INSTRUMENTS + 1}\n")
    with pytest.raises(ConfigError, match=rf"max_instruments: expected 1..{MAX_INSTRUMENTS}"):
        load(cfg, env={})
    cfg.write_text("max_instruments = 400\n")
    assert len(load(cfg, env={"MM_SYMBOL": _symbols(400)}).instruments) == 400


def test_counters_hold_a_position_per_instrument_up_to_the_layout():
    assert MAX_INSTRUMENTS >= 256 and N_COUNTERS == COUNTERS
    names = counter_names([f"S{i:04d}USDT" for i in range(MAX_INSTRUMENTS)], -8)
    assert len(names) == len(COUNTER_NAMES) + MAX_INSTRUMENTS <= N_COUNTERS
    with pytest.raises(ValueError):
        counter_names([f"S{i:04d}USDT" for i in range(N_COUNTERS)], -8)


def test_control_segment_names_and_keeps_every_counter_of_every_role():
    instance = f"maxinst{os.getpid()}"
    ctl = Control.create(instance)
    try:
        names = {r: [f"{r}_{i}" for i in range(COUNTERS)] for r in ("supervisor", "quoter")}
        for role, ns in names.items():
            ctl.name_counters(role, ns)
            ctl.counters(role)[:] = range(COUNTERS)
        ctl.name_counters("feed", ["a", "b"])
        for role, ns in names.items():
            values = ctl.counter_values(role)
            assert list(values) == ns and values[ns[-1]] == COUNTERS - 1
        assert ctl.counter_values("feed") == {"a": 0, "b": 0}       # no overlap between roles
        assert ctl.pid("quoter") == 0 and ctl.killed() == 0           # role slots untouched
    finally:
        ctl.close()
        for name in list_segments(instance):
            unlink(name)
