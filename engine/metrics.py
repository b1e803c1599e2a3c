"""Prometheus metrics of a running instance, read from shared memory by a process (or thread)
off the hot path; bound to 127.0.0.1 unless told otherwise.

Named and typed by Prometheus conventions: one metric per process counter
(`mm_sender_orders_sent_total`, TYPE counter; levels such as `mm_sender_open_orders` are gauges),
base units (seconds, the base asset, the quote currency), per-hop latency as a summary with the
quantile labels the client library writes ("0.5", "0.99", "0.999"). The dashboard in
deploy/grafana/mm-instance.json reads these names.

prometheus_client renders the exposition formats (text and OpenMetrics, content negotiation,
escaping) and serves them: that is what the field uses and nobody should hand-write it. This
module only maps the instance's shared memory onto its metric families, once per scrape.
"""
from __future__ import annotations

import re
import sys
import time
from decimal import Decimal

from engine import units
from engine.monitor import HOP_QS, InstanceView
from engine.ring.segment import SegmentError

# Process counters that are levels, not running totals; every other counter only grows.
GAUGES = frozenset({"open_orders", "clock_offset_ms", "rtt_us", "connected_ever", "left_open",
                    "connect_error", "connect_http_status", "paused", "in_flight"})
_UNIT_SUFFIX = {"_ms": ("_seconds", 1e3), "_us": ("_seconds", 1e6), "_ns": ("_seconds", 1e9)}
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def quantile_label(percentile: float) -> str:
    """99.9 -> "0.999": the label prometheus_client's own Summary would write."""
    from prometheus_client.utils import floatToGoString

    return floatToGoString(float(Decimal(str(percentile)) / 100))


def counter_metric(role: str, name: str) -> tuple[str, bool, float]:
    """(metric name, is a gauge, divisor to base units) of process counter `name`."""
    gauge = name in GAUGES
    divisor = 1.0
    for suffix, (unit, per_unit) in _UNIT_SUFFIX.items():
        if name.endswith(suffix):
            name, divisor = name[: -len(suffix)] + unit, per_unit
    return f"mm_{role}_{_BAD.sub('_', name)}", gauge, divisor


class InstanceCollector:
    """A prometheus_client collector that reads the instance's segments on every scrape."""

    def __init__(self, view: InstanceView):
        self.view = view

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        snap = self.view.snapshot()
        info = snap["info"]
        up = GaugeMetricFamily("mm_process_up", "1 when the process is registered and alive",
                               labels=["role"])
        beat = GaugeMetricFamily("mm_heartbeat_age_seconds", "age of the process's last "
                                 "heartbeat", labels=["role"])
        for p in snap["processes"]:
            up.add_metric([p["role"]], 1.0 if p["alive"] else 0.0)
            beat.add_metric([p["role"]], max(p["heartbeat_age_ns"], 0) / 1e9)
        yield up
        yield beat
        kill = GaugeMetricFamily("mm_kill_switch", "1 when the kill switch is set")
        kill.add_metric([], 1.0 if snap["kill"] else 0.0)
        yield kill
        for field in ("written", "read", "dropped", "blocked", "wakes", "parks"):
            c = CounterMetricFamily(f"mm_ring_{field}", f"ring records {field}", labels=["ring"])
            for name, st in snap["rings"].items():
                c.add_metric([name], st[field])
            yield c
        depth = GaugeMetricFamily("mm_ring_depth", "records waiting in the ring", labels=["ring"])
        for name, st in snap["rings"].items():
            depth.add_metric([name], st["depth"])
        yield depth
        yield from self._process_counters(snap, CounterMetricFamily, GaugeMetricFamily)
        yield from self._trading(snap, info, GaugeMetricFamily)
        lat = Metric("mm_hop_latency_seconds", "per-hop latency inside the engine", "summary")
        for hop, h in snap["hops"].items():
            for q in HOP_QS:
                lat.add_sample("mm_hop_latency_seconds",
                               {"hop": hop, "quantile": quantile_label(q)}, h[q] / 1e9)
            lat.add_sample("mm_hop_latency_seconds_count", {"hop": hop}, h["count"])
            lat.add_sample("mm_hop_latency_seconds_sum", {"hop": hop}, h["sum_ns"] / 1e9)
        yield lat
        if info is not None:
            ceiling = GaugeMetricFamily("mm_latency_ceiling_seconds", "configured ceiling of "
                                        "tick-to-order latency (latency_ceiling_us)")
            ceiling.add_metric([], info.latency_ceiling_us / 1e6)
            yield ceiling

    @staticmethod
    def _process_counters(snap, counter_family, gauge_family):
        for role, counters in snap["counters"].items():
            if role == "supervisor":     # its slot holds the start positions (see _trading)
                continue
            for name, value in units.plain(counters).items():
                metric, gauge, divisor = counter_metric(role, name)
                help_text = f"{role} counter {name}"
                family = gauge_family if gauge else counter_family
                fam = family(metric, help_text)
                fam.add_metric([], value / divisor if divisor != 1.0 else value)
                yield fam

    @staticmethod
    def _trading(snap, info, gauge_family):
        quoter = snap["counters"].get("quoter", {})
        ccy = units.quote_currency(info.instruments) if info is not None else ""
        for what in ("pnl", "drawdown"):
            value = units.scaled(quoter, what)
            if value is not None:
                g = gauge_family(f"mm_quoter_{what}", f"quoter {what} in the quote currency "
                                 f"(mark-to-market of traded inventory)", labels=["currency"])
                g.add_metric([ccy or "quote"], float(value))
                yield g
        if info is None:                 # exponents unknown: no base-unit positions
            return
        pos = gauge_family("mm_position", "position in base units", labels=["symbol", "asset"])
        start = gauge_family("mm_position_start", "position at start in base units "
                             "(noted by mm run)", labels=["symbol", "asset"])
        for p in units.positions(quoter, info.instruments, snap["counters"].get("supervisor")):
            pos.add_metric([p.symbol, p.asset], float(p.quantity))
            if p.start is not None:
                start.add_metric([p.symbol, p.asset], float(p.start))
        yield pos
        yield start


def start(instance: str, host: str = "127.0.0.1", port: int = 9464):
    """Serve metrics in a background thread; returns (server, view) so the caller can stop it.
    SegmentError when the instance is not running."""
    from prometheus_client import CollectorRegistry, start_http_server

    view = InstanceView(instance)
    registry = CollectorRegistry()
    registry.register(InstanceCollector(view))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError:
        view.close()
        raise
    return server, view


def serve_forever(instance: str, host: str, port: int) -> int:
    try:
        server, view = start(instance, host, port)
    except SegmentError:
        print(f"mm metrics: instance {instance!r} is not running (start it with mm run, or "
              f"name it with --instance or MM_INSTANCE)", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"mm metrics: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"metrics for {instance} on http://{host}:{server.server_port}/metrics", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.shutdown()
        view.close()
