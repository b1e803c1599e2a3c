"""`python -m bench` end to end, as `make bench` runs it, on a tiny quick path: the engine and
the three baselines against the bench's simulator for a second each. Speed is not judged here (that
is the bench's job); what is: every output file is written, every figure is a number, and an
interrupted bench stops its engine the orderly way and leaves no process or segment behind."""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.control import Control
from engine.ring.segment import SegmentError, list_segments

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--only", "e2e", "--quick", "--e2e-rates", "500", "--e2e-saturation", "",
        "--e2e-phase", "1", "--e2e-contenders", "engine,asyncio,mpqueue,reflex"]


def _bench(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *TINY, "--out", str(out), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _orders_sent(instance: str) -> int:
    """The engine's sender counter of orders sent, 0 while it is not registered yet."""
    try:
        ctl = Control.attach(instance)
    except (SegmentError, OSError):                  # not created yet, or going away
        return 0
    try:
        return ctl.counter_values("sender").get("orders_sent", 0)
    finally:
        ctl.close()


def _numbers(obj, path="summary"):
    """Yield (path, leaf) for every leaf that is not a finite number or a bool."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(obj, bool) or (isinstance(obj, (int, float)) and math.isfinite(obj)):
        return
    elif obj is None and path.endswith("first_not_sustained"):
        return                  # None: every rate was sustained
    else:
        yield path, obj


@pytest.mark.timeout(240)
def test_quick_bench_writes_every_file_and_number(tmp_path):
    p = _bench(tmp_path)
    out, _ = p.communicate(timeout=220)
    assert p.returncode == 0, out[-3000:]
    instance = f"bench{p.pid}r0"
    assert list_segments(instance) == []
    e2e = tmp_path / "e2e"
    for name in ("e2e.json", "engine.toml", "wire_percentiles.png", "engine_hops.png",
                 "latency_vs_rate.png", "hgrm/engine-500-wire_to_wire.hgrm",
                 "hgrm/reflex-500-wire_to_wire.hgrm", "hgrm/asyncio-500-wire_to_wire.hgrm",
                 "hgrm/mpqueue-500-wire_to_wire.hgrm", "hgrm/engine-500-sender.tick_to_order.hgrm",
                 "runs/engine-r0/summary.json", "runs/engine-r0/latency.png"):
        assert (e2e / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "results.json").read_text())["e2e"]["files"]
    doc = json.loads((e2e / "e2e.json").read_text())
    assert doc["errors"] == [] and not doc["interrupted"]
    bad = list(_numbers(doc["summary"])) + list(_numbers(
        [[t["value"], t["limit"], t["ok"]] for t in doc["targets"]], "targets"))
    assert bad == [], bad[:10]
    lat = doc["summary"]["latency_us"]
    assert set(lat) == {"engine", "asyncio", "mpqueue", "reflex"}
    for name in lat:
        v = lat[name]["500"]
        assert 0 < v["p50"] <= v["p99"] <= v["p999"] and v["samples"] > 0
    for name in ("asyncio", "mpqueue", "reflex"):
        assert set(doc["summary"]["ratios"][name]["500"]) == {"p50", "p99", "p999"}
    hops = doc["summary"]["engine_hops_us"]["500"]
    assert "sender.tick_to_order" in hops and "feed.arrival_to_published" in hops
    # raw samples are kept: wire-to-wire of every phase, the engine's histogram buckets
    for run in doc["runs"]:
        assert run["exit_status"] == 0, run
        for ph in run["phases"]:
            assert len(ph["wire_ns"]) == ph["figures"]["wire"]["count"] > 0
    eng = doc["runs"][0]["phases"][0]["engine"]["hops"]["sender.tick_to_order"]
    assert sum(n for _, n in eng["buckets_low_ns_count"]) == eng["count"] > 0
    assert doc["box"]["engine_layout"]["idle"]["sender"]
    assert "quoter" in doc["summary"]["cpu_us_per_event"]["engine"]["500"]


@pytest.mark.timeout(240)
def test_interrupted_bench_stops_its_engine_and_leaves_nothing(tmp_path):
    p = _bench(tmp_path, "--e2e-phase", "60")       # long enough to be caught mid-phase
    instance = f"bench{p.pid}r0"
    try:
        deadline = time.monotonic() + 180
        while not any(s.endswith(".orders") for s in list_segments(instance)):
            assert p.poll() is None and time.monotonic() < deadline, p.stdout.read()[-3000:]
            time.sleep(0.2)
        while not _orders_sent(instance):            # quoting (a loaded box starts slowly)
            assert p.poll() is None and time.monotonic() < deadline, p.stdout.read()[-3000:]
            time.sleep(0.2)
        children = psutil.Process(p.pid).children(recursive=True)
        assert children
        p.send_signal(signal.SIGTERM)                # what `timeout` sends
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, out[-3000:]
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [c.cmdline() for c in alive]
    assert list_segments(instance) == []
    summary = json.loads((tmp_path / "e2e" / "runs" / "engine-r0" / "summary.json").read_text())
    assert summary["stop_reason"] == "signal SIGINT"        # the orderly path, asked by the bench
    doc = json.loads((tmp_path / "e2e" / "e2e.json").read_text())
    log = (tmp_path / "e2e" / "runs" / "engine-r0" / "mm-run.log").read_text()[-3000:]
    assert doc["interrupted"] and doc["runs"][0]["exit_status"] == 0, log  # every order gone
