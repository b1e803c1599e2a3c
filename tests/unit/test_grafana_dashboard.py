"""deploy/grafana/mm-instance.json reads one instance ($instance) and only metrics the endpoint
exports: a renamed or removed metric fails here, not on a trader's screen."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "mm-instance.json"
_METRIC = re.compile(r"\b(mm_[a-z0-9_]+)")


def _targets(d):
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


def _counter_exists(metric: str) -> bool:
    """mm_<role>_<name>[_total] names a counter that engine/<role>/ publishes."""
    m = re.match(r"mm_(feed|quoter|sender)_(.+?)(_total)?$", metric)
    if not m:
        return False
    role, name = m.group(1), m.group(2)
    candidates = {name}
    if name.endswith("_seconds"):
        candidates |= {name[:-8] + s for s in ("_ms", "_us", "_ns")}
    source = "\n".join(p.read_text() for p in (ROOT / "engine" / role).glob("*.py"))
    return any(f'"{c}"' in source for c in candidates)


def test_dashboard_reads_one_instance():
    d = json.loads(DASHBOARD.read_text())
    names = [v["name"] for v in d["templating"]["list"]]
    assert "instance" in names
    for title, expr in _targets(d):
        assert 'instance="$instance"' in expr, title


def _families(instance: str) -> set[str]:
    """The sample names the collector exports for an instance with rings, a hop, positions."""
    from prometheus_client import CollectorRegistry

    from engine import config, instance_info
    from engine.control import Control
    from engine.latency.histogram import HistogramSet
    from engine.metrics import InstanceCollector
    from engine.monitor import InstanceView
    from engine.ring import Ring
    from engine.ring.table import RINGS

    ctl = Control.create(instance)
    made = [HistogramSet.create(instance, "sender", ["tick_to_order"])]
    made += [Ring.create(instance, spec.name, spec.dtype, 64) for spec in RINGS]
    ctl.name_counters("quoter", ["pnl_e-7", "drawdown_e-7", "position_BTCUSDT"])
    ctl.name_counters("supervisor", ["start_BTCUSDT"])
    instance_info.publish(instance, instance_info.of_config(config.EngineConfig()))
    view = InstanceView(instance)
    try:
        reg = CollectorRegistry()
        reg.register(InstanceCollector(view))
        return {n for fam in reg.collect() for n in (fam.name, *(s.name for s in fam.samples))}
    finally:
        view.close()
        for m in made:
            m.close()
        ctl.close()


def test_every_metric_on_the_dashboard_is_exported(instance):
    d = json.loads(DASHBOARD.read_text())
    used = {m for _, expr in _targets(d) for m in _METRIC.findall(expr)}
    families = _families(instance)
    unknown = sorted(m for m in used if m not in families and not _counter_exists(m))
    assert not unknown, f"the dashboard reads metrics nobody exports: {unknown}"
    assert _counter_exists("mm_sender_orders_sent_total")
    assert not _counter_exists("mm_sender_no_such_counter_total")
