"""`mm status`: a live terminal view of a running instance (rich)."""
from __future__ import annotations

import sys
import time

from engine import units
from engine.monitor import HOP_QS, InstanceView
from engine.ring.segment import SegmentError



def render(snap: dict):
    from rich.console import Group
    from rich.table import Table

    title = f"instance {snap['instance']}  kill switch: " + (
        f"[bold red]ON ({snap['kill']})[/]" if snap["kill"] else "[green]off[/]")
    procs = Table(title=title, expand=True)
    for col in ("process", "pid", "state", "core", "heartbeat age"):
        procs.add_column(col)
    for p in snap["processes"]:
        age = p["heartbeat_age_ns"]
        style = "red" if not p["alive"] or age > 1e9 else ""
        procs.add_row(p["role"], str(p["pid"]), p["state"] + ("" if p["alive"] else " (dead)"),
                      str(p["core"]) if p["core"] >= 0 else "-",
                      f"{age / 1e6:.0f} ms" if age >= 0 else "-", style=style)
    rings = Table(title="rings", expand=True)
    for col in ("ring", "depth", "msgs/s", "written", "dropped", "blocked", "parks", "wakes"):
        rings.add_column(col, justify="right")
    for name, st in snap["rings"].items():
        rings.add_row(name, str(st["depth"]), f"{st['rate']:.0f}", str(st["written"]),
                      str(st["dropped"]), str(st["blocked"]), str(st["parks"]), str(st["wakes"]))
    info = snap.get("info")
    ceiling_us = info.latency_ceiling_us if info is not None else units.DEFAULT_LATENCY_CEILING_US
    hops = Table(title=f"hops (microseconds; [red]red[/] above the {ceiling_us} us ceiling)",
                 expand=True)
    hops.add_column("hop")
    hops.add_column("count", justify="right")
    for q in HOP_QS:
        hops.add_column(f"P{q:g}", justify="right")
    for name, h in snap["hops"].items():
        hops.add_row(name, str(h["count"]), *(
            f"[bold red]{h[q] / 1e3:.1f}[/]" if h[q] > ceiling_us * 1e3 else f"{h[q] / 1e3:.1f}"
            for q in HOP_QS))
    trading = Table(title="trading", expand=True, show_header=False)
    trading.add_column("what")
    quoter = snap["counters"].get("quoter", {})
    if info is not None:
        for line in units.trading_lines(quoter, info.instruments,
                                        snap["counters"].get("supervisor")):
            trading.add_row(line)
    else:
        trading.add_row("instrument table not published yet: positions in raw units below")
    counters = Table(title="counters", expand=True)
    counters.add_column("process")
    counters.add_column("values")
    for role, c in snap["counters"].items():
        shown = units.plain(c) if info is not None else c
        if shown and role != "supervisor":
            counters.add_row(role, "  ".join(f"{k}={v}" for k, v in shown.items()))
    return Group(procs, rings, hops, trading, counters)


def main(instance: str, once: bool = False, interval_s: float = 0.5) -> int:
    from rich.console import Console
    from rich.live import Live

    try:
        view = InstanceView(instance)
    except SegmentError as e:
        print(f"mm status: instance {instance!r} is not running ({e})", file=sys.stderr)
        return 1
    console = Console()
    try:
        if once:
            view.snapshot()            # rates need two looks
            time.sleep(interval_s)
            console.print(render(view.snapshot()))
            return 0
        with Live(render(view.snapshot()), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(interval_s)
                live.update(render(view.snapshot()))
    except KeyboardInterrupt:
        return 0
    finally:
        view.close()
