"""`mm status`: what a running instance is doing, for people and for machines.

In a terminal: a live view (rich) that ends, with the reason, when the engine stops. Not in a
terminal (piped, redirected, under systemd), or with --once: one snapshot as plain lines.
With --json: one snapshot as a JSON object. The first line (or the `state` field) is the
instance's state: quoting, starting, pausing, paused, resuming, stopping or stopped.
Exit status: 0 a snapshot was printed or the live view saw the engine stop; 1 the instance is
not running.
"""
from __future__ import annotations

import json
import sys
import time

from engine import glossary, units
from engine.latency.reading import plain_hop, supported
from engine.monitor import HOP_QS, InstanceView
from engine.ring.segment import SegmentError



JOURNAL_EVERY_S = 5.0       # the day's figures are read from the journal this often at most
_today_cache: dict = {}


def today(info) -> list[str]:
    """The day's (UTC) fills, fees and PnL per symbol from the instance's journal, as lines;
    [] when there is no journal (yet)."""
    if info is None or not getattr(info, "journal", ""):
        return []
    now = time.monotonic()
    hit = _today_cache.get(info.journal)
    if hit is not None and now - hit[0] < JOURNAL_EVERY_S:
        return hit[1]
    from engine.journal import queries
    from engine.journal.schema import JournalError, open_journal

    midnight = time.time_ns() - time.time_ns() % 86_400_000_000_000
    try:
        con = open_journal(info.journal, readonly=True)
        try:
            t = queries.totals(con, info.instruments, midnight)
        finally:
            con.close()
        quote = {i.symbol: i.quote for i in info.instruments}
        lines = [f"today {sym}: {v['fills']} fills, fees {v['fees']:.6g} {quote.get(sym, '')}, "
                 f"realised {v['realised']:.6g}, marked {v['marked']:.6g}, net "
                 f"{v['net']:.6g} {quote.get(sym, '')}; position {v['position']:.8g}"
                 for sym, v in sorted(t.items())] or ["today: no fills"]
    except (JournalError, Exception) as e:      # status must never fail on the journal
        lines = [f"today: journal unreadable ({e})"]
    _today_cache[info.journal] = (now, lines)
    return lines


def render(snap: dict):
    from rich.console import Group
    from rich.table import Table

    title = (f"instance {snap['instance']}  [bold]{snap['state']}[/]: {snap['why']}  kill switch: "
             + (f"[bold red]ON ({snap['kill']})[/]" if snap["kill"] else "[green]off[/]"))
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
        hops.add_row(plain_hop(name), str(h["count"]), *(
            "-" if not supported(q, h["count"]) else
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
    for line in today(info):
        trading.add_row(line)
    counters = Table(title="counters", expand=True)
    counters.add_column("process")
    counters.add_column("values")
    for role, c in snap["counters"].items():
        shown = glossary.shown(role, units.plain(c) if info is not None else c)
        if shown and role != "supervisor":
            counters.add_row(role, "  ".join(f"{k}={v}" for k, v in shown.items()))
    return Group(procs, rings, hops, trading, counters)


def plain_lines(snap: dict) -> list[str]:
    """The snapshot as plain lines (no colour, no box drawing): what a log or a pipe gets."""
    info = snap.get("info")
    ceiling_us = info.latency_ceiling_us if info is not None else units.DEFAULT_LATENCY_CEILING_US
    lines = [f"instance {snap['instance']}: {snap['state']} ({snap['why']})",
             f"kill switch: {snap['kill'] or 'off'}; pause: {snap['pause'] or 'off'}"]
    for p in snap["processes"]:
        age = p["heartbeat_age_ns"]
        lines.append(f"process {p['role']}: pid {p['pid']} {p['state']}"
                     f"{'' if p['alive'] else ' (dead)'} core "
                     f"{p['core'] if p['core'] >= 0 else '-'} heartbeat "
                     f"{f'{age / 1e6:.0f} ms ago' if age >= 0 else '-'}")
    for name, st in snap["rings"].items():
        lines.append(f"ring {name}: depth {st['depth']} rate {st['rate']:.0f}/s written "
                     f"{st['written']} dropped {st['dropped']} blocked {st['blocked']}")
    for name, h in snap["hops"].items():
        qs = " ".join(f"P{q:g} {h[q] / 1e3:.1f}" + ("*" if h[q] > ceiling_us * 1e3 else "")
                      for q in HOP_QS if supported(q, h["count"])) or "too few samples"
        lines.append(f"hop {plain_hop(name)}: {h['count']} samples, {qs} us")
    if info is not None:
        for line in units.trading_lines(snap["counters"].get("quoter", {}), info.instruments,
                                        snap["counters"].get("supervisor")):
            lines.append(f"trading: {line}")
    for line in today(info):
        lines.append(f"trading: {line}")
    for role, c in snap["counters"].items():
        shown = glossary.shown(role, units.plain(c) if info is not None else c)
        if shown and role != "supervisor":
            lines.append(f"counters {role}: " + " ".join(f"{k}={v}" for k, v in shown.items()))
    lines.append("(what each counter means: mm report --explain, or the README's Counters)")
    return lines


def as_json(snap: dict) -> str:
    """The snapshot for machines: everything plain_lines shows, as one JSON object."""
    out = {k: v for k, v in snap.items() if k != "info"}
    info = snap.get("info")
    out["latency_ceiling_us"] = (info.latency_ceiling_us if info is not None
                                 else units.DEFAULT_LATENCY_CEILING_US)
    return json.dumps(out, default=str)


def main(instance: str, once: bool = False, interval_s: float = 0.5,
         json_out: bool = False) -> int:
    try:
        view = InstanceView(instance)
    except SegmentError as e:
        print(f"mm status: instance {instance!r} is not running ({e})", file=sys.stderr)
        return 1
    try:
        if once or json_out or not sys.stdout.isatty():
            view.snapshot()            # rates need two looks
            time.sleep(interval_s)
            snap = view.snapshot()
            print(as_json(snap) if json_out else "\n".join(plain_lines(snap)))
            return 0
        return _live(view, interval_s)
    except KeyboardInterrupt:
        return 0
    finally:
        view.close()


def _live(view: InstanceView, interval_s: float) -> int:
    """The live view until the engine stops (then its last frame and why) or Ctrl-C."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    snap = view.snapshot()
    with Live(render(snap), console=console, refresh_per_second=4) as live:
        while snap["state"] != "stopped":
            time.sleep(interval_s)
            snap = view.snapshot()
            live.update(render(snap))
    console.print(f"engine stopped: {snap['why']}")
    return 0
