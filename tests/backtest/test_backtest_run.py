"""`mm backtest` as a user runs it: on the corpus's live BTCUSDT capture it writes a report
whose numbers agree with its own fills, with plots; it reads MMCAP1 and text captures alike;
it refuses files it cannot read naming them; the strategy comes from the config alone."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest

from engine.backtest import market_data, venue
from engine.backtest.venue import ACCT_DTYPE
from engine.config import load
from engine.feed.capture import MAGIC, RECORD
from engine.records import SIDE_BUY, SIDE_SELL

CAPTURE = "binance/hftbacktest_spot_btcusdt_20240808.head.txt"


def _mm(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_report_of_a_real_capture_agrees_with_its_fills(corpus, tmp_path):
    out = tmp_path / "report"
    p = _mm("backtest", str(corpus / CAPTURE), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "backtest: glft on BTCUSDT" in p.stdout and "fills:" in p.stdout
    s = json.loads((out / "backtest.json").read_text())
    assert s["strategy"] == "glft" and s["market_records"] == 860
    assert s["book_updates"] == 716 and s["trades"] == 144
    assert (out / "backtest.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "fills.csv")))
    assert len(rows) == s["fills"] > 0
    # marked PnL = cash + position at the last mid, from the fills themselves
    cfg = load(env={})
    md, _ = market_data.load([corpus / CAPTURE], cfg)
    last = md[(md["instrument"] == 0) & (md["kind"] & 1 != 0)][-1]
    mid = Decimal(int(last["bid_px"]) + int(last["ask_px"])).scaleb(-2) / 2    # exact
    cash = pos = Decimal(0)
    for r in rows:
        signed = Decimal(r["qty"]) * (1 if r["side"] == "BUY" else -1)
        pos += signed
        cash -= signed * Decimal(r["price"])
    assert s["per_instrument"]["BTCUSDT"]["position"] == float(pos)
    assert abs(s["pnl_quote"]["marked"] - float(cash + pos * mid)) < 1e-6
    orders = list(csv.DictReader(open(out / "orders.csv")))
    assert sum(o["action"] in ("NEW", "REPLACE") for o in orders) == \
        s["orders"]["new"] + s["orders"]["replace"]
    assert s["speed"]["events_per_s"] > 0


def test_the_strategy_comes_from_the_config(corpus, tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text('[quoter]\nstrategy = "fixed_spread"\n[quoter.fixed_spread]\n'
                   'half_spread_ticks = 3\n[backtest]\norder_latency_us = 1000\n')
    p = _mm("backtest", str(corpus / CAPTURE), "--config", str(cfg), "--out",
            str(tmp_path / "r"), "--no-plots", "--quiet")
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "r" / "backtest.json").read_text())
    assert s["strategy"] == "fixed_spread" and s["order_latency_us"] == 1000
    assert s["strategy_config"]["half_spread_ticks"] == 3
    assert s["orders"]["new"] > 0 and not (tmp_path / "r" / "backtest.png").exists()


def test_mmcap_and_text_captures_give_the_same_records(corpus, tmp_path):
    mmcap = tmp_path / "c.mmcap"
    with open(mmcap, "wb") as f:
        f.write(MAGIC)
        for ts, op, payload in market_data.frames(corpus / CAPTURE):
            f.write(RECORD.pack(ts, len(payload), op) + payload)
    cfg = load(env={})
    a, _ = market_data.load([corpus / CAPTURE], cfg)
    b, _ = market_data.load([mmcap], cfg)
    # without its metadata an MMCAP1 file's clock is not known against the exchange's: the
    # records' exchange times are left out
    assert len(a) == 860 and (b["ts_venue"] == 0).all() and (a["ts_venue"] > 0).any()
    assert all((a[k] == b[k]).all() for k in a.dtype.names if k != "ts_venue")
    from engine.capture import metadata_path
    metadata_path(mmcap).write_text('{"wall_minus_arrival_ns": 0}')   # these stamps: epoch
    b, _ = market_data.load([mmcap], cfg)
    assert (a == b).all()
    # two files: the second one, recorded on "another clock", is moved after the first
    both, info = market_data.load([corpus / CAPTURE, mmcap], cfg)
    assert len(both) == 1720 and (np.diff(both["ts"]) >= 0).all()
    assert both["ts"][860] - both["ts"][859] >= market_data.FILE_GAP_NS


@pytest.mark.slow
def test_unreadable_input_is_refused_naming_it(tmp_path):
    p = _mm("backtest", str(tmp_path / "nope.mmcap"), "--quiet")
    assert p.returncode == 2 and "nope.mmcap" in p.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("1723161253937085768 {}\nnot a capture line\n")
    p = _mm("backtest", str(bad), "--quiet")
    assert p.returncode == 2 and "bad.txt:2" in p.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text('1 {"stream":"dogeusdt@bookTicker","data":{}}\n')
    p = _mm("backtest", str(empty), "--quiet")
    assert p.returncode == 2 and "no market records" in p.stderr


def test_realised_pnl_is_average_cost():
    a = np.zeros(1, ACCT_DTYPE)
    for side, px, qty in ((SIDE_BUY, 100, 2), (SIDE_SELL, 110, 1), (SIDE_SELL, 90, 3),
                          (SIDE_BUY, 80, 1)):
        venue._account(a[0], side, px, qty)
    # +2@100; -1@110: +10; -3@90: closes 1 (-10), opens short 2@90; +1@80: +10
    assert a[0]["realized"] == pytest.approx(10.0)
    assert a[0]["pos"] == -1 and a[0]["avg_px"] == pytest.approx(90.0)
    assert a[0]["cash"] == -200 + 110 + 270 - 80
    assert (a[0]["max_pos"], a[0]["min_pos"]) == (2, -2)


def test_backtest_png_legends_cover_nothing(corpus, tmp_path, monkeypatch):
    """Every legend of backtest.png sits right of its axes, off the fills and curves."""
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from engine.cli import main

    figs = []
    real = matplotlib.figure.Figure.savefig

    def keep(fig, *a, **kw):
        figs.append(fig)
        return real(fig, *a, **kw)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    assert main(["backtest", str(corpus / CAPTURE), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    assert figs and (tmp_path / "r" / "backtest.png").exists()
    legends = [(ax, ax.get_legend()) for ax in figs[0].axes if ax.get_legend() is not None]
    assert len(legends) >= 3
    for ax, legend in legends:
        assert legend.get_window_extent().x0 >= ax.get_window_extent().x1, ax.get_ylabel()


@pytest.mark.parametrize("capture,pexp,qexp", [
    ("binance/hftbacktest_spot_btcusdt_20240808.head.txt", -2, -5),
    ("binance/hftbacktest_usdm_btcusdt_20240808.head.txt", -1, -3)])
def test_a_depth_strategy_reads_the_feeds_book_as_the_live_feed_keeps_it(corpus, tmp_path,
                                                                        capture, pexp, qexp):
    """With a diff-depth stream the backtest gives the quoter the feed's L2 book as the live
    depth board does (feed_depth.py): at the end of the capture the sizes of the best
    depth_levels levels equal those of the live feed's own book (engine/feed/depth_book.py,
    fed the same frames by its adapter); nothing is quoted before the snapshot; the imbalance
    moves the quotes away from the mid strategy's."""
    from engine.backtest import replay, report
    from engine.instruments import Instrument
    from engine.records import MD_DEPTH, MD_SNAPSHOT
    from tests.feed.decode_support import hftbacktest_frames
    from tests.feed.test_depth_corpus import depth_adapter

    text = ('[feed]\nstreams = ["bookTicker", "trade", "depth@100ms"]\n'
            '[quoter]\nstrategy = "fixed_spread"\n'
            '[quoter.fixed_spread]\nfair_value = "{fv}"\ndepth_levels = 3\n'
            '[[instruments]]\nsymbol = "BTCUSDT"\nbase = "BTC"\nquote = "USDT"\n'
            f'tick_size = "{10.0 ** pexp:.{-pexp}f}"\nlot_size = "{10.0 ** qexp:.{-qexp}f}"\n')
    runs = {}
    for fv in ("depth_imbalance", "mid"):
        path = tmp_path / f"{fv}.toml"
        path.write_text(text.format(fv=fv))
        cfg = load(path, env={})
        md, _ = market_data.load([corpus / capture], cfg)
        runs[fv] = (md, replay.run(replay.prepare(cfg, md), md))
    md, r = runs["depth_imbalance"]
    # the live feed's book after the same frames
    adapter, feed, probe, sink = depth_adapter([Instrument(symbol="BTCUSDT", price_exp=pexp,
                                                           qty_exp=qexp)])
    book = feed.books[0]
    for frame in hftbacktest_frames(corpus / capture):
        if frame.startswith(b'{"lastUpdateId"'):
            book.on_snapshot(*probe.decode_depth_snapshot(frame, 0))
        else:
            adapter.decode(memoryview(frame), False, sink)
    bids, asks = book.top(3)
    s = r.st.inst[0]
    assert int(s["depth_bid_qty"]) == sum(q for _, q in bids) > 0
    assert int(s["depth_ask_qty"]) == sum(q for _, q in asks) > 0
    assert int(s["depth_stale"]) == 0
    depth = md[(md["kind"] & MD_DEPTH) != 0]
    snap = depth[(depth["kind"] & MD_SNAPSHOT) != 0]
    assert len(snap) > 0
    sent = report.intents_of(r)
    assert len(sent) > 0 and sent["ts_published"][0] >= snap["ts"][0]
    cnt = dict(zip(report.COUNTER_NAMES, r.st.cnt.tolist()))
    assert 0 < cnt["depth_reads"] <= len(np.unique(depth["ts"]))
    mid = report.intents_of(runs["mid"][1])
    assert sent[["price", "side"]].tolist() != mid[["price", "side"]].tolist()
