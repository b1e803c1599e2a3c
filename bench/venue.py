"""The venue of the end-to-end bench in a child process of its own, steered over its stdin while
contenders trade against it: the light venue (bench/light_venue.py, the default: pre-encoded
frames, timerfd pacing, kernel receive stamps) or the full simulator (this module's child:
tests/support/sim_thread.SimThread, niced and pinned like the one `mm run` embeds).

    venue = Venue.start(rate=500, symbols=["BTCUSDT"], kind="light")
    venue.set_rate(2000)
    mark = venue.mark()     # {"t_ns", "stats", "samples": wire-to-wire ns since the last mark}
    venue.stop()

Both children answer one JSON line per command line:
  {"op": "rate", "value": R}   book events per second (simulator: per symbol; light: in total)
  {"op": "mark"}               counters now and the wire-to-wire samples since the last mark
  {"op": "stop"} or EOF        stop the server and exit
Wire-to-wire is the venue's own clock: market frame written -> order frame received (the light
venue: the kernel's receive stamp; the simulator: its loop's, engine/sim/latency.py), matched
through the client order id `<tag>-<u>-<n>`.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import time

from engine.instruments import DEFAULT_INSTRUMENTS

# The order API must never be what limits a contender: every limit far above what a bench
# sends (Binance's real ORDERS limit is 50 per 10 s).
UNLIMITED = {"orders_per_10s": 10**9, "orders_per_day": 10**12, "weight_per_minute": 10**12}
TRADE_SHARE = 0.01            # market trade prints per book event (resting orders still fill)
REPLY_TIMEOUT_S = 30.0
KINDS = {"light": "bench.light_venue", "sim": "bench.venue"}   # --venue -> child module


class VenueError(RuntimeError):
    """The venue child did not start or stopped answering."""


class Venue:
    """Parent side of the venue child process."""

    def __init__(self, proc: subprocess.Popen, info: dict):
        self.proc = proc
        self.md_url: str = info["md_url"]
        self.api_url: str = info["api_url"]
        self.pid: int = proc.pid
        self.kind = "sim"

    @classmethod
    def start(cls, rate: float, symbols: list[str], nice: int = 0, cpu: int = -1,
              seed: int = 1, preexec_fn=None, log_path: str | None = None,
              env: dict | None = None, kind: str = "sim",
              extra_args: list[str] | None = None) -> "Venue":
        """Start the child (`kind`: a key of KINDS); its stderr (the server's log) goes to
        `log_path` when given. The simulator trusts the keys `env` names (MM_API_KEY..., else
        the demo pair); the light venue checks none."""
        if kind not in KINDS:
            raise ValueError(f"venue: expected one of {', '.join(KINDS)}, got {kind!r}")
        cmd = [sys.executable, "-m", KINDS[kind], "--rate", str(rate), "--nice", str(nice),
               "--cpu", str(cpu), "--seed", str(seed), "--symbols", ",".join(symbols),
               *(extra_args or [])]
        log = open(log_path, "w") if log_path else None
        try:
            # own session: a Ctrl-C on the terminal reaches the bench only, which stops the
            # contenders first (they cancel against this venue) and the venue last
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=log, text=True, env=env, start_new_session=True,
                                    preexec_fn=preexec_fn)
        finally:
            if log is not None:
                log.close()
        venue = cls(proc, {"md_url": "", "api_url": ""})
        venue.kind = kind
        try:
            info = venue._read()
        except VenueError:
            venue.stop()
            raise
        venue.md_url, venue.api_url = info["md_url"], info["api_url"]
        return venue

    def _read(self) -> dict:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(REPLY_TIMEOUT_S):
            raise VenueError(f"venue (pid {self.pid}) did not answer in {REPLY_TIMEOUT_S:g} s")
        line = self.proc.stdout.readline()
        if not line:
            raise VenueError(f"venue (pid {self.pid}) exited with status {self.proc.poll()}")
        return json.loads(line)

    def _call(self, op: str, **kw) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise VenueError(f"venue (pid {self.pid}) is gone") from None
        return self._read()

    def set_rate(self, per_s: float) -> None:
        self._call("rate", value=per_s)

    def mark(self) -> dict:
        return self._call("mark")

    def stop(self) -> int | None:
        """Stop the server (bounded: SIGTERM, then SIGKILL); returns the exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        from engine.supervisor.children import _stop as stop_process

        code = stop_process(self.proc, 10.0)
        self.proc.stdout.close()
        return code


# ---------------------------------------------------------------- the child
def _child(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.venue")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--nice", type=int, default=0)
    p.add_argument("--cpu", type=int, default=-1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--symbols", default="BTCUSDT")
    a = p.parse_args(argv)
    # before the server thread exists: on Linux niceness and affinity are per thread and
    # inherited by threads created afterwards
    if a.nice:
        os.nice(a.nice)
    if a.cpu >= 0:
        os.sched_setaffinity(0, {a.cpu})
    from tests.support.sim_thread import SimThread

    wanted = a.symbols.split(",")
    instruments = [i for i in DEFAULT_INSTRUMENTS if i.symbol in wanted]
    if len(instruments) != len(wanted):
        print(f"bench.venue: --symbols: unknown symbol in {wanted}", file=sys.stderr)
        return 2
    sim = SimThread(instruments, event_rate=a.rate, trade_rate=a.rate * TRADE_SHARE,
                    seed=a.seed, **UNLIMITED)
    sim.start()
    seen = 0
    try:
        _reply({"md_url": sim.md_url, "api_url": sim.api_url, "pid": os.getpid()})
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "rate":
                sim.set_event_rate(float(cmd["value"]))
                _reply({"ok": True})
            elif op == "mark":
                samples = sim.latency_samples(seen)
                seen += len(samples)
                _reply({"t_ns": time.perf_counter_ns(), "stats": sim.stats(),
                        "samples": samples})
            elif op == "stop":
                break
            else:
                _reply({"error": f"unknown op {op!r}"})
    finally:
        sim.stop()
    return 0


def _reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
