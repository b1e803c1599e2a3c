"""The light bench venue (bench/light_venue.py) serves what the bench runs against it: the engine
as a user starts it trades, and the venue times its orders by the kernel's receive stamps; the
bench says which venue it used and prints its CPU. Short and bounded: speed is the bench's job."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.contenders import Baseline, Engine
from bench.e2e import engine_toml
from bench.venue import Venue
from engine.ring.segment import list_segments

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def venue(tmp_path):
    v = Venue.start(rate=1000, symbols=["BTCUSDT"], kind="light",
                    log_path=str(tmp_path / "venue.log"))
    yield v
    assert v.stop() == 0


@pytest.mark.timeout(120)
def test_the_engine_trades_against_it_and_orders_carry_kernel_stamps(venue, tmp_path):
    config = tmp_path / "engine.toml"
    config.write_text(engine_toml(()))
    engine = Engine("mm", config, f"lv{int(time.time()) % 100000}", "BTCUSDT", tmp_path / "run")
    try:
        engine.start(venue.md_url, venue.api_url, backstop_s=90)
        engine.wait_ready()
        time.sleep(0.5)
        m0 = venue.mark()
        time.sleep(2.0)
        m1 = venue.mark()
    finally:
        status = engine.stop()
    assert status == 0, (tmp_path / "run" / "mm-run.log").read_text()[-3000:]
    assert list_segments(engine.instance) == []
    s0, s1 = m0["stats"], m1["stats"]
    events = s1["book_events"] - s0["book_events"]
    assert 1500 <= events <= 2500                       # 1,000/s for 2 s, paced
    assert s1["orders_received"] > s0["orders_received"]
    assert s1["orders_stamped"] > 0 and s1["orders_unstamped"] == 0   # kernel receive stamps
    samples = m1["samples"]
    assert len(samples) > 100 and all(0 < ns < 1e9 for ns in samples)
    assert s1["errors"] == 0
    assert s1["cpu_s"] > s0["cpu_s"] > 0                # the venue's own getrusage


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,module,tag", [("reflex", "reflex", "rfx"),
                                             ("asyncio", "asyncio_bot", "aio")])
def test_the_baselines_trade_against_it(venue, tmp_path, name, module, tag):
    bot = Baseline(name, name, module, tag, tmp_path)
    try:
        bot.start(venue.md_url, venue.api_url, backstop_s=30)
        bot.wait_ready()
        venue.mark()
        time.sleep(1.0)
        m = venue.mark()
    finally:
        bot.stop()
    assert len(m["samples"]) > 100, (tmp_path / f"{name}.log").read_text()[-2000:]
    assert m["stats"]["errors"] == 0


@pytest.mark.timeout(120)
def test_the_bench_names_its_venue_and_prints_its_cpu(tmp_path):
    p = subprocess.run([sys.executable, "-m", "bench", "--only", "e2e", "--quick",
                        "--e2e-rates", "1000", "--e2e-saturation", "", "--e2e-contenders",
                        "reflex", "--e2e-phase", "1", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "venue: light (bench/light_venue.py" in p.stdout
    assert "% at 1,000/s" in p.stdout
    doc = json.loads((tmp_path / "e2e" / "e2e.json").read_text())
    assert doc["box"]["venue"] == "light"
    share = doc["summary"]["venue_core_share"]["1000"]
    assert 0 < share < 1
