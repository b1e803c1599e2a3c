"""Run every benchmark (or --only some), print their tables, save results under bench/results."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

# name -> module in bench/; each has main(args) -> dict and prints its own table.
BENCHES = ("ring", "feed_decode", "feed_pipeline", "quoter", "sender", "sim", "e2e", "backtest")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--only", action="append", choices=BENCHES)
    p.add_argument("--quick", action="store_true", help="smaller sample counts")
    args = p.parse_args(argv)
    out_dir = Path("bench/results")
    out_dir.mkdir(parents=True, exist_ok=True)
    results, failed = {}, []
    for name in args.only or BENCHES:
        try:
            mod = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as e:
            print(f"\n[{name}] not available: {e}")
            continue
        t = time.monotonic()
        try:
            results[name] = mod.main(args)
        except Exception as e:  # one broken benchmark must not hide the others
            failed.append(name)
            print(f"\n[{name}] FAILED: {e!r}")
        print(f"[{name}] {time.monotonic() - t:.1f} s")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(results, indent=1, default=_plain))
    print(f"\nresults saved to {out_dir}/bench-{stamp}.json")
    return 1 if failed else 0


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
