"""Run every benchmark (or --only some), print their tables, save results under
bench/results/<timestamp>/ (results.json with every bench's figures; e2e/ with raw samples,
HdrHistogram files and plots).

    python -m bench [--quick] [--only e2e[,sim]] [--out DIR] [--e2e-* ...]
    make bench [QUICK=1] [ONLY=e2e]

SIGTERM is handled like Ctrl-C: the running bench stops what it started (engines the orderly
way), the results gathered so far are saved, and the exit status is 130.
"""
from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import time
from pathlib import Path

# name -> module in bench/; each has main(args) -> dict and prints its own table.
BENCHES = ("ring", "feed_decode", "feed_pipeline", "quoter", "sender", "journal", "sim", "e2e",
           "instruments", "backtest")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--only", action="append", default=[],
                   help=f"bench(es) to run, repeatable or comma-separated: {', '.join(BENCHES)}")
    p.add_argument("--quick", action="store_true", help="smaller sample counts, shorter phases")
    p.add_argument("--out", default=None, help="results directory (default bench/results/<time>)")
    p.add_argument("--venue", choices=("light", "sim"), default="light",
                   help="the end-to-end venue: light (bench/light_venue.py, default) or sim "
                        "(the full simulator, as mm run embeds it)")
    p.add_argument("--venue-batch-us", type=float,
                   help="light venue: book events due within this many us share one write "
                        "(default 500; 0: one wake-up and one write per event, exact spacing, "
                        "~26%% of a core at 5,000/s here instead of ~16%%)")
    p.add_argument("--against", metavar="REF",
                   help="A/B: the working tree's engine against the engine of this git ref, "
                        "interleaved round by round on one venue (the ref is built once under "
                        "bench/.against/<sha>); implies --only e2e unless --only says more")
    p.add_argument("--against-repo", metavar="PATH", help=argparse.SUPPRESS)  # tests: a clone
    p.add_argument("--against-set", action="append", metavar="SECTION.KEY=VALUE",
                   help="a setting for the ref's engine only (e.g. --against HEAD --against-set "
                        "sender.warm_us=0: one setting A/B on the same code); repeatable")
    i = p.add_argument_group("instruments (the engine at 1..200 instruments, same total rate)")
    i.add_argument("--instruments-counts", help="instrument counts, comma-separated (1,10,50,200)")
    i.add_argument("--instruments-rate", type=int, help="total book events/s (2000)")
    e = p.add_argument_group("end to end (e2e)")
    e.add_argument("--e2e-rates", help="paced book events/s, comma-separated (500,2000,5000,10000)")
    e.add_argument("--e2e-saturation", help="engine-only rates past them ('' for none)")
    e.add_argument("--e2e-phase", type=float, help="measured seconds per rate (4; quick 1)")
    e.add_argument("--e2e-repeats", type=int, help="rounds of every contender (3; quick 1)")
    e.add_argument("--e2e-contenders", help="engine,asyncio,mpqueue,reflex (all)")
    e.add_argument("--e2e-engine-set", action="append", metavar="SECTION.KEY=VALUE",
                   help="a setting of the engine's config (e.g. quoter.warm_us=2000), for A/B "
                        "runs; repeatable")
    e.add_argument("--e2e-baseline-wake-latency", type=int, metavar="US",
                   help="the CPU wake-up bound (PM QoS) held for the baselines' turns, as the "
                        "engine holds its own (default 0: idle CPUs poll; -1: the box's own)")
    e.add_argument("--e2e-venue-cpu", type=int,
                   help="pin the simulator to this core (default -1: not pinned)")
    a = p.parse_args(argv)
    only = [n.strip() for item in a.only for n in item.split(",") if n.strip()]
    bad = [n for n in only if n not in BENCHES]
    if bad:
        p.error(f"--only: unknown bench {', '.join(bad)}; expected some of {', '.join(BENCHES)}")
    a.only = only or (["e2e"] if a.against else [])
    return a


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def main(argv=None) -> int:
    args = parse(argv)
    # absolute: an --against ref runs from its own folder and is handed paths in this one
    out_dir = Path(args.out or f"bench/results/{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    args.out_dir = out_dir
    signal.signal(signal.SIGTERM, _interrupt)
    results, failed, status = {}, [], 0
    t_all = time.monotonic()
    try:
        for name in args.only or BENCHES:
            try:
                mod = importlib.import_module(f"bench.{name}")
            except ModuleNotFoundError as e:
                print(f"\n[{name}] not available: {e}")
                continue
            t = time.monotonic()
            try:
                results[name] = mod.main(args)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one broken benchmark must not hide the others
                failed.append(name)
                print(f"\n[{name}] FAILED: {e!r}")
            print(f"[{name}] {time.monotonic() - t:.1f} s")
    except KeyboardInterrupt as e:
        print(f"\ninterrupted ({e or 'Ctrl-C'}): saving what was measured")
        status = 130
    if args.against:
        results["against"] = (results.get("e2e") or {}).get("against") or {"ref": args.against}
    results["_run"] = {"argv": sys.argv[1:] if argv is None else argv, "failed": failed,
                       "interrupted": status == 130, "wall_s": time.monotonic() - t_all}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=_plain))
    print(f"\nresults saved to {out_dir}/ ({results['_run']['wall_s']:.0f} s)")
    return status or (1 if failed else 0)


def _plain(o):
    try:
        import numpy as np

        if isinstance(o, np.ndarray):
            return None  # raw samples are not kept in the summary
        if isinstance(o, np.generic):
            return o.item()
    except ImportError:
        pass
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
