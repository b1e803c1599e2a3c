"""Ring demo: two processes pass records through a ring, with checksums, and report.

    python -m bench.ring_demo [--records N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import bench  # noqa: F401  (puts the repository root, for tests.support, on the path)
from tests.support.ring_exercise import run_pair, warm


def main(records: int) -> int:
    warm()
    instance = f"demo{os.getpid()}"
    print(f"{'face':8} {'policy':7} {'idle':10} {'records':>10} {'dropped':>8} {'p50 us':>8} "
          f"{'p99 us':>8} {'s':>6}")
    ok = True
    for face in ("numba", "python"):
        for policy in ("block", "drop"):
            t = time.monotonic()
            n = records if face == "numba" else records // 10
            r = run_pair(instance, n, 256, policy, "park", face=face)
            lat = r.get("lat", np.zeros(1))
            good = r.get("bad", 1) == 0 and r.get("disorder", 1) == 0 and \
                r.get("received", 0) + r["stats"]["dropped"] == n
            ok &= good
            print(f"{face:8} {policy:7} {'park':10} {r.get('received', 0):>10} "
                  f"{r['stats']['dropped']:>8} {np.percentile(lat, 50) / 1e3:8.2f} "
                  f"{np.percentile(lat, 99) / 1e3:8.2f} {time.monotonic() - t:6.2f}"
                  f"{'' if good else '  FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.ring_demo")
    p.add_argument("--records", type=int, default=1_000_000)
    sys.exit(main(p.parse_args().records))
