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

from engine import glossary, units
from engine.control import ROLES as CONTROL_ROLES
from engine.instruments import Instrument
from engine.latency import reading
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
                 layout=None, result: str = "", cfg=None, started_ns: int = 0,
                 wake_bound_us: int | None = None) -> dict:
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
               "wake_bound_us": wake_bound_us,
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
    if cfg is not None and cfg.journal.enabled:     # the run's fills, PnL, markouts
        from engine.journal import report as journal_report
        from engine.journal.schema import journal_path

        sec = journal_report.section(journal_path(cfg), cfg.instruments, started_ns)
        journal_report.plot(run_dir, sec)
        summary["journal"] = {k: v for k, v in sec.items() if k != "series"}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _plot(run_dir, summary)
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
    if "wake_bound_us" in summary:
        from engine.box.wake_latency import describe

        print(f"CPU wake-up bound in force (PM QoS): {describe(summary['wake_bound_us'])}")
    print(f"histogram error: values within +-{summary.get('relative_error', 0) * 100:.2f}% "
          f"(log-linear, 128 sub-buckets per octave); * = above the {ceiling_us} us ceiling\n")
    hists = summary.get("histograms") or {}
    if hists:
        hdr = f"{'hop':52} {'count':>8} " + " ".join(f"{'P' + format(q, 'g'):>10}"
                                                    for q in QS[:-1]) + f" {'max':>10}"
        print(hdr + "   (microseconds)")
        print("-" * len(hdr))
        for name, st in hists.items():
            n = st.get("count", 0)
            vals = " ".join(_flagged(st.get(f"p{q:g}") if reading.supported(q, n) else None,
                                     ceiling_us) for q in QS)
            print(f"{reading.plain_hop(name)[:52]:52} {n:>8} {vals}")
        print(f"(- : too few samples for that percentile; a percentile is shown when at least "
              f"{reading.MIN_TAIL} samples lie beyond it: P99 needs 1,000)")
    else:
        print("no latency recorded (no process wrote histograms)")
    w = summary.get("wire_to_wire") or {}
    if w.get("count"):
        n = w["count"]
        print(f"\nwire-to-wire as the venue sees it (market frame written -> order received), "
              f"{n} orders:")
        print("  " + "  ".join(f"{k}={_us(v)}us" for k, v in w.items()
                               if v is not None and (k == "max" or (
                                   k.startswith("p") and _wire_q(k) is not None
                                   and reading.supported(_wire_q(k), n)))))
    errors = {k: v for k, v in (summary.get("venue_stats") or {}).items()
              if k.startswith("error ")}
    if errors:
        print("the venue's own count of requests it refused, by code (requests, not orders: "
              "a cancel-replace is one request): " + "; ".join(f"{k[6:]} x{v}"
                                                            for k, v in errors.items()))
    counters = summary.get("counters") or {}
    t2o = next((hists[k] for k in hists if k.endswith("tick_to_order")), None)
    if counters.get("sender"):
        print("\n" + glossary.order_count(counters["sender"],
                                          t2o.get("count") if t2o else None,
                                          w.get("count") if w else None))
    if t2o is not None:
        print(f"\nHEADLINE {reading.headline(t2o, ceiling_us)}")
    qc = counters.get("quoter") or {}
    if qc.get("lags"):
        lag = next((hists[k] for k in hists if k.endswith("quote_lag")), None)
        print(reading.quote_lag_line(lag, qc["lags"], qc.get("lags_undone", 0)))
    trading = units.trading_lines(counters.get("quoter", {}), instruments,
                                  summary.get("start_positions")) if instruments else []
    if trading:
        print("\ntrading:")
        for line in trading:
            print(f"  {line}")
    for role, c in counters.items():
        plain = units.plain(c) if instruments else c
        shown = {k: v for k, v in glossary.shown(role, plain).items() if v}
        if shown:
            print(f"{role:7} " + " ".join(f"{k}={v}" for k, v in shown.items()))
    for name, st in (summary.get("rings") or {}).items():
        print(f"ring {name}: " + " ".join(f"{k}={st.get(k, 0)}" for k in
                                          ("written", "read", "dropped", "blocked", "parks",
                                           "wakes")))
    if summary.get("journal"):
        from engine.journal.report import print_section
        print_section(summary["journal"])
    if summary.get("result"):
        print(f"\nresult: {summary['result']}")


def _wire_q(key: str) -> float | None:
    """The simulator's percentile keys: 'p50' -> 50, 'p999' -> 99.9, 'p99.9' -> 99.9 (None
    for keys that are not a percentile)."""
    digits = key[1:]
    try:
        q = float(digits)
    except ValueError:
        return None
    if q > 100 and "." not in digits:       # p999, p9999: the dot after two digits
        q = float(digits[:2] + "." + digits[2:])
    return q


def print_explanation(summary: dict) -> None:
    """`mm report --explain`: one line per counter and hop of this run saying what it means."""
    print("\nwhat each number means (engine/glossary.py):")
    for name in summary.get("histograms") or {}:
        print(f"  hop {reading.plain_hop(name)}: file {name}.hgrm")
    for role, c in (summary.get("counters") or {}).items():
        for k in c:
            text = glossary.meaning(role, k) or "(no meaning written down: a gap, report it)"
            print(f"  {role} {glossary.display_name(role, k)}: {text}")


def _flagged(ns, ceiling_us: int) -> str:
    if not isinstance(ns, (int, float)):
        return f"{'-':>10}"
    mark = "*" if ns > ceiling_us * 1e3 else " "
    return f"{ns / 1e3:9.1f}{mark}"


