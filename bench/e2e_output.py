"""What the end-to-end bench leaves behind, under <results>/e2e/:
  e2e.json          every figure, the settings, the box, and every raw sample: wire-to-wire
                    (ns) per phase, the engine's per-phase histogram buckets
  hgrm/*.hgrm       HdrHistogram percentile files (engine/latency/histogram.py's writer):
                    wire-to-wire per contender and rate, the engine's hops per rate
  *.png             wire_percentiles, engine_hops, latency_vs_rate (bench/e2e_plots.py)
  runs/             each engine run's own directory (summary.json, hgrm, latency.png), the
                    baselines' and the venue's logs
and the rich tables on the terminal. Reporting code only."""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench import e2e_figures as figs
from engine.box.wake_latency import describe
from engine.latency.histogram import Histogram, bucket_bounds

_LOW = bucket_bounds()[0]


def write_outputs(out_dir: Path, settings, runs, engine_summary: dict, interrupted: bool,
                  against: dict | None = None) -> dict:
    contenders = [c for c in settings.contenders if any(r.contender == c for r in runs)]
    labels = {r.contender: r.label for r in runs}
    summary = figs.summarize(runs, contenders, settings.rates, settings.saturation)
    result = {"settings": asdict(settings),
              "box": {**figs.box(engine_summary), "venue": settings.venue,
                      "wake_bound_us": _wake_bounds(runs)},
              "interrupted": interrupted, "summary": summary,
              "targets": figs.targets(summary, settings.saturation),
              "errors": [f"round {r.repeat + 1} {r.label}: {r.error}" for r in runs if r.error]}
    if against is not None:
        from bench.against import compare

        against["rows"] = compare(runs, settings.rates)
        against["regressions"] = [f"{r['metric']} at {r['rate']}/s x{r['ratio']:.2f}"
                                  for r in against["rows"] if r["regression"]]
        against["improvements"] = [f"{r['metric']} at {r['rate']}/s x{r['ratio']:.2f}"
                                   for r in against["rows"] if r["improvement"]]
        result["against"] = against
    doc = dict(result, runs=[_run_json(r) for r in runs])
    (out_dir / "e2e.json").write_text(json.dumps(_finite(doc)))
    files = ["e2e.json"]
    if not interrupted:
        files += _hgrm_and_plots(out_dir, runs, summary, labels, settings.rates)
    _print(result, labels, settings)
    result["files"] = files
    return _finite(result)


def _wake_bounds(runs) -> dict[str, list]:
    """contender -> the PM QoS wake-up bounds read in its phases (each value once)."""
    out: dict[str, list] = {}
    for r in runs:
        seen = out.setdefault(r.contender, [])
        for ph in r.phases:
            if "wake_bound_us" in ph and ph["wake_bound_us"] not in seen:
                seen.append(ph["wake_bound_us"])
    return out


def _run_json(run) -> dict:
    phases = []
    for ph in run.phases:
        p = {k: v for k, v in ph.items() if k != "engine"}
        p["figures"] = figs.phase_figures(ph)
        eng = ph.get("engine")
        if eng:
            p["engine"] = {"rings": eng["rings"], "counters": eng["counters"],
                           "hops": {n: {**figs.hist_stats(h), "buckets_low_ns_count": _buckets(h)}
                                    for n, h in eng["hops"].items()}}
        phases.append(p)
    return {"repeat": run.repeat, "contender": run.contender, "label": run.label,
            "exit_status": run.exit_status, "error": run.error, "phases": phases}


def _buckets(h: Histogram) -> list[list[int]]:
    nz = h.buckets.nonzero()[0]
    return [[int(_LOW[i]), int(h.buckets[i])] for i in nz]


