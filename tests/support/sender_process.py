"""Test and benchmark handles for the sender (never imported by the engine itself).

    with SenderProcess(cfg) as sp:          # `run(cfg)` in a child process
        q = QuoterEnd(cfg)                  # this process plays the quoter's ring ends
        q.new(order_id=1, update_id=7, instrument=0, side=SIDE_BUY, price=..., qty=...)
        q.wait_fill(lambda r: r["kind"] == FILL_ACK)
        sp.terminate(); assert sp.wait() == 0
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import msgspec
import numpy as np

from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ACTION_RESET_SEEN, ALL_INSTRUMENTS, FILL_DTYPE, FILL_RESET,
                            ORDER_DTYPE)
from engine.ring.table import FILLS, ORDERS

_CHILD = ("import os, sys, msgspec\n"
          "from engine.config import EngineConfig\n"
          "from engine.sender.process import run\n"
          "cfg = msgspec.json.decode(os.environ['MM_TEST_SENDER_CFG'].encode(), type=EngineConfig)\n"
          "sys.exit(run(cfg))\n")


class SenderProcess:
    """`engine.sender.process.run(cfg)` in a subprocess; stderr is captured to a file."""

    def __init__(self, cfg, env: dict | None = None, log_path: str | None = None):
        self.cfg = cfg
        self.env = {**os.environ, **(env or {}),
                    "MM_TEST_SENDER_CFG": msgspec.json.encode(cfg).decode()}
        self.log_path = log_path or f"/tmp/mm-sender-{cfg.instance}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SenderProcess":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self) -> "SenderProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


class QuoterEnd:
    """The quoter's ends of the rings: producer of intents, consumer of fills. Like the quoter,
    it answers a RESET it reads with RESET_SEEN (its token), unless `echo_reset` is False (the
    sender then refuses every new order)."""

    def __init__(self, cfg, echo_reset: bool = True):
        self.orders = ORDERS.open(cfg, "producer")
        self.fills = FILLS.open(cfg, "consumer")
        self.received: list[dict] = []
        self.echo_reset = echo_reset

    def intent(self, action: int, order_id: int, instrument: int = 0, side: int = 1,
               price: int = 0, qty: int = 0, orig_order_id: int = 0, update_id: int = 1,
               post_only: int = 1, age_ns: int = 0) -> None:
        rec = np.zeros(1, ORDER_DTYPE)
        now = time.perf_counter_ns()
        rec["order_id"], rec["orig_order_id"], rec["instrument"] = order_id, orig_order_id, instrument
        rec["action"], rec["side"], rec["post_only"] = action, side, post_only
        rec["price"], rec["qty"], rec["update_id"] = price, qty, update_id
        rec["ts_arrival"] = rec["ts_md_published"] = rec["ts_quoter_read"] = now
        rec["ts_published"] = time.perf_counter_ns() - age_ns
        if not self.orders.push(rec):
            raise RuntimeError("order ring refused the intent")

    def new(self, order_id, **kw):
        self.intent(ACTION_NEW, order_id, **kw)

    def replace(self, order_id, orig_order_id, **kw):
        self.intent(ACTION_REPLACE, order_id, orig_order_id=orig_order_id, **kw)

    def cancel(self, orig_order_id, **kw):
        self.intent(ACTION_CANCEL, 0, orig_order_id=orig_order_id, **kw)

    def cancel_all(self, instrument=0xFFFFFFFF):
        self.intent(ACTION_CANCEL_ALL, 0, instrument=instrument)

    def poll(self) -> list[dict]:
        out = []
        for r in self.fills.pop_many():
            out.append({n: int(r[n]) for n in FILL_DTYPE.names})
        self.fills.release()
        for r in out:
            if r["kind"] == FILL_RESET and self.echo_reset:
                self.intent(ACTION_RESET_SEEN, r["order_id"], instrument=ALL_INSTRUMENTS,
                            update_id=0, post_only=0)
        self.received.extend(out)
        return out

    def wait_fill(self, pred, timeout: float = 10.0) -> dict:
        """The first fill record (already received or arriving) matching `pred`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            self.poll()
            for r in self.received[seen:]:
                if pred(r):
                    return r
            seen = len(self.received)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching fill record within {timeout} s; "
                                   f"got {self.received}")
            time.sleep(0.005)

    def close(self) -> None:
        self.orders.close()
        self.fills.close()
