"""A trader's units: positions in base units with the start apart, PnL in the quote currency,
hops flagged against the ceiling, Prometheus names and types by its conventions, and a report
that never crashes (empty runs, a closed pipe)."""
from __future__ import annotations

import json
import subprocess
import sys

from engine import instance_info, units
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.report import print_summary

QUOTER = {"ticks": 10, "unknown_order": 0, "pnl_e-7": 12_428_000, "drawdown_e-7": 165_600,
          "position_BTCUSDT": 1_000_200, "position_ETHUSDT": 99_980}
START = {"start_BTCUSDT": 1_000_000, "start_ETHUSDT": 100_000}


def test_positions_in_base_units_with_the_start_apart():
    lines = units.trading_lines(QUOTER, DEFAULT_INSTRUMENTS, START)
    assert lines[0] == "BTCUSDT 10.00200 BTC (start 10.00000, traded +0.00200)"
    assert lines[1] == "ETHUSDT 9.9980 ETH (start 10.0000, traded -0.0020)"
    assert lines[2].startswith("PnL +1.24 USDT") and "drawdown 0.02 USDT" in lines[2]
    assert units.trading_lines(QUOTER, DEFAULT_INSTRUMENTS)[0].endswith("(start not noted)")
    assert units.plain(QUOTER) == {"ticks": 10, "unknown_order": 0}


def _summary(**extra):
    return {"instance": "x", "stop_reason": "duration 1 s elapsed", "relative_error": 0.0039,
            "instruments": [{"symbol": i.symbol, "base": i.base, "quote": i.quote,
                             "tick_size": i.tick_size, "lot_size": i.lot_size}
                            for i in DEFAULT_INSTRUMENTS], **extra}


def test_an_empty_run_reports_without_crashing(capsys):
    print_summary({})
    print_summary(_summary(histograms={}, counters={}, rings={},
                           wire_to_wire={"count": 0, "p50": None, "p99": None, "max": None},
                           result="never connected to ws://127.0.0.1:1: nothing was sent"))
    out = capsys.readouterr().out
    assert "no latency recorded" in out
    assert out.rstrip().endswith("result: never connected to ws://127.0.0.1:1: nothing was sent")


def test_a_run_with_zero_orders_reports(capsys):
    hist = {"count": 0, "clamped": 0, "mean_ns": 0.0,
            **{k: 0.0 for k in ("p50", "p90", "p99", "p99.9", "p99.99", "p100")}}
    print_summary(_summary(histograms={"sender.tick_to_order": hist},
                           counters={"quoter": {**QUOTER}, "sender": {"orders_sent": 0}},
                           start_positions=START))
    out = capsys.readouterr().out
    assert "HEADLINE tick-to-order: no order was sent" in out
    assert "BTCUSDT 10.00200 BTC (start 10.00000, traded +0.00200)" in out
    assert "pnl_e-7" not in out and "position_BTCUSDT" not in out


def test_hops_above_the_ceiling_are_flagged(capsys):
    st = {"count": 20_000, "clamped": 0, "mean_ns": 1.0, "p50": 100e3, "p90": 300e3,
          "p99": 700e3, "p99.9": 900e3, "p99.99": 900e3, "p100": 900e3}
    print_summary(_summary(histograms={"sender.tick_to_order": st}, latency_ceiling_us=500))
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("TICK-TO-ORDER"))
    assert "100.0 " in row and "700.0*" in row and "300.0 " in row
    assert "ABOVE the 500 us ceiling at P99, P99.9" in out


def test_no_p99_from_a_small_sample(capsys):
    """~70 orders support a P50, never a P99: the table shows '-' there; the headline gives
    P50, P90 and the max with the count instead (issue 19)."""
    st = {"count": 66, "clamped": 0, "mean_ns": 1.0, "p50": 200e3, "p90": 400e3, "p99": 900e3,
          "p99.9": 900e3, "p99.99": 900e3, "p100": 950e3}
    print_summary(_summary(histograms={"sender.tick_to_order": st}, latency_ceiling_us=500))
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("TICK-TO-ORDER"))
    assert row.split()[-6:] == ["200.0", "-", "-", "-", "-", "950.0*"], row
    head = next(line for line in out.splitlines() if line.startswith("HEADLINE"))
    assert "P99" not in head.replace("for a P99", ""), head
    assert "P50 200.0 us, P90 400.0 us, max 950.0 us over 66 orders (too few for a P99" in head, \
        head
    assert "P90 within the 500 us ceiling" in head