def _finite(obj):
    """NaN/inf -> None (JSON has no NaN); numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _hgrm_and_plots(out_dir: Path, runs, summary: dict, labels: dict,
                    paced_rates) -> list[str]:
    from bench import e2e_plots

    hdir = out_dir / "hgrm"
    hdir.mkdir(exist_ok=True)
    files: list[str] = []
    pooled: dict = {}                       # rate -> contender -> samples (ns)
    hops: dict = {}                         # rate -> hop -> merged Histogram
    for run in runs:
        for ph in run.phases:
            pooled.setdefault(ph["rate"], {}).setdefault(run.contender, []).extend(ph["wire_ns"])
            for name, h in ((ph.get("engine") or {}).get("hops") or {}).items():
                by = hops.setdefault(ph["rate"], {})
                by[name] = by[name].merge(h) if name in by else h
    for rate, by in pooled.items():
        for name, samples in by.items():
            h = Histogram.empty(f"{name} wire")
            for v in samples:
                h.record(v)
            files.append(_write(hdir / f"{name}-{rate}-wire_to_wire.hgrm", h.hdr_percentile_text()))
    for rate, by in hops.items():
        for name, h in by.items():
            files.append(_write(hdir / f"engine-{rate}-{name}.hgrm", h.hdr_percentile_text()))
    try:
        import matplotlib  # noqa: F401  (the bench extra)
    except ImportError:
        return [f"hgrm/{p.name}" for p in map(Path, files)]
    paced = {r: by for r, by in pooled.items() if r in paced_rates}
    e2e_plots.wire_percentiles(paced, labels, out_dir / "wire_percentiles.png")
    e2e_plots.engine_hops(hops, {r: by.get("engine", []) for r, by in pooled.items()},
                          out_dir / "engine_hops.png")
    e2e_plots.latency_vs_rate(summary["latency_us"], labels, out_dir / "latency_vs_rate.png")
    return [f"hgrm/{Path(p).name}" for p in files] + ["wire_percentiles.png", "engine_hops.png",
                                                     "latency_vs_rate.png"]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- the terminal
def _console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=150)


def _us(v) -> str:
    return "-" if v is None or v != v else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _x(v) -> str:
    return "-" if v is None or v != v else f"{v:.2f}"


def _print(result: dict, labels: dict, settings) -> None:
    c = _console()
    s, box = result["summary"], result["box"]
    lay = box.get("engine_layout") or {}
    c.print(f"\n[bold]end to end[/]: {len(labels)} contenders x {len(settings.rates)} rates, "
            f"{settings.repeats} round(s) of {settings.phase_s:g} s phases; medians of rounds; "
            f"wire-to-wire = venue side, market frame written -> order frame received")
    c.print(f"box: {box['cpu']}, {box['cores']} cores (usable {box['usable_cores']}, isolated "
            f"{box['isolated_cores'] or 'none'}), governor {box['governor']}, kernel "
            f"{box['kernel']}, Python {box['python']}")
    c.print(venue_line(box["venue"], s["venue_core_share"], settings.venue_batch_us))
    if box.get("wake_bound_us"):
        c.print("CPU wake-up bound in force during the phases (PM QoS, engine/box/"
                "wake_latency.py): " + ", ".join(
                    f"{labels.get(n, n)} {' / '.join(describe(v) for v in vs)}"
                    for n, vs in box["wake_bound_us"].items()))
    if lay:
        c.print("engine layout: " + ", ".join(f"{r}@{core}/{lay['idle'].get(r, 'epoll')}"
                                              for r, core in lay["cores"].items()))
    c.print("versions: " + ", ".join(f"{k} {v}" for k, v in box["versions"].items()))
    c.print(_latency_table(s, labels))
    if s["engine_hops_us"]:
        c.print(_hops_table(s["engine_hops_us"]))
    c.print(_cpu_table(s["cpu_us_per_event"], labels))
    if s["saturation"]["by_rate"]:
        c.print(_saturation_table(s["saturation"]))
    if result["targets"]:
        t = Table(title="the issue's targets (wire-to-wire)")
        for col in ("target", "measured", "limit", ""):
            t.add_column(col, justify="right" if col in ("measured", "limit") else "left")
        for tg in result["targets"]:
            t.add_row(tg["target"], _x(tg["value"]) if tg["limit"] < 10 else _us(tg["value"]),
                      _x(tg["limit"]) if tg["limit"] < 10 else _us(tg["limit"]),
                      "[green]met[/]" if tg["ok"] else "[red]not met[/]")
        c.print(t)
    if "against" in result:
        from bench.against import print_table

        a = result["against"]
        print_table(a["rows"], f"{a['ref']} ({a['sha'][:10]}: {a['subject'][:60]})",
                    a["config_keys_dropped"])
    for e in result["errors"]:
        c.print(f"[yellow]{e}[/]")


VENUES = {"light": "light (bench/light_venue.py: pre-encoded frames, timerfd pacing, kernel "
                   "receive stamps)",
          "sim": "the full simulator (engine/sim, niced as mm run embeds it)"}


def venue_line(kind: str, share: dict, batch_us: float = -1.0) -> str:
    """`venue: <which>; CPU <x>% of a core at <rate>/s, ...` (the box section)."""
    cpu = ", ".join(f"{100 * v:.1f}% at {int(r):,}/s" for r, v in share.items() if v == v)
    batch = ""
    if kind == "light":
        batch = (f"; events due within {batch_us if batch_us >= 0 else 500:g} us share a write"
                 if batch_us != 0 else "; one write per event")
    return (f"venue: {VENUES.get(kind, kind)}{batch}; its CPU (contenders' orders included), "
            f"share of one core: {cpu or 'not measured'}")


def _latency_table(s: dict, labels: dict) -> Table:
    t = Table(title="wire-to-wire (us), median of rounds; engine/x < 1: the engine is faster")
    for col in ("rate/s", "contender", "P50", "P99", "P99.9", "answered", "orders/s",
                "engine/x P50", "P99", "P99.9"):
        t.add_column(col, justify="left" if col == "contender" else "right")
    rates = sorted({r for by in s["latency_us"].values() for r in by})
    for rate in rates:
        for name, by in s["latency_us"].items():
            v = by.get(rate)
            if v is None:
                continue
            r = s["ratios"].get(name, {}).get(rate, {})
            t.add_row(f"{rate:,}", labels[name], _us(v["p50"]), _us(v["p99"]), _us(v["p999"]),
                      f"{100 * v['answered']:.0f}%", f"{v['orders_per_s']:,.0f}",
                      _x(r.get("p50")), _x(r.get("p99")), _x(r.get("p999")))
        t.add_section()
    return t


def _hops_table(hops: dict) -> Table:
    rates = sorted(hops)
    t = Table(title="engine hops (us): P50 / P99 / P99.9, median of rounds")
    t.add_column("hop")
    for rate in rates:
        t.add_column(f"{rate:,}/s", justify="right")
    names = list(dict.fromkeys(h for r in rates for h in hops[r]))
    for h in names:
        t.add_row(h, *(" / ".join(_us(hops[r][h][k]) for k in ("p50", "p99", "p999"))
                       if h in hops[r] else "-" for r in rates))
    return t


def _cpu_table(cpu: dict, labels: dict) -> Table:
    rates = sorted({r for by in cpu.values() for r in by})
    t = Table(title="CPU per book event (us, user+system) of each process; a spinning "
                    "process costs its whole core whatever the rate")
    t.add_column("contender")
    t.add_column("process")
    for rate in rates:
        t.add_column(f"{rate:,}/s", justify="right")
    for name, by in cpu.items():
        procs = list(dict.fromkeys(p for r in rates for p in by.get(r, {})))
        for p in procs:
            t.add_row(labels[name], p, *(_us(by.get(r, {}).get(p)) for r in rates))
        t.add_section()
    return t


def _saturation_table(sat: dict) -> Table:
    t = Table(title=f"engine saturation: highest sustained "
                    f"{sat['highest_sustained_per_s']:,.0f} events/s (venue delivered at most "
                    f"{sat['venue_ceiling_per_s']:,.0f}/s)")
    for col in ("asked/s", "delivered/s", "feed published / venue events", "md ring dropped",
                "feed ring full", "events per quote pass", "orders/s", "wire P50", "wire P99",
                "sustained"):
        t.add_column(col, justify="right")
    for rate, r in sorted(sat["by_rate"].items()):
        t.add_row(f"{rate:,}", f"{r['delivered_per_s']:,.0f}" + (" (venue-limited)"
                                                                  if r["venue_limited"] else ""),
                  f"{100 * r['feed_share']:.1f}%", f"{r['md_ring_dropped']:,.0f}",
                  f"{r['feed_ring_full']:,.0f}", f"{r['ticks_per_batch']:.2f}",
                  f"{r['orders_sent_per_s']:,.0f}", _us(r["wire_p50"]), _us(r["wire_p99"]),
                  "yes" if r["sustained"] else "[red]no[/]")
    return t
