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
           "backtest")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--only", action="append", default=[],
                   help=f"bench(es) to run, repeatable or comma-separated: {', '.join(BENCHES)}")
    p.add_argument("--quick", action="store_true", help="smaller sample counts, shorter phases")
    p.add_argument("--out", default=None, help="results directory (default bench/results/<time>)")
    e = p.add_argument_group("end to end (e2e)")
    e.add_argument("--e2e-rates", help="paced book events/s, comma-separated (500,2000,5000,10000)")
    e.add_argument("--e2e-saturation", help="engine-only rates past them ('' for none)")
    e.add_argument("--e2e-phase", type=float, help="measured seconds per rate (4; quick 1)")
    e.add_argument("--e2e-repeats", type=int, help="rounds of every contender (3; quick 1)")
    e.add_argument("--e2e-contenders", help="engine,asyncio,mpqueue,reflex (all)")
    e.add_argument("--e2e-engine-set", action="append", metavar="SECTION.KEY=VALUE",
                   help="a setting of the engine's config (e.g. quoter.warm_us=2000), for A/B "
                        "runs; repeatable")
    e.add_argument("--e2e-venue-cpu", type=int,
                   help="pin the simulator to this core (default -1: not pinned)")
    a = p.parse_args(argv)
    only = [n.strip() for item in a.only for n in item.split(",") if n.strip()]
    bad = [n for n in only if n not in BENCHES]
    if bad:
        p.error(f"--only: unknown bench {', '.join(bad)}; expected some of {', '.join(BENCHES)}")
    a.only = only
    return a


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def main(argv=None) -> int:
    args = parse(argv)
    out_dir = Path(args.out or f"bench/results/{time.strftime('%Y%m%d-%H%M%S')}")
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
