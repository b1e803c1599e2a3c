"""`mm capture --duration S` records the venue's streams with the live feed's connections: a
whole MMCAP1 file (every frame of both redundant connections), its metadata beside it, and
`mm backtest` replays it; without a market URL it refuses before connecting."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine.backtest import market_data
from engine.config import load
from engine.feed.capture import read_capture
from engine.records import MD_TRADE
from tests.support.sim_thread import SimThread


@pytest.mark.slow
def test_capture_then_backtest(tmp_path):
    out = tmp_path / "sim.mmcap"
    with SimThread(event_rate=100, seed=5) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url}
        p = subprocess.run([sys.executable, "-m", "engine.cli", "capture", "--duration", "2",
                            "--out", str(out)], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        stats = sim.stats()
    frames = list(read_capture(out))                   # strict: the file is whole
    meta = json.loads((tmp_path / "sim.mmcap.json").read_text())
    assert meta["frames"] == len(frames) > 100 and meta["dropped"] == 0
    assert meta["venue"] == "binance" and meta["connections"] == 2
    assert [i["symbol"] for i in meta["instruments"]] == ["BTCUSDT", "ETHUSDT"]
    # both connections' copies are in the file; decoding keeps one of each
    md, info = market_data.load([out], load(env={}))
    assert info["duplicates"] > 0 and len(md) == meta["records"]
    assert len(md) <= stats["book_events"] + stats["trades_printed"]
    # the exchange's times are put on the capture's clock by the offset the metadata records
    trades = md[(md["kind"] & MD_TRADE) != 0]
    assert len(trades) and (trades["ts_venue"] > 0).all()
    assert (np.abs(trades["ts"] - trades["ts_venue"]) < 50_000_000).all()   # loopback, ms stamps
    p = subprocess.run([sys.executable, "-m", "engine.cli", "backtest", str(out), "--out",
                        str(tmp_path / "bt"), "--no-plots"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "bt" / "backtest.json").read_text())["market_records"] == \
        len(md)


def test_capture_needs_a_market_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MM_MD_URL", "MM_ORDER_URL")}
    p = subprocess.run([sys.executable, "-m", "engine.cli", "capture", "--duration", "1",
                        "--out", str(tmp_path / "x.mmcap")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "MM_MD_URL" in p.stderr
    assert not (tmp_path / "x.mmcap").exists()
