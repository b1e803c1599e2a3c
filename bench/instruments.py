"""Cost as the work grows: the engine quoting 1, 10, 50 and 200 instruments against the light
venue streaming every symbol, at the same TOTAL book event rate, so what changes is the number
of instruments and nothing else.

Per count: tick-to-order (the engine's own histogram: kernel receive stamp of the tick -> order
written), wire-to-wire as the venue sees it, the share of book events answered, and CPU per book
event of the engine's processes; then the cost per added instrument: the least-squares slope of
each figure over the counts (and the 200 / 1 ratio of tick-to-order P50, the issue's target:
at most 1.5x).

    python -m bench --only instruments [--quick: 1,50,200] [--instruments-counts 1,10,50,200]
        [--instruments-rate 2000]
Symbols are made up (S000USDT...: BTCUSDT's filters; bench/light_venue.py); the engine gets them
through MM_SYMBOL and reads their filters from the venue's exchangeInfo, as a user's would.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.contenders import ContenderError, Engine
from bench.e2e import Settings, _phase, _start_venue, engine_toml

COUNTS = (1, 10, 50, 200)
QUICK_COUNTS = (1, 50, 200)   # QUICK=1 stays under 2 minutes: each count is an engine start
RATE = 2000                   # total book events/s over all symbols
HOP = "sender.tick_to_order"


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}USDT" for i in range(n)]


def main(args=None) -> dict:
    quick = bool(getattr(args, "quick", False))
    counts = tuple(int(x) for x in str(getattr(args, "instruments_counts", None) or ",".join(
        map(str, QUICK_COUNTS if quick else COUNTS))).split(",") if x.strip())
    rate = int(getattr(args, "instruments_rate", None) or RATE)
    s = Settings(rates=(rate,), saturation=(), phase_s=1.0 if quick else 5.0,
                 settle_s=0.3 if quick else 0.5, warmup_s=0.3 if quick else 1.0, repeats=1, contenders=("engine",))
    out_dir = Path(getattr(args, "out_dir", None) or "bench/results/instruments") / "instruments"
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / "engine.toml"
    # every symbol's quotes at the venue stay within the default max_instruments; the
    # quoter's limits scaled so that 200 symbols are not refused by risk
    config.write_text(engine_toml(["max_instruments=256"]))
    rows = []
    for n in counts:
        rows.append(_one(n, rate, s, config, out_dir))
        _print_row(rows[-1])
    result = {"rate": rate, "phase_s": s.phase_s, "rows": rows,
              "per_instrument": _slopes(rows)}
    _print(result)
    return result


def _one(n: int, rate: int, s: Settings, config: Path, out_dir: Path) -> dict:
    syms = symbols(n)
    venue = _start_venue(rate, -1, out_dir / "runs", "light", syms)
    engine = Engine("mm", config, f"inst{n}x{int(time.time()) % 100000}", ",".join(syms),
                    out_dir / "runs" / f"engine-{n}")
    row = {"instruments": n, "error": ""}
    try:
        engine.start(venue.md_url, venue.api_url, backstop_s=300)
        engine.wait_ready()
        time.sleep(s.warmup_s)
        ph = _phase(engine, venue, rate, s)
        events = max(ph["events"], 1)
        hop = (ph["engine"] or {}).get("hops", {}).get(HOP)
        wire = sorted(ph["wire_ns"])
        row.update({
            "events_per_s": ph["events"] / ph["seconds"],
            # a busy symbol leaves events unanswered (one request in flight per side), many
            # quiet ones do not: read tick-to-order beside the order rate it was measured at
            "orders_per_s": ph["orders"] / ph["seconds"],
            "answered": len(wire) / events,
            "tick_to_order_p50_us": hop.percentile(50) / 1e3 if hop and hop.count else None,
            "tick_to_order_p99_us": hop.percentile(99) / 1e3 if hop and hop.count else None,
            "wire_p50_us": _q(wire, 0.5), "wire_p99_us": _q(wire, 0.99),
            "cpu_us_per_event": 1e6 * sum(v for p, v in ph["cpu_s"].items() if p != "venue")
            / events,
            "cpu_by_process_us": {p: 1e6 * v / events for p, v in ph["cpu_s"].items()},
            "venue_core_share": ph["cpu_s"].get("venue", 0.0) / ph["seconds"]})
    except ContenderError as e:
        row["error"] = str(e)
    finally:
        engine.stop()
        venue.stop()
    return row


def _q(sorted_ns: list, q: float):
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e3 if sorted_ns else None


def _slopes(rows: list[dict]) -> dict:
    """Least-squares slope per added instrument of each figure, and the 200/1 ratio."""
    ok = [r for r in rows if not r["error"]]
    out = {}
    for key in ("tick_to_order_p50_us", "tick_to_order_p99_us", "wire_p50_us",
                "cpu_us_per_event", "answered"):
        pts = [(r["instruments"], r[key]) for r in ok if r.get(key) is not None]
        if len(pts) >= 2:
            out[key] = statistics.linear_regression(*zip(*pts)).slope
    by = {r["instruments"]: r for r in ok}
    lo, hi = min(by, default=None), max(by, default=None)
    if lo is not None and hi != lo and by[lo].get("tick_to_order_p50_us") and \
            by[hi].get("tick_to_order_p50_us"):
        out["tick_to_order_p50_ratio"] = {"of": f"{hi}/{lo}", "value": by[hi]["tick_to_order_p50_us"]
                                          / by[lo]["tick_to_order_p50_us"], "target": 1.5}
    return out


def _f(v, fmt=",.0f"):
    return "-" if v is None else format(v, fmt)


def _print_row(r: dict) -> None:
    if r["error"]:
        print(f"  {r['instruments']:>4} instruments: {r['error']}")
        return
    print(f"  {r['instruments']:>4} instruments: tick-to-order P50/P99 "
          f"{_f(r['tick_to_order_p50_us'])}/{_f(r['tick_to_order_p99_us'])} us, wire P50/P99 "
          f"{_f(r['wire_p50_us'])}/{_f(r['wire_p99_us'])} us, answered "
          f"{100 * r['answered']:.0f}%, CPU {r['cpu_us_per_event']:,.1f} us/event "
          f"(venue {100 * r['venue_core_share']:.1f}% of a core)", flush=True)


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console() if Console().is_terminal else Console(width=150)
    t = Table(title=f"instruments: the engine at {result['rate']:,} book events/s in total, "
                    f"spread over every symbol ({result['phase_s']:g} s per count)")
    for col in ("instruments", "events/s", "orders/s", "tick-to-order P50", "P99", "wire P50",
                "P99", "answered", "CPU us/event"):
        t.add_column(col, justify="right")
    for r in result["rows"]:
        if r["error"]:
            t.add_row(str(r["instruments"]), r["error"][:60], *[""] * 7)
            continue
        t.add_row(str(r["instruments"]), _f(r["events_per_s"]), _f(r["orders_per_s"]),
                  _f(r["tick_to_order_p50_us"]),
                  _f(r["tick_to_order_p99_us"]), _f(r["wire_p50_us"]), _f(r["wire_p99_us"]),
                  f"{100 * r['answered']:.0f}%", _f(r["cpu_us_per_event"], ",.1f"))
    c.print(t)
    per = result["per_instrument"]
    parts = [f"tick-to-order P50 {per['tick_to_order_p50_us']:+.2f} us" if
             "tick_to_order_p50_us" in per else "",
             f"P99 {per['tick_to_order_p99_us']:+.2f} us" if "tick_to_order_p99_us" in per else "",
             f"CPU {per['cpu_us_per_event']:+.3f} us/event" if "cpu_us_per_event" in per else "",
             f"answered {100 * per['answered']:+.3f} points" if "answered" in per else ""]
    c.print("cost per added instrument (least-squares slope): " + ", ".join(p for p in parts if p))
    if "tick_to_order_p50_ratio" in per:
        r = per["tick_to_order_p50_ratio"]
        c.print(f"tick-to-order P50 at {r['of']} instruments: x{r['value']:.2f} (target <= "
                f"{r['target']:g}: {'met' if r['value'] <= r['target'] else 'NOT met'})")
