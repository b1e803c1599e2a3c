"""Latency report of a run: snapshot every process's histograms (HdrHistogram percentile text,
raw buckets, PNG plots), the counters and ring statistics, and print the table.
Reporting code: never imported by a hot path."""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import msgspec
import numpy as np

from engine import units
from engine.control import ROLES as CONTROL_ROLES
from engine.instruments import Instrument
from engine.latency.histogram import RELATIVE_ERROR, Histogram, HistogramSet
from engine.proc import isolated_cores
from engine.ring.segment import SegmentError

ROLES = tuple(r for r in CONTROL_ROLES if r != "supervisor")  # the roles that write histograms
QS = (50, 90, 99, 99.9, 99.99, 100)


def machine() -> dict:
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), platform.processor())
    except OSError:
        model = platform.processor()
    return {"host": platform.node(), "cpu": model, "cores": os.cpu_count(),
            "usable_cores": sorted(os.sched_getaffinity(0)),
            "isolated_cores": sorted(isolated_cores()), "kernel": platform.release(),
            "python": platform.python_version()}


def snapshot_run(instance: str, run_dir: Path, ctl=None, rings=(), stop_reason=None,
                 layout=None, result: str = "", cfg=None) -> dict:
    """Read every role's histograms from shared memory into `run_dir` and build the summary.
    `cfg` (the run's resolved config) gives the instrument table and the latency ceiling the
    report converts and flags with; `result` is the run's last line."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    hists: dict[str, dict] = {}
    for role in ROLES:
        try:
            hs = HistogramSet.attach(instance, role)
        except SegmentError:
            continue
        snaps = hs.snapshots()
        hs.close()
        np.savez(run_dir / f"{role}.hist.npz", **{n: h.words for n, h in snaps.items()})
        for name, h in snaps.items():
            (run_dir / f"{role}.{name}.hgrm").write_text(h.hdr_percentile_text())
            hists[f"{role}.{name}"] = _stats(h)
    summary = {"instance": instance, "stop_reason": stop_reason, "result": result,
               "machine": machine(), "relative_error": RELATIVE_ERROR, "histograms": hists,
               "layout": None if layout is None else {"cores": layout.cores, "idle": layout.idle},
               "counters": {r: ctl.counter_values(r) for r in ROLES} if ctl else {},
               "start_positions": ctl.counter_values("supervisor") if ctl else {},
               "rings": {os.path.basename(r.name): r.stats() for r in rings}}
    if cfg is not None:
        summary["instruments"] = [msgspec.to_builtins(i) for i in cfg.instruments]
        summary["latency_ceiling_us"] = cfg.latency_ceiling_us
    sim = run_dir / "sim-report.json"
    if sim.exists():
        try:
            rep = json.loads(sim.read_text())
            summary["wire_to_wire"] = rep.get("latency", {})
            summary["venue_stats"] = rep.get("stats", {})
        except json.JSONDecodeError:
            pass
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _plot(run_dir)
    return summary


def _stats(h: Histogram) -> dict:
    return {"count": h.count, "clamped": h.clamped, "negative": h.negative, "mean_ns": h.mean,
            **{f"p{q:g}": h.percentile(q) for q in QS}}


def _us(ns) -> str:
    return f"{ns / 1e3:.1f}" if isinstance(ns, (int, float)) else "-"


def print_summary(summary: dict, instruments: list[Instrument] | None = None) -> None:
    """The report as text. Works on any summary, old or empty: a missing part is skipped."""
    if instruments is None:
        instruments = [msgspec.convert(i, Instrument) for i in summary.get("instruments", [])]
    ceiling_us = summary.get("latency_ceiling_us", units.DEFAULT_LATENCY_CEILING_US)
    m = summary.get("machine") or {}
    print(f"\nlatency report: instance {summary.get('instance')} ({summary.get('stop_reason')})")
    if m:
        print(f"machine: {m.get('cpu')}, {m.get('cores')} cores (usable {m.get('usable_cores')}, "
              f"isolated {m.get('isolated_cores') or 'none'}), kernel {m.get('kernel')}, "
              f"Python {m.get('python')}")
    if summary.get("layout"):
        lay = summary["layout"]
        print("layout: " + ", ".join(f"{r}@{c}/{lay['idle'].get(r, 'epoll')}"
                                     for r, c in lay["cores"].items()))
    print(f"histogram error: values within +-{summary.get('relative_error', 0) * 100:.2f}% "
          f"(log-linear, 128 sub-buckets per octave); * = above the {ceiling_us} us ceiling\n")
    hists = summary.get("histograms") or {}
    if hists:
        hdr = f"{'hop':38} {'count':>8} " + " ".join(f"{'P' + format(q, 'g'):>10}"
                                                    for q in QS[:-1]) + f" {'max':>10}"
        print(hdr + "   (microseconds)")
        print("-" * len(hdr))
        for name, st in hists.items():
            vals = " ".join(_flagged(st.get(f"p{q:g}"), ceiling_us) for q in QS)
            print(f"{name:38} {st.get('count', 0):>8} {vals}")
    else:
        print("no latency recorded (no process wrote histograms)")
    w = summary.get("wire_to_wire") or {}
    if w.get("count"):
        print(f"\nwire-to-wire as the venue sees it (market frame written -> order received), "
              f"{w['count']} orders:")
        print("  " + "  ".join(f"{k}={_us(v)}us" for k, v in w.items()
                               if (k.startswith("p") or k == "max") and v is not None))
    errors = {k: v for k, v in (summary.get("venue_stats") or {}).items()
              if k.startswith("error ")}
    if errors:
        print("venue refusals: " + "; ".join(f"{k[6:]} x{v}" for k, v in errors.items()))
    headline = [k for k in hists if k.endswith("tick_to_order")]
    if headline:
        st = hists[headline[0]]
        if st.get("count"):
            over = [f"P{q:g}" for q in (50, 99, 99.9)
                    if (st.get(f"p{q:g}") or 0) > ceiling_us * 1e3]
            verdict = (f"ABOVE the {ceiling_us} us ceiling at {', '.join(over)}" if over
                       else f"within the {ceiling_us} us ceiling")
            print(f"\nHEADLINE tick-to-order (frame arrival -> order bytes written): "
                  f"P50 {_us(st.get('p50'))} us, P99 {_us(st.get('p99'))} us, P99.9 "
                  f"{_us(st.get('p99.9'))} us over {st['count']} orders: {verdict}")
        else:
            print("\nHEADLINE tick-to-order: no order was sent")
    counters = summary.get("counters") or {}
    trading = units.trading_lines(counters.get("quoter", {}), instruments,
                                  summary.get("start_positions")) if instruments else []
    if trading:
        print("\ntrading:")
        for line in trading:
            print(f"  {line}")
    for role, c in counters.items():
        shown = {k: v for k, v in (units.plain(c) if instruments else c).items() if v}
        if shown:
            print(f"{role:7} " + " ".join(f"{k}={v}" for k, v in shown.items()))
    for name, st in (summary.get("rings") or {}).items():
        print(f"ring {name}: " + " ".join(f"{k}={st.get(k, 0)}" for k in
                                          ("written", "read", "dropped", "blocked", "parks",
                                           "wakes")))
    if summary.get("result"):
        print(f"\nresult: {summary['result']}")


def _flagged(ns, ceiling_us: int) -> str:
    if not isinstance(ns, (int, float)):
        return f"{'-':>10}"
    mark = "*" if ns > ceiling_us * 1e3 else " "
    return f"{ns / 1e3:9.1f}{mark}"


def print_run_report(run_dir: str) -> int:
    """`mm report RUN_DIR`: the report of a finished run; 1 with one line when there is none."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"mm report: no summary.json in {run_dir} (is it a run directory of mm run?)",
              file=sys.stderr)
        return 1
    except (OSError, json.JSONDecodeError) as e:
        print(f"mm report: {path} is unreadable ({e})", file=sys.stderr)
        return 1
    instruments = None
    if "instruments" not in summary:        # older runs: the table is in the run's config
        try:
            cfg = json.loads((Path(run_dir) / "config.json").read_text())
            instruments = [msgspec.convert(i, Instrument) for i in cfg.get("instruments", [])]
        except (OSError, ValueError, msgspec.ValidationError):
            instruments = []
    print_summary(summary, instruments)
    return 0