def test_quote_lag_line_gives_the_share_of_moves_answered(capsys):
    """The report says how long quotes lagged the wish (percentiles its count supports) and
    how many of the moves that left a quote behind were answered at the wish."""
    t2o = {"count": 66, "clamped": 0, "mean_ns": 1.0, "p50": 200e3, "p90": 400e3, "p99": 900e3,
           "p99.9": 900e3, "p99.99": 900e3, "p100": 950e3}
    lag = dict(t2o, count=300, p50=1_500e3, p90=4_000e3, p100=9_000e3)
    print_summary(_summary(histograms={"sender.tick_to_order": t2o, "quoter.quote_lag": lag},
                           counters={"quoter": {"lags": 400, "lags_undone": 60}}))
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("quote lag"))
    assert "P50 1,500.0 us, P90 4,000.0 us, max 9,000.0 us;" in line and "P99" not in line
    assert "300 of 400 moves answered at the wish (75%), 60 undone by the book" in line


def _mm(*args, **kw):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, timeout=60, **kw)


def test_report_into_a_closed_pipe_ends_quietly(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(_summary(counters={"quoter": QUOTER})))
    p = subprocess.Popen([sys.executable, "-m", "engine.cli", "report", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                     # `mm report | head`: the reader is gone
    err = p.stderr.read().decode()
    assert p.wait(60) == 141, err        # what a process killed by SIGPIPE reports
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_report_and_metrics_without_anything_to_show_say_so_in_one_line(tmp_path, instance):
    out = _mm("report", str(tmp_path))
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "no summary.json" in out.stderr
    out = _mm("metrics", "--instance", instance, "--port", "0")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert f"instance {instance!r} is not running" in out.stderr


def test_prometheus_names_types_and_quantile_labels(instance):
    from prometheus_client import CollectorRegistry, generate_latest

    from engine.control import Control
    from engine.latency.histogram import HistogramSet
    from engine.metrics import InstanceCollector, counter_metric, quantile_label
    from engine.monitor import InstanceView

    assert quantile_label(99.9) == "0.999" and quantile_label(50) == "0.5"
    assert counter_metric("sender", "rtt_us") == ("mm_sender_rtt_seconds", True, 1e6)
    ctl = Control.create(instance)
    hist = HistogramSet.create(instance, "sender", ["tick_to_order"])
    view = None
    try:
        ctl.register("supervisor")
        ctl.name_counters("sender", ["orders_sent", "open_orders", "rtt_us"])
        ctl.counters("sender")[:3] = [7, 2, 40]
        ctl.name_counters("quoter", list(QUOTER))
        ctl.counters("quoter")[:len(QUOTER)] = list(QUOTER.values())
        ctl.name_counters("supervisor", list(START))
        ctl.counters("supervisor")[:2] = list(START.values())
        for v in (100_000, 200_000, 900_000):
            hist.record("tick_to_order", v)
        from engine import config
        instance_info.publish(instance, instance_info.of_config(config.EngineConfig()))
        view = InstanceView(instance)
        reg = CollectorRegistry()
        reg.register(InstanceCollector(view))
        text = generate_latest(reg).decode()
    finally:
        if view is not None:
            view.close()
        hist.close()
        ctl.close()
    assert "# TYPE mm_sender_orders_sent_total counter" in text
    assert "mm_sender_orders_sent_total 7.0" in text
    assert "# TYPE mm_sender_open_orders gauge" in text and "mm_sender_rtt_seconds 4e-05" in text
    assert "mm_counter" not in text and "pnl_e" not in text and "position_BTCUSDT" not in text
    assert 'mm_position{asset="BTC",symbol="BTCUSDT"} 10.002' in text
    assert 'mm_position_start{asset="BTC",symbol="BTCUSDT"} 10.0' in text
    assert 'mm_quoter_pnl{currency="USDT"} 1.2428' in text
    assert "# TYPE mm_hop_latency_seconds summary" in text
    assert 'mm_hop_latency_seconds{hop="sender.tick_to_order",quantile="0.999"}' in text
    assert 'mm_hop_latency_seconds_count{hop="sender.tick_to_order"} 3.0' in text
    assert "mm_latency_ceiling_seconds 0.0005" in text
