"""Fees and the report: maker rates (a rebate here) are charged on every fill and shown per
fill; the PnL splits exactly into spread + inventory + fees; marked PnL uses the exact mid;
the vectorised CSV writer prints every fixed-point number exactly; --no-orders skips
orders.csv."""
from __future__ import annotations

import csv
import json
import random
from decimal import Decimal

import numpy as np
import pytest

from engine.backtest import csv_out, market_data
from engine.backtest.command import backtest
from engine.config import load
from tests.support.hft_bridge import BTCUSDT_TOML

CAPTURE = "binance/hftbacktest_spot_btcusdt_20240808.head.txt"
CONFIG = """
[quoter]
strategy = "fixed_spread"
[backtest]
queue_model = "risk_averse"
""" + BTCUSDT_TOML + """maker_fee = {maker}
taker_fee = 0.0004
"""


def _run(corpus, tmp_path, maker="-0.0001", orders=True):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "mm.toml"
    path.write_text(CONFIG.format(maker=maker))
    cfg = load(path, env={})
    out = tmp_path / "r"
    s = backtest(cfg, [str(corpus / CAPTURE)], out, plots=False, progress=False,
                 orders=orders)
    return cfg, s, out


def test_fees_are_charged_per_fill_and_the_pnl_splits_exactly(corpus, tmp_path):
    cfg, s, out = _run(corpus, tmp_path)
    rows = list(csv.DictReader(open(out / "fills.csv")))
    assert len(rows) == s["fills"] > 0
    cash = pos = fees = Decimal(0)
    for r in rows:
        q, px = Decimal(r["qty"]), Decimal(r["price"])
        assert Decimal(r["fee"]) == (Decimal("-0.0001") * q * px).quantize(Decimal(r["fee"]))
        signed = q if r["side"] == "BUY" else -q
        pos += signed
        cash -= signed * px
        fees += Decimal(r["fee"])
    p = s["pnl_quote"]
    inst = s["per_instrument"]["BTCUSDT"]
    assert inst["fees_quote"] == pytest.approx(float(fees), abs=1e-7) and fees < 0  # rebates
    assert inst["commission_asset"] == "USDT"
    assert p["fees"] == pytest.approx(-float(fees), abs=1e-7)
    assert p["spread"] + p["inventory"] + p["fees"] == pytest.approx(p["marked"], abs=1e-7)
    # marked = cash + position at the exact last mid - fees
    md, _ = market_data.load([corpus / CAPTURE], cfg)
    last = md[(md["kind"] & 1) != 0][-1]
    mid = Decimal(int(last["bid_px"]) + int(last["ask_px"])).scaleb(-2) / 2
    assert p["marked"] == pytest.approx(float(cash + pos * mid - fees), abs=1e-7)
    assert s["fills_by_liquidity"] == {"maker": len(rows), "taker": 0}


def test_fees_move_the_pnl_by_exactly_what_they_cost(corpus, tmp_path):
    _, paid, _ = _run(corpus, tmp_path / "a", maker="0.0002")
    _, free, _ = _run(corpus, tmp_path / "b", maker="0.0")
    assert paid["fills"] == free["fills"]
    fee = paid["per_instrument"]["BTCUSDT"]["fees_quote"]
    assert fee == pytest.approx(0.0002 * paid["per_instrument"]["BTCUSDT"]["volume_quote"])
    assert paid["pnl_quote"]["marked"] == pytest.approx(free["pnl_quote"]["marked"] - fee)


def test_no_orders_skips_orders_csv(corpus, tmp_path):
    _, s, out = _run(corpus, tmp_path, orders=False)
    assert (out / "fills.csv").exists() and not (out / "orders.csv").exists()
    assert "orders_csv" not in json.loads((out / "backtest.json").read_text())["files"]


def test_orders_csv_counts_every_intent(corpus, tmp_path):
    _, s, out = _run(corpus, tmp_path)
    rows = list(csv.DictReader(open(out / "orders.csv")))
    o = s["orders"]
    assert sum(r["action"] in ("NEW", "REPLACE") for r in rows) == o["new"] + o["replace"]
    assert all(Decimal(r["price"]) % Decimal("0.01") == 0 for r in rows if r["price"])


def test_fixed_prints_every_mantissa_exactly():
    rng = random.Random(7)
    vals, exps = [], []
    for _ in range(20000):
        e = rng.choice((-8, -5, -2, -1, 0, 2))
        m = rng.choice((rng.randint(-10**6, 10**6), rng.randint(-2**62, 2**62),
                        rng.randint(0, 2**53), 0))
        vals.append(m)
        exps.append(e)
    vals += [-2**63, 2**63 - 1, 5, -5, 0]
    exps += [-22, -3, -22, 3, 7]
    got = csv_out.text([csv_out.Fixed(np.array(vals, np.int64), np.array(exps))])
    lines = got.decode().splitlines()
    assert len(lines) == len(vals)
    for m, e, s in zip(vals, exps, lines):
        assert Decimal(s) == Decimal(m).scaleb(e), (m, e, s)
        assert s == format(Decimal(m).scaleb(e), "f") if e < 0 else s == str(m * 10**e)


def test_names_map_codes_and_default_the_rest_and_blank_cells_print_nothing():
    got = csv_out.text([csv_out.Names(np.array([1, 2, 1, 0xFFFFFFFF]), {1: "A", 2: "B"}, "*"),
                        csv_out.Fixed(np.array([1, 2, 3, 4]), -1,
                                      np.array([False, False, False, True])),
                        csv_out.Seconds(np.array([0, 499, 500, 1_500_000_000]), 0)])
    assert got.decode().splitlines() == ["A,0.1,0.000000", "B,0.2,0.000000", "A,0.3,0.000001",
                                         "*,,1.500000"]
