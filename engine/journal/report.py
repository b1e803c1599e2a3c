"""The journal's part of a run's report (`mm run`'s last words, `mm report`): PnL over time
(realised, marked, fees), inventory over time and the markout curve, as tables and one PNG
(journal.png beside latency.png). Positions in base units, PnL in the quote asset."""
from __future__ import annotations

import time
from pathlib import Path

from engine.journal import queries
from engine.journal.schema import JournalError, open_journal

ROWS = 12                    # time points in the tables


def section(path: Path, instruments, since_ns: int = 0) -> dict:
    """What the report shows from the journal at `path` since `since_ns` (epoch ns); {"error":
    ...} when it cannot be read."""
    try:
        con = open_journal(path, readonly=True)
    except JournalError as e:
        return {"path": str(path), "error": str(e)}
    try:
        pts = queries.series(con, instruments, since_ns)
        curve = queries.markout_curve(con, since_ns)
        nfills = len(pts)
        fees = {}
        for p in pts:
            fees[p["symbol"]] = p["fees"]
    finally:
        con.close()
    return {"path": str(path), "since_ns": since_ns, "fills": nfills, "series": pts,
            "table": _table(pts), "markouts": curve}


def _table(pts: list[dict]) -> list[dict]:
    """The series at ROWS evenly spaced times (the last point of each symbol up to each)."""
    if not pts:
        return []
    t0, t1 = pts[0]["ts_ns"], pts[-1]["ts_ns"]
    step = max((t1 - t0) // ROWS, 1)
    rows, last, k = [], {}, 0
    for j in range(1, ROWS + 1):
        edge = t0 + step * j if j < ROWS else t1
        while k < len(pts) and pts[k]["ts_ns"] <= edge:
            last[pts[k]["symbol"]] = pts[k]
            k += 1
        for sym in sorted(last):
            p = last[sym]
            rows.append({"time_ns": edge, "symbol": sym, "position": p["position"],
                         "realised": p["realised"], "marked": p["marked"], "fees": p["fees"],
                         "net": p["marked"] - p["fees"]})
    return rows


def _f(v, digits: int = 6) -> str:
    return "-" if v is None else f"{v:.{digits}f}".rstrip("0").rstrip(".")


def print_section(sec: dict) -> None:
    """The journal's tables as text."""
    if not sec:
        return
    if sec.get("error"):
        print(f"\njournal: {sec['error']}")
        return
    print(f"\njournal {sec['path']}: {sec['fills']} fills this run")
    if sec["table"]:
        print("PnL over time (quote asset; realised, marked = realised + open position at the "
              "latest mid, fees; net = marked - fees) and inventory (base units):")
        print(f"  {'time (UTC)':12} {'symbol':10} {'position':>12} {'realised':>12} "
              f"{'marked':>12} {'fees':>10} {'net':>12}")
        for r in sec["table"]:
            t = time.strftime("%H:%M:%S", time.gmtime(r["time_ns"] / 1e9))
            print(f"  {t:12} {r['symbol']:10} {_f(r['position']):>12} {_f(r['realised']):>12} "
                  f"{_f(r['marked']):>12} {_f(r['fees']):>10} {_f(r['net']):>12}")
    if any(c["fills"] for c in sec["markouts"]):
        print("markout curve (basis points of the fill price, side * (mid after - price) / "
              "price; adverse: below 0):")
        for c in sec["markouts"]:
            share = "-" if c["adverse_share"] is None else f"{c['adverse_share'] * 100:.0f}%"
            print(f"  +{c['horizon']:6} fills {c['fills']:>6}  mean {_f(c['mean'], 3):>8} bps  "
                  f"adverse {share}")


def plot(run_dir: Path, sec: dict) -> Path | None:
    """journal.png: PnL over time, inventory over time, the markout curve; None without
    matplotlib or fills."""
    if not sec or sec.get("error") or not sec.get("series"):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pts = sec["series"]
    t0 = pts[0]["ts_ns"]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.8))
    for sym in sorted({p["symbol"] for p in pts}):
        mine = [p for p in pts if p["symbol"] == sym]
        ts = [(p["ts_ns"] - t0) / 1e9 for p in mine]
        a1.step(ts, [p["realised"] for p in mine], where="post", label=f"{sym} realised")
        a1.step(ts, [p["marked"] for p in mine], where="post", label=f"{sym} marked")
        a1.step(ts, [-p["fees"] for p in mine], where="post", label=f"{sym} -fees",
                linestyle=":")
        a2.step(ts, [p["position"] for p in mine], where="post", label=sym)
    a1.set(title="PnL over time (quote asset)", xlabel="seconds since the first fill")
    a2.set(title="inventory (base units)", xlabel="seconds since the first fill")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    curve = [c for c in sec["markouts"] if c["fills"]]
    if curve:
        xs = [c["horizon_ms"] / 1000 for c in curve]
        a3.plot(xs, [c["mean"] for c in curve], marker="o")
        a3.set_xscale("log")
        a3.axhline(0, color="black", linewidth=0.8)
        for c, x in zip(curve, xs):
            a3.annotate(f"{c['adverse_share'] * 100:.0f}% adverse", (x, c["mean"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    a3.set(title="markout curve (bps of the fill price, all symbols)",
           xlabel="seconds after the fill")
    fig.tight_layout()
    out = Path(run_dir) / "journal.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
