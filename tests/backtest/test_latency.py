"""The backtest's latencies as measured: drawn from a live run's histograms (`--latency-from`:
requests reach the venue after the run's tick-to-order plus half its round trip, in the order
they were sent; answers come back after the other half plus the answers-ring hop, in order), and
the feed's own latency from the exchange's times in the capture (backtest.feed_latency =
"capture": the venue sees the market first). A run without the histograms is refused by name."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine.backtest import latency, market_data, replay, report
from engine.backtest.command import backtest
from engine.config import load
from engine.latency.histogram import Histogram
from tests.support.hft_bridge import BTCUSDT_TOML

CAPTURE = "binance/hftbacktest_usdm_btcusdt_20240808.head.txt"
CONFIG = """
[quoter]
strategy = "fixed_spread"
requote_ticks = 1
[quoter.fixed_spread]
half_spread_ticks = 2
[backtest]
queue_model = "risk_averse"
feed_latency = "{feed}"
""" + BTCUSDT_TOML


def _cfg(tmp_path, feed="none"):
    p = tmp_path / "mm.toml"
    p.write_text(CONFIG.format(feed=feed))
    return load(p, env={})


def _run_dir(tmp_path, t2o_us, rtt_us, back_us=None):
    """A run directory as mm run leaves it, with these samples in its histograms."""
    run = tmp_path / "run"
    run.mkdir()

    def hist(values):
        h = Histogram.empty()
        for v in values:
            h.record(int(v * 1000))
        return h.words
    np.savez(run / "sender.hist.npz", tick_to_order=hist(t2o_us),
             order_round_trip=hist(rtt_us))
    if back_us is not None:
        np.savez(run / "quoter.hist.npz", fill_published_to_read=hist(back_us))
    return run


def test_latencies_are_drawn_from_the_runs_histograms(corpus, tmp_path):
    cfg = _cfg(tmp_path)
    run = _run_dir(tmp_path, [100] * 50 + [3000] * 50, [400] * 100, [20] * 100)
    lat = latency.from_run(run)
    # order: tick-to-order (100 or 3,000 us, half each) + half the 400 us round trip
    o = lat.order_ns / 1000
    near = (np.abs(o / 300 - 1) < 0.01) | (np.abs(o / 3200 - 1) < 0.01)   # bucket widths
    assert near.all()
    assert 0.4 < (o < 1000).mean() < 0.6
    assert np.allclose(lat.answer_ns / 1000, 220, rtol=0.01)          # 200 + 20 us
    md, info = market_data.load([corpus / CAPTURE], cfg)
    r = replay.run(replay.prepare(cfg, md, lat), md)
    sent = report.intents_of(r)
    got = report.requests_of(r)
    assert len(got) > 20
    # each request arrives after its own draw, in the order sent: never before the one ahead
    arrive = got["ts_published"]
    assert (np.diff(arrive) >= 0).all()
    decided = dict(zip(sent["order_id"].tolist(), sent["ts_published"].tolist()))
    wait = np.array([a - decided[i] for i, a in zip(got["order_id"].tolist(), arrive.tolist())
                     if i in decided]) / 1000
    assert wait.min() >= 295 and (wait > 3000).any() and (wait < 1000).any()
    s = report.summarize(r, md, info, {"decode_s": 0, "compile_s": 0})
    assert s["latency"]["source"] == str(run)
    assert s["latency"]["order"]["p99_us"] == pytest.approx(3200, rel=0.02)


def test_a_run_without_the_round_trip_is_refused_naming_it(corpus, tmp_path):
    cfg = _cfg(tmp_path)
    run = tmp_path / "old"
    run.mkdir()
    h = Histogram.empty()
    h.record(1000)
    np.savez(run / "sender.hist.npz", tick_to_order=h.words)
    with pytest.raises(ValueError, match="sender.order_round_trip"):
        backtest(cfg, [str(corpus / CAPTURE)], None, progress=False, latency_from=str(run))
    p = subprocess.run([sys.executable, "-m", "engine.cli", "backtest", str(corpus / CAPTURE),
                        "--latency-from", str(tmp_path / "nowhere"), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "is not a run directory" in p.stderr


def test_fixed_latencies_are_one_draw_and_change_nothing(corpus, tmp_path):
    cfg = _cfg(tmp_path)
    md, _ = market_data.load([corpus / CAPTURE], cfg)
    a = replay.run(replay.prepare(cfg, md), md)
    b = replay.run(replay.prepare(cfg, md, latency.fixed(cfg.backtest.order_latency_us,
                                                         cfg.backtest.response_latency_us)), md)
    assert report.requests_of(a).tobytes() == report.requests_of(b).tobytes()
    wait = report.requests_of(a)["ts_published"] - report.intents_of(a)["ts_published"][
        :len(report.requests_of(a))]
    assert len(wait) and (wait >= cfg.backtest.order_latency_us * 1000).all()


def test_the_venue_sees_the_market_at_the_exchanges_time(corpus, tmp_path):
    cfg = _cfg(tmp_path, "capture")
    md, info = market_data.load([corpus / CAPTURE], cfg)
    has = md["ts_venue"] > 0
    assert has.mean() > 0.9                      # USD-M frames carry E / T
    lag = md["ts"][has] - md["ts_venue"][has]
    lag -= lag.min()                             # the two clocks' offset: the fastest frame
    assert 0 < np.median(lag) < 1e9
    tv = replay.venue_times(md, "capture")
    assert (np.diff(tv) >= 0).all() and (tv <= md["ts"]).all()
    assert (md["ts"] - tv).mean() > 0 and (md["ts"] - tv).min() == 0
    assert (replay.venue_times(md, "none") == md["ts"]).all()
    r = replay.run(replay.prepare(cfg, md), md)
    s = report.summarize(r, md, info, {"decode_s": 0, "compile_s": 0})
    assert s["feed_latency"]["mode"] == "capture" and s["feed_latency"]["p50_us"] > 0
    # the venue moves first: its fills can come before the quoter has read the book behind
    # them, so the runs differ
    (tmp_path / "n").mkdir()
    none = replay.run(replay.prepare(_cfg(tmp_path / "n", "none"), md), md)
    assert report.requests_of(none).tobytes() != report.requests_of(r).tobytes()


def test_a_capture_without_exchange_times_cannot_give_the_feeds_latency(corpus, tmp_path):
    cfg = _cfg(tmp_path, "capture")
    md, _ = market_data.load([corpus / CAPTURE], cfg)
    md["ts_venue"] = 0
    with pytest.raises(ValueError, match="feed_latency"):
        replay.prepare(cfg, md)
