"""Prometheus metrics of a running instance, read from shared memory by a process (or thread)
off the hot path; bound to 127.0.0.1 unless told otherwise."""
from __future__ import annotations

import sys
import time

from engine.monitor import HOP_QS, InstanceView


class InstanceCollector:
    """A prometheus_client collector that reads the instance's segments on every scrape."""

    def __init__(self, view: InstanceView):
        self.view = view

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.view.snapshot()
        up = GaugeMetricFamily("mm_process_up", "process registered and alive", labels=["role"])
        beat = GaugeMetricFamily("mm_heartbeat_age_seconds", "age of the last heartbeat",
                                 labels=["role"])
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
        cnt = GaugeMetricFamily("mm_counter", "process counters", labels=["role", "name"])
        for role, c in snap["counters"].items():
            for k, v in c.items():
                cnt.add_metric([role, k], v)
        yield cnt
        lat = GaugeMetricFamily("mm_latency_seconds", "per-hop latency percentiles",
                                labels=["hop", "quantile"])
        for hop, h in snap["hops"].items():
            for q in HOP_QS:
                lat.add_metric([hop, str(q / 100)], h[q] / 1e9)
        yield lat


def start(instance: str, host: str = "127.0.0.1", port: int = 9464):
    """Serve metrics in a background thread; returns (server, view) so the caller can stop it."""
    from prometheus_client import CollectorRegistry, start_http_server

    view = InstanceView(instance)
    registry = CollectorRegistry()
    registry.register(InstanceCollector(view))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, view


def serve_forever(instance: str, host: str, port: int) -> int:
    server, view = start(instance, host, port)
    print(f"metrics for {instance} on http://{host}:{server.server_port}/metrics", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.shutdown()
        view.close()