def load_histograms(run_dir: Path) -> dict[str, Histogram]:
    out = {}
    for f in sorted(Path(run_dir).glob("*.hist.npz")):
        role = f.name.split(".")[0]
        with np.load(f) as z:
            for name in z.files:
                out[f"{role}.{name}"] = Histogram(name, z[name])
    return out


def _plot(run_dir: Path) -> None:
    """PNG of every histogram's percentile distribution (HdrHistogram plot style)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    hists = {k: h for k, h in load_histograms(run_dir).items() if h.count}
    if not hists:
        return
    fig, ax = plt.subplots(figsize=(10, 6))
    plot_percentiles(ax, {f"{name} (n={h.count})": h.percentile for name, h in hists.items()})
    ax.set_title("per-hop latency distribution")
    fig.tight_layout()
    fig.savefig(run_dir / "latency.png", dpi=100)
    plt.close(fig)


def plot_percentiles(ax, curves: dict) -> None:
    """Draw HdrHistogram-style percentile curves on a matplotlib axis: label -> a function
    giving the value in ns at percentile q (Histogram.percentile, or numpy over samples)."""
    import matplotlib.pyplot as plt

    # one distinct colour per curve; tab20 (pairs of shades) only when tab10 runs out
    ax.set_prop_cycle(color=(plt.cm.tab10 if len(curves) <= 10 else plt.cm.tab20).colors)
    qs = 100 - np.logspace(np.log10(50), -3, 60)
    x = 1 / (1 - qs / 100)
    for label, value_at in curves.items():
        ax.plot(x, [value_at(q) / 1e3 for q in qs], label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([2, 10, 100, 1000, 10000, 100000])
    ax.set_xticklabels(["50%", "90%", "99%", "99.9%", "99.99%", "99.999%"])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (us)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
