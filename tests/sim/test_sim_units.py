"""Pure pieces of the simulator: decimals, config validation, percentiles, the seeded book."""
from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from engine.instruments import DEFAULT_INSTRUMENTS
from engine.sim.config import SimConfig
from engine.sim.latency import WireClock, percentiles
from engine.sim.market import Book, parse_decimal, wire_decimal


@pytest.mark.parametrize("text,exp,expected", [
    ("60000.01", -2, (6000001, True)),
    ("60000.01000000", -2, (6000001, True)),
    ("60000.015", -2, (6000001, False)),            # finer than the tick: a filter failure
    ("7", -5, (700000, True)),
    ("0.00001", -5, (1, True)),
    ("1e5", -2, None), ("-1.00", -2, None), ("", -2, None), ("1.", -2, None),
    ("120", 1, (12, True)), ("125", 1, (12, False)),
])
def test_parse_decimal(text, exp, expected):
    assert parse_decimal(text, exp) == expected


def test_wire_decimal_has_binance_precision():
    assert wire_decimal(6000001, -2) == "60000.01000000"
    assert wire_decimal(1, -5) == "0.00001000"
    assert wire_decimal(123, -10) == "0.0000000123"
    for m in (0, 5, 123456789):
        assert Decimal(wire_decimal(m, -3)) == Decimal(m).scaleb(-3)


@pytest.mark.parametrize("field,value", [
    ("event_rate", 0), ("trade_rate", 1000.0), ("recv_window_ms", 60001), ("port", 70000),
    ("orders_per_10s", 0), ("replay_speed", -1), ("max_connection_age_s", 0),
    ("balances", {"USDT": "lots"}), ("start_mid", {"BTCUSDT": "-1"}),
])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"sim.{field}"):
        SimConfig(**{field: value}).validate()


def test_percentiles_nearest_rank():
    r = percentiles(list(range(1, 1001)))
    assert (r["count"], r["p50"], r["p90"], r["p99"], r["p999"], r["max"]) == \
        (1000, 500, 900, 990, 999, 1000)
    assert percentiles([])["p50"] is None


def test_wire_clock_first_order_per_update_id():
    clock = WireClock(["BTCUSDT"])
    clock.stamp(0, 41, 1000)
    clock.stamp(0, 41, 5000)                        # a second copy keeps the first stamp
    clock.on_order(1700, "BTCUSDT", "mm-41-1")
    clock.on_order(1900, "BTCUSDT", "mm-41-2")
    clock.on_order(1900, "BTCUSDT", "mm-42-3")      # never written
    clock.on_order(1900, "ETHUSDT", "mm-41-4")      # a symbol the clock does not know
    clock.on_order(1900, "BTCUSDT", None)
    assert list(clock.samples) == [700]
    assert clock.orders_seen == 3                   # ids of known symbols that parsed


def _frames(seed: int, n: int) -> list[bytes]:
    book = Book(DEFAULT_INSTRUMENTS[0], 0, "60000.00", random.Random(seed), event_rate=200,
                volatility_bps=2.0, trade_rate=20, spread_ticks_max=5,
                top_size_notional=50_000, trade_size_notional=2_000)
    out = []
    for _ in range(n):
        if book.step():
            _, px, qty = book.random_trade()
            out.append(book.trade_frame(book.trade_id, px, qty, True, 0))
        out.append(book.book_ticker())
    return out


def test_book_is_seeded_and_sane():
    a, b, c = _frames(1, 2000), _frames(1, 2000), _frames(2, 2000)
    assert a == b and a != c
    bts = [json.loads(f) for f in a if b'"u"' in f]
    for d in bts:
        bid, ask = Decimal(d["b"]), Decimal(d["a"])
        assert Decimal("0.01") <= ask - bid <= Decimal("0.05")
    trades = [f for f in a if b'"trade"' in f]
    assert 100 < len(trades) < 400                   # trade_rate / event_rate = 10 %
