"""Chaos soak (issue 22): an instance run the systemd way (tests/support/units.py: one process per
unit, restarted 0.3 s after it fails) against the simulator for --minutes, every process killed
with SIGKILL once (the journal agent, the sender, the quoter, the feed, spread evenly over the
run), then stopped. Judged from outside:
  - the journal against the venue's own trade list: fills missing, fills doubled, fills the
    venue's list never confirmed (target: 0, 0, 0);
  - orders left resting at the venue after the stop (target: 0);
and what a trader reads from it: `mm journal pnl` and the report PNG (journal.png).

    python -m bench.soak [--minutes 10] [--rate 100] [--seed 41] [--out DIR]

Exit status 0 when every target is met, 1 otherwise. A long run of real processes: it is a tool,
not part of `make test` (tests/journal/test_journal_equals_venue.py kills each process once in
a short run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNITS = ("journal-agent", "sender", "quoter", "feed")


def _log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def soak(minutes: float, rate: int, seed: int, out: Path) -> dict:
    """Run the soak; returns its findings (the `targets` entry says which were met)."""
    from engine.instruments import DEFAULT_INSTRUMENTS
    from engine.journal import report as journal_report
    from tests.support.sim_thread import SimThread
    from tests.support.units import (TRADING, Units, journal_fills, running, unit_config,
                                     venue_fills, wait_until)

    out.mkdir(parents=True, exist_ok=True)
    instance = f"soak{os.getpid()}"
    path = out / "journal.sqlite"
    cfg = out / "mm.toml"
    cfg.write_text(unit_config("soak", path, "reconcile_interval_s = 10.0"))
    kills = []
    with SimThread(event_rate=rate, seed=seed) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance, "MM_STATE_DIR": str(out / "state")}
        units = Units(env, str(cfg), out, UNITS)
        units.start()
        t0 = time.monotonic()
        try:
            for u in UNITS:
                units.start_unit(u)
            wait_until(lambda: running(instance, ("journal", *TRADING)), 120, "all running")
            _log(f"running: instance {instance}, simulator at {rate} book events/s, "
                 f"{minutes:g} min, one SIGKILL of each of {', '.join(UNITS)}")
            span = minutes * 60
            for k, unit in enumerate(UNITS):
                at = t0 + span * (k + 1) / (len(UNITS) + 1)
                time.sleep(max(0.0, at - time.monotonic()))
                before = len(sim.my_trades())
                units.kill(unit)
                role = "journal" if unit == "journal-agent" else unit
                back = time.monotonic()
                wait_until(lambda: units.starts[unit] == 2 and
                           running(instance, (role, *TRADING)), 120, f"the {unit} back")
                kills.append({"unit": unit, "at_s": round(back - t0, 1),
                              "back_after_s": round(time.monotonic() - back, 2),
                              "venue_fills_before": before})
                _log(f"killed {unit} at {back - t0:.0f} s; running again after "
                     f"{time.monotonic() - back:.1f} s")
            time.sleep(max(0.0, t0 + span - time.monotonic()))
        finally:
            codes = units.stop_all()
        _log(f"stopped: exit statuses {codes}")
        venue = venue_fills(sim)
        resting = sim.open_orders()
        stats = sim.stats()
    try:
        journal, rows, _ = journal_fills(path)
        unconfirmed = 0
    except AssertionError as e:                 # doubled or unconfirmed: count them instead
        _log(f"journal check: {e}")
        from engine.journal.schema import open_journal
        con = open_journal(path, readonly=True)
        rows = con.execute("SELECT symbol, trade_id, venue_order_id, side, price, qty, source, "
                           "confirmed FROM fills").fetchall()
        con.close()
        journal = {r[:6] for r in rows}
        unconfirmed = sum(1 for r in rows if r[7] != 1)
    keys = [r[:3] for r in rows]
    found = {
        "minutes": minutes, "rate": rate, "seed": seed, "kills": kills, "exit_statuses": codes,
        "venue_fills": len(venue), "journal_fills": len(rows),
        "from_reports": sum(r[6] == "report" for r in rows),
        "from_venue_list": sum(r[6] == "mytrades" for r in rows),
        "missing": len(venue - journal), "extra": len(journal - venue),
        "doubled": len(keys) - len(set(keys)), "unconfirmed": unconfirmed,
        "resting_after_stop": len(resting), "venue_stats": stats,
    }
    found["targets"] = {"no fill missing": found["missing"] == 0,
                        "no fill doubled or foreign": found["doubled"] == 0 and found["extra"] == 0,
                        "every fill confirmed": unconfirmed == 0,
                        "nothing resting after the stop": not resting}
    sec = journal_report.section(path, DEFAULT_INSTRUMENTS)
    png = journal_report.plot(out, sec)
    found["png"] = str(png) if png else None
    pnl = subprocess.run([sys.executable, "-m", "engine.cli", "journal", "pnl", "--config",
                          str(cfg)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MM_INSTANCE": instance})
    found["journal_pnl"] = pnl.stdout + pnl.stderr
    (out / "soak.json").write_text(json.dumps(found, indent=2, default=str))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=100, help="the simulator's book events/s")
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--out", type=Path, default=None, help="where the run's files go")
    a = ap.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="mm-soak-"))
    f = soak(a.minutes, a.rate, a.seed, out)
    print(f"\nvenue fills {f['venue_fills']}, journal fills {f['journal_fills']} "
          f"({f['from_reports']} from execution reports, {f['from_venue_list']} from the venue's "
          f"trade list); missing {f['missing']}, doubled {f['doubled']}, foreign {f['extra']}, "
          f"unconfirmed {f['unconfirmed']}; orders resting after the stop "
          f"{f['resting_after_stop']}")
    for k in f["kills"]:
        print(f"  SIGKILL {k['unit']} at {k['at_s']} s: running again after {k['back_after_s']} s")
    print("\nmm journal pnl:\n" + f["journal_pnl"])
    print(f"report PNG: {f['png']}\nfiles: {out}")
    met = all(f["targets"].values())
    print("targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}"
                                  for k, v in f["targets"].items()))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
