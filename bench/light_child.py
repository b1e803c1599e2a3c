"""`python -m bench.light_venue`: the light venue as a child process of the bench, driven by
JSON lines on stdin (bench/venue.py's protocol), or standalone (--standalone)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench.light_venue import BATCH_US, LightVenue


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.light_venue")
    p.add_argument("--rate", type=float, required=True, help="total book events/s")
    p.add_argument("--nice", type=int, default=0)
    p.add_argument("--cpu", type=int, default=-1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--symbols", default="BTCUSDT")
    p.add_argument("--batch-us", type=float, default=BATCH_US,
                   help="wake up at most this often; events due meanwhile share a write (0: "
                        "one wake-up per event)")
    p.add_argument("--standalone", action="store_true",
                   help="print the URLs and serve until Ctrl-C (no control protocol)")
    a = p.parse_args(argv)
    if a.nice:
        os.nice(a.nice)
    if a.cpu >= 0:
        os.sched_setaffinity(0, {a.cpu})
    venue = LightVenue([s.strip() for s in a.symbols.split(",") if s.strip()], a.rate, a.seed,
                       batch_us=a.batch_us)
    if a.standalone:
        print(f"market {venue.md_url}  orders {venue.api_url}", flush=True)
        try:
            venue.run()
        except KeyboardInterrupt:
            pass
        finally:
            venue.close()
        return 0
    control = _Control(venue)
    venue.add_reader(sys.stdin.fileno(), control.on_input)
    control.reply({"md_url": venue.md_url, "api_url": venue.api_url, "pid": os.getpid()})
    try:
        venue.run()
    finally:
        venue.close()
    return 0


class _Control:
    """The bench's commands on stdin, one JSON line each (bench/venue.py's protocol)."""

    def __init__(self, venue: LightVenue):
        self.venue = venue
        self.buf = b""

    def on_input(self) -> None:
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.venue.stop()
            return
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.strip():
                self.command(json.loads(line))

    def command(self, cmd: dict) -> None:
        op, v = cmd.get("op"), self.venue
        if op == "rate":
            v.set_rate(float(cmd["value"]))
            self.reply({"ok": True})
        elif op == "mark":
            self.reply({"t_ns": time.perf_counter_ns(), "stats": v.all_stats(),
                        "samples": v.take_samples()})
        elif op == "stop":
            v.stop()
        else:
            self.reply({"error": f"unknown op {op!r}"})

    @staticmethod
    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
