"""Latency report of a run: snapshot every process's histograms (HdrHistogram percentile text,
raw buckets, PNG plots), the counters and ring statistics, and print the table.
Reporting code: never imported by a hot path."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from engine.control import ROLES as CONTROL_ROLES
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
                 layout=None) -> dict:
    """Read every role's histograms from shared memory into `run_dir` and build the summary."""
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
    summary = {"instance": instance, "stop_reason": stop_reason, "machine": machine(),
               "relative_error": RELATIVE_ERROR, "histograms": hists,
               "layout": None if layout is None else {"cores": layout.cores, "idle": layout.idle},
               "counters": {r: ctl.counter_values(r) for r in ROLES} if ctl else {},
               "rings": {os.path.basename(r.name): r.stats() for r in rings}}
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
    return {"count": h.count, "clamped": h.clamped, "mean_ns": h.mean,
            **{f"p{q:g}": h.percentile(q) for q in QS}}


def print_summary(summary: dict) -> None:
    m = summary["machine"]
    print(f"\nlatency report: instance {summary['instance']} ({summary.get('stop_reason')})")
    print(f"machine: {m['cpu']}, {m['cores']} cores (usable {m['usable_cores']}, isolated "
          f"{m['isolated_cores'] or 'none'}), kernel {m['kernel']}, Python {m['python']}")
    if summary.get("layout"):
        lay = summary["layout"]
        print("layout: " + ", ".join(f"{r}@{c}/{lay['idle'].get(r, 'epoll')}"
                                     for r, c in lay["cores"].items()))
    print(f"histogram error: values within +-{summary['relative_error'] * 100:.2f}% "
          f"(log-linear, 128 sub-buckets per octave)\n")
    hdr = f"{'hop':38} {'count':>8} " + " ".join(f"{'P' + format(q, 'g'):>9}" for q in QS[:-1]) + f" {'max':>9}"
    print(hdr + "   (microseconds)")
    print("-" * len(hdr))
    for name, st in summary["histograms"].items():
        vals = " ".join(f"{st[f'p{q:g}'] / 1e3:9.1f}" for q in QS)
        print(f"{name:38} {st['count']:>8} {vals}")
    w = summary.get("wire_to_wire")
    if w:
        print(f"\nwire-to-wire as the venue sees it (market frame written -> order received), "
              f"{w.get('count', 0)} orders:")
        print("  " + "  ".join(f"{k}={v / 1e3:.1f}us" for k, v in w.items()
                               if k.startswith("p") or k == "max"))
    errors = {k: v for k, v in summary.get("venue_stats", {}).items() if k.startswith("error ")}
    if errors:
        print("venue refusals: " + "; ".join(f"{k[6:]} x{v}" for k, v in errors.items()))
    headline = [k for k in summary["histograms"] if k.endswith("tick_to_order")]
    if headline:
        st = summary["histograms"][headline[0]]
        print(f"\nHEADLINE tick-to-order (frame arrival -> order bytes written): "
              f"P50 {st['p50'] / 1e3:.1f} us, P99 {st['p99'] / 1e3:.1f} us, "
              f"P99.9 {st['p99.9'] / 1e3:.1f} us over {st['count']} orders (ceiling 500 us)")
    for role, c in summary.get("counters", {}).items():
        if c:
            print(f"{role:7} " + " ".join(f"{k}={v}" for k, v in c.items() if v))
    for name, st in summary.get("rings", {}).items():
        print(f"ring {name}: written={st['written']} read={st['read']} dropped={st['dropped']} "
              f"blocked={st['blocked']} parks={st['parks']} wakes={st['wakes']}")


def print_run_report(run_dir: str) -> int:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        print(f"mm report: no summary.json in {run_dir}")
        return 1
    print_summary(json.loads(path.read_text()))
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
