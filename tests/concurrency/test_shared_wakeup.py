"""One wake-up for everything a consumer waits on (MM_PARK_SHARED), and the book board.

Allowed outcomes, jcstress style:
  - a consumer parked on two rings with no timeout is woken by a publish on either of them:
    every one of 2 x 500 records, published one at a time with pauses, is received (a lost
    wake-up hangs the consumer and fails the test at its deadline);
  - a board reader sees either the previous or the next whole record of a slot, never a mix.
"""
import multiprocessing as mp
import time

import numpy as np
import pytest

from engine import _native as C
from engine.control import Control
from engine.records import FILL_DTYPE, MD_DTYPE
from engine.ring import Ring
from engine.ring.board import Board

N = 500


def _consumer(instance, q):
    ctl = Control.attach(instance)
    a = Ring.attach(instance, "a", FILL_DTYPE, role="consumer")
    b = Ring.attach(instance, "b", FILL_DTYPE, role="consumer")
    got = {"a": 0, "b": 0}
    q.put("ready")
    deadline = time.monotonic() + 60
    while got["a"] + got["b"] < 2 * N and time.monotonic() < deadline:
        for name, r in (("a", a), ("b", b)):
            got[name] += len(r.pop_many())
        a.release()
        b.release()
        if got["a"] + got["b"] < 2 * N:
            C.park_shared(ctl.wake_addr("quoter"), -1, a.hdr, b.hdr)    # no timeout
    q.put(got)


def test_a_consumer_parked_on_two_rings_wakes_for_either(instance):
    ctl = Control.create(instance)
    a = Ring.create(instance, "a", FILL_DTYPE, 64, "block", role="producer")
    b = Ring.create(instance, "b", FILL_DTYPE, 64, "block", role="producer")
    try:
        for r in (a, b):
            r.set_wake_target(ctl.wake_addr("quoter"))
        q = mp.get_context("spawn").Queue()
        p = mp.get_context("spawn").Process(target=_consumer, args=(instance, q))
        p.start()
        assert q.get(timeout=60) == "ready"
        rec = np.zeros(1, FILL_DTYPE)
        for k in range(N):
            (a if k % 3 else b).push(rec)
            time.sleep(0.0002)                       # the consumer parks between records
        for k in range(N):
            (b if k % 3 else a).push(rec)
            time.sleep(0.0002)
        got = q.get(timeout=60)
        p.join(10)
        assert got == {"a": N, "b": N}
        assert a.stats()["wakes"] + b.stats()["wakes"] > 0     # it really slept and was woken
    finally:
        for r in (a, b):
            r.close()
            r.unlink()
        ctl.close()
        ctl.unlink()


def _board_writer(instance, n):
    board = Board.open(instance, 2, MD_DTYPE)
    rec = np.zeros(1, MD_DTYPE)
    for k in range(1, n + 1):
        for f in ("update_id", "bid_px", "bid_qty", "ask_px", "ask_qty", "ts_arrival"):
            rec[f] = k
        board.put(k % 2, rec)
    board.close()


@pytest.mark.slow
def test_board_reads_are_never_torn(instance):
    board = Board.open(instance, 2, MD_DTYPE)
    try:
        assert board.get(0) is None
        n = 200_000
        p = mp.get_context("spawn").Process(target=_board_writer, args=(instance, n))
        p.start()
        seen = 0
        last = [0, 0]
        while p.is_alive() or seen == 0:
            for i in (0, 1):
                r = board.get(i)
                if r is None:
                    continue
                vals = {int(r[f][0]) for f in ("update_id", "bid_px", "bid_qty", "ask_px",
                                               "ask_qty", "ts_arrival")}
                assert len(vals) == 1, vals            # one whole record
                k = vals.pop()
                assert k % 2 == i and k >= last[i]     # newer or the same, never older
                last[i] = k
                seen += 1
        p.join(10)
        assert int(board.get(0)["update_id"][0]) == n              # the newest stays
        assert seen > 0
    finally:
        board.close()
        from engine.ring.segment import segment_name, unlink
        unlink(segment_name(instance, "board"))
