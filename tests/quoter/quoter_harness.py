"""Test helpers: drive the numba model (and optionally the Python reference) with the same
events, and a toy venue that acks, fills and cancels the orders the intents describe."""
from __future__ import annotations

import random

from engine.quoter import model
from engine.quoter.layout import G_MAX_DRAWDOWN
from engine.quoter.reference import INTENT_FIELDS, ReferenceQuoter
from engine.quoter.state import QuoterState
from engine.records import (
    ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, FILL_ACK, FILL_CANCELED,
    FILL_REJECT, FILL_TRADE, SIDE_BUY,
)

FIELDS = list(INTENT_FIELDS)


class Harness:
    """One quoter under test. `end_batch` returns the intents of a requote pass as tuples and,
    with a reference, asserts both implementations produced exactly the same."""

    def __init__(self, q, instruments, with_reference: bool = True, first_id: int = 1):
        self.st = QuoterState(q, instruments, first_id=first_id)
        self.ref = (ReferenceQuoter(q, instruments, first_id, int(self.st.g[G_MAX_DRAWDOWN]))
                    if with_reference else None)
        self.passes = 0

    def md(self, rec, now: int) -> None:
        args = (int(rec["instrument"]), int(rec["kind"]), int(rec["update_id"]),
                int(rec["bid_px"]), int(rec["bid_qty"]), int(rec["ask_px"]), int(rec["ask_qty"]),
                int(rec["ts_arrival"]), int(rec["ts_published"]), now)
        model.on_md(self.st.inst, self.st.par, self.st.cnt, *args)
        if self.ref:
            self.ref.on_md(*args)

    def fill(self, i, kind, order_id=0, side=0, price=0, qty=0, leaves=0) -> None:
        st = self.st
        model.on_fill(st.inst, st.quotes, st.g, st.cnt, i, kind, order_id, side, price, qty, leaves)
        if self.ref:
            self.ref.on_fill(i, kind, order_id, side, price, qty, leaves)

    def timers(self, now: int) -> None:
        model.check_timers(self.st.inst, self.st.quotes, self.st.par, now)
        if self.ref:
            self.ref.check_timers(now)

    def end_batch(self, now: int) -> list[tuple]:
        st = self.st
        n = model.requote_dirty(*st.args, now, st.out, 0)
        got = st.out[:n][FIELDS].tolist()
        self.passes += 1
        if self.ref:
            want = self.ref.requote_dirty(now)
            assert got == want, f"pass {self.passes} at {now}: numba {got} != reference {want}"
        return got

    def kill(self, reason: int, now: int) -> list[tuple]:
        st = self.st
        n = model.kill_all(st.quotes, st.g, st.cnt, st.out, 0, reason, now)
        got = st.out[:n][FIELDS].tolist()
        if self.ref:
            assert got == self.ref.kill(reason, now)
        return got


class ToyVenue:
    """Orders as the intents describe them; `event()` picks something the venue would report.
    With `cancel_races`, orders being canceled may still fill (as on a real venue)."""

    def __init__(self, rng: random.Random, cancel_races: bool = True):
        self.rng = rng
        self.cancel_races = cancel_races
        # id -> [instrument, side, price, leaves, acked, canceling]
        self.orders: dict[int, list] = {}
        self.replaced: list[tuple[int, int]] = []

    def apply(self, intents: list[tuple]) -> None:
        for it in intents:
            oid, orig, inst, action, side, _, _, price, qty = it[:9]
            if action == ACTION_NEW:
                self.orders[oid] = [inst, side, price, qty, False, False]
            elif action == ACTION_REPLACE:
                self.orders.pop(orig, None)
                self.replaced.append((inst, orig))
                self.orders[oid] = [inst, side, price, qty, False, False]
            elif action == ACTION_CANCEL:
                if orig in self.orders:
                    if self.cancel_races:
                        self.orders[orig][5] = True
                    else:                           # the venue cancels at once
                        self.orders.pop(orig)
                        self.replaced.append((inst, orig))
            elif action == ACTION_CANCEL_ALL:
                self.orders.clear()

    def event(self):
        """(instrument, kind, order_id, side, price, qty, leaves) or None."""
        rng = self.rng
        if self.replaced and rng.random() < 0.3:
            inst, oid = self.replaced.pop(rng.randrange(len(self.replaced)))
            return inst, FILL_CANCELED, oid, 0, 0, 0, 0
        if not self.orders:
            return None
        oid = rng.choice(list(self.orders))
        inst, side, price, leaves, acked, canceling = self.orders[oid]
        if canceling and rng.random() < 0.8:
            del self.orders[oid]
            return inst, FILL_CANCELED, oid, 0, 0, 0, 0
        if not acked and not canceling:
            if rng.random() < 0.05:
                del self.orders[oid]
                return inst, FILL_REJECT, oid, side, 0, 0, 0
            self.orders[oid][4] = True
            return inst, FILL_ACK, oid, side, price, 0, leaves
        qty = leaves if rng.random() < 0.6 else max(1, leaves // 2)
        left = leaves - qty
        if left == 0:
            del self.orders[oid]
        else:
            self.orders[oid][3] = left
        return inst, FILL_TRADE, oid, side, price, qty, left


def signed(side: int, qty: int) -> int:
    return qty if side == SIDE_BUY else -qty