def print_run_report(run_dir: str, explain: bool = False) -> int:
    """`mm report RUN_DIR`: the report of a finished run; 1 with one line when the folder holds
    no run (absent, empty, or not written by mm run)."""
    folder = Path(run_dir)
    path = folder / "summary.json"
    if not folder.is_dir():
        print(f"mm report: {run_dir} does not exist (mm run writes runs/<instance>-<time>/ and "
              f"points runs/latest at the newest)", file=sys.stderr)
        return 1
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"mm report: {run_dir} holds no run (no summary.json: the run was refused or "
              f"stopped before it started, or this is not a folder mm run wrote)",
              file=sys.stderr)
        return 1
    except (OSError, json.JSONDecodeError) as e:
        print(f"mm report: {path} is unreadable ({e})", file=sys.stderr)
        return 1
    instruments = None
    if "instruments" not in summary:        # older runs: the table is in the run's config
        try:
            cfg = json.loads((folder / "config.json").read_text())
            instruments = [msgspec.convert(i, Instrument) for i in cfg.get("instruments", [])]
        except (OSError, ValueError, msgspec.ValidationError):
            instruments = []
    print_summary(summary, instruments)
    if explain:
        print_explanation(summary)
    return 0


def load_histograms(run_dir: Path) -> dict[str, Histogram]:
    out = {}
    for f in sorted(Path(run_dir).glob("*.hist.npz")):
        role = f.name.split(".")[0]
        with np.load(f) as z:
            for name in z.files:
                out[f"{role}.{name}"] = Histogram(name, z[name])
    return out


def _plot(run_dir: Path, summary: dict | None = None) -> None:
    """latency.png: every hop's percentile curve (HdrHistogram plot style, plain hop names, each
    cut at the last percentile its samples reach), the ceiling as a line, the headline as the
    title, the legend beside the axes so it covers no curve."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    hists = {k: h for k, h in load_histograms(run_dir).items() if h.count}
    if not hists:
        return
    summary = summary or {}
    ceiling_us = summary.get("latency_ceiling_us", units.DEFAULT_LATENCY_CEILING_US)
    curves, same_as = {}, {}
    for name, h in hists.items():
        twin = next((k for k in curves if _same_curve(hists[k], h)), None)
        if twin is not None:                 # one curve hidden under the other: draw one
            same_as.setdefault(twin, []).append(name)
            continue
        curves[name] = h
    fig, ax = plt.subplots(figsize=(13, 6.5))
    plot_percentiles(ax, {
        f"{reading.plain_hop(k)}" + "".join(f"\n  = {reading.plain_hop(t)}"
                                            for t in same_as.get(k, []))
        + f" (n={h.count})": (h.percentile, h.count) for k, h in curves.items()},
        highlight=[i for i, k in enumerate(curves) if k.endswith("tick_to_order")])
    ax.axhline(ceiling_us, color="black", linestyle="--", linewidth=1.2)
    ax.annotate(f"{ceiling_us} us ceiling", xy=(0.01, ceiling_us), xycoords=("axes fraction",
                                                                              "data"),
                xytext=(0, 3), textcoords="offset points", fontsize=8)
    t2o = next((h for k, h in hists.items() if k.endswith("tick_to_order")), None)
    title = "per-hop latency"
    if t2o is not None:
        st = {"count": t2o.count, **{f"p{q:g}": t2o.percentile(q) for q in QS}}
        title = "HEADLINE " + reading.headline(st, ceiling_us)
    ax.set_title(_wrap(title, 110), fontsize=9)
    fig.tight_layout()
    fig.savefig(run_dir / "latency.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def _same_curve(a: Histogram, b: Histogram, tolerance: float = 0.03) -> bool:
    """Whether two hops would draw as one line: equal counts and every plotted percentile
    within `tolerance` (feed.arrival_to_decoded under feed.arrival_to_published: the decode's
    own time is a rounding error beside the wait for the socket)."""
    if a.count != b.count:
        return False
    for q in (50, 75, 90, 95, 99, 99.9, 100):
        x, y = a.percentile(q), b.percentile(q)
        if abs(x - y) > tolerance * max(abs(x), abs(y), 1.0):
            return False
    return True


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


# tab10's ten colours, then the same with dashes: no two curves look alike
_STYLES = ("-", "--", ":")


def plot_percentiles(ax, curves: dict, highlight=()) -> None:
    """Draw HdrHistogram-style percentile curves on a matplotlib axis: label -> a function
    giving the value in ns at percentile q (Histogram.percentile, or numpy over samples), or
    (that function, sample count): a curve with a count stops at the last percentile its
    samples reach (1 - 1/count). The legend goes right of the axes, covering nothing."""
    import matplotlib.pyplot as plt

    colours = plt.cm.tab10.colors
    qs_all = 100 - np.logspace(np.log10(50), -3, 60)
    top = 0.0
    for k, (label, curve) in enumerate(curves.items()):
        value_at, count = curve if isinstance(curve, tuple) else (curve, None)
        qs = qs_all if count is None else qs_all[qs_all <= 100 * (1 - 1 / max(count, 1))]
        if not len(qs):
            qs = qs_all[:1]
        x = 1 / (1 - qs / 100)
        top = max(top, x[-1])
        ax.plot(x, [value_at(q) / 1e3 for q in qs], label=label,
                color=colours[k % len(colours)], linestyle=_STYLES[(k // len(colours)) % 3],
                linewidth=2.6 if k in highlight else 1.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in (2, 10, 100, 1000, 10000, 100000) if t <= max(top, 2) * 1.01]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["50%", "90%", "99%", "99.9%", "99.99%", "99.999%"][:len(ticks)])
    ax.set_xlabel("percentile (each curve ends where its samples run out)")
    ax.set_ylabel("latency (us)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
