"""The light venue's own CPU at a rate, streaming to the engine's two market connections and
nothing else (no orders): the share of one core its streaming takes, from its own getrusage.

    python -m bench.light_venue_cpu [--rate 5000] [--seconds 5] [--connections 2]
        [--batch-us 500]

The readers run in a child process (a websockets client per connection, discarding frames) so
their CPU is not the venue's. With orders, add what the contender's order rate costs: the e2e
bench prints the venue's share per rate in its box section, contenders' orders included.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.venue import Venue

_READERS = """
import sys, threading
from websockets.sync.client import connect
url, n = sys.argv[1], int(sys.argv[2])
def read():
    with connect(url, max_size=None) as ws:
        while True:
            ws.recv()
for _ in range(n):
    threading.Thread(target=read, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def measure(rate: float, seconds: float, connections: int, batch_us: float | None = None) -> dict:
    extra = ["--batch-us", str(batch_us)] if batch_us is not None else []
    venue = Venue.start(rate=rate, symbols=["BTCUSDT"], kind="light", extra_args=extra)
    readers = subprocess.Popen([sys.executable, "-c", _READERS,
                                venue.md_url + "/stream?streams=btcusdt@bookTicker",
                                str(connections)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        readers.stdout.readline()
        time.sleep(1.0)
        a = venue.mark()
        time.sleep(seconds)
        b = venue.mark()
    finally:
        readers.stdin.close()
        readers.kill()
        readers.wait()
        venue.stop()
    dt = (b["t_ns"] - a["t_ns"]) / 1e9
    return {"rate": rate, "connections": connections, "seconds": dt,
            "events_per_s": (b["stats"]["book_events"] - a["stats"]["book_events"]) / dt,
            "core_share": (b["stats"]["cpu_s"] - a["stats"]["cpu_s"]) / dt,
            "behind": b["stats"]["behind"] - a["stats"]["behind"],
            "slow_consumers_dropped": b["stats"]["slow_consumers_dropped"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.light_venue_cpu")
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--batch-us", type=float, default=None)
    a = p.parse_args(argv)
    r = measure(a.rate, a.seconds, a.connections, a.batch_us)
    print(f"light venue at {r['events_per_s']:,.0f} events/s to {r['connections']} "
          f"connection(s): {100 * r['core_share']:.1f}% of one core (its getrusage over "
          f"{r['seconds']:.1f} s; behind {r['behind']}, dropped {r['slow_consumers_dropped']})")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
