"""Test helpers: drive the numba model (and optionally the Python reference) with the same
events, and a toy venue that acks, fills and cancels the orders the intents describe."""
from __future__ import annotations

import random

from engine.quoter import model
from engine.quoter.arrays import G_MAX_DRAWDOWN, G_WALL_OFFSET
from tests.support.quoter_reference import INTENT_FIELDS, ReferenceQuoter
from engine.quoter.state import QuoterState
from engine.records import (
    ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, FILL_ACK, FILL_CANCEL_REJECT,
    FILL_CANCELED, FILL_REJECT, FILL_RESET, FILL_TRADE, FILL_UNKNOWN, SIDE_BUY,
)

FIELDS = list(INTENT_FIELDS)


class Harness:
    """One quoter under test. `end_batch` returns the intents of a requote pass as tuples and,
    with a reference, asserts both implementations produced exactly the same."""

    def __init__(self, q, instruments, with_reference: bool = True, first_id: int = 1):
        self.st = QuoterState(q, instruments, first_id=first_id)
        self.st.g[G_WALL_OFFSET] = 1_700_000_000_000_000_000     # a fixed wall clock
        self.ref = (ReferenceQuoter(q, instruments, first_id, int(self.st.g[G_MAX_DRAWDOWN]),
                                    int(self.st.g[G_WALL_OFFSET]))
                    if with_reference else None)
        self.passes = 0
        self.now = 0                  # the latest time given: fills happen "now"

    def md(self, rec, now: int) -> None:
        """Read `rec` at `now`. Its stamps are moved onto the test's clock: it arrived 0-0.5 ms
        before now (the lag taken from its own stamp, so a batch's oldest tick varies), and was
        published 1 us after it arrived; a record without stamps keeps none."""
        self.now = now
        arrival = int(rec["ts_arrival"])
        if arrival:
            arrival = now - arrival % 500_000
        args = (int(rec["instrument"]), int(rec["kind"]), int(rec["update_id"]),
                int(rec["bid_px"]), int(rec["bid_qty"]), int(rec["ask_px"]), int(rec["ask_qty"]),
                arrival, arrival + 1_000 if arrival else int(rec["ts_published"]), now)
        model.on_md(self.st.arrays, *args)
        if self.ref:
            self.ref.on_md(*args)

    def fill(self, i, kind, order_id=0, side=0, price=0, qty=0, leaves=0, code=0) -> None:
        st = self.st
        model.on_fill(st.arrays, i, kind, order_id, side, price, qty, leaves, code, self.now)
        if self.ref:
            self.ref.on_fill(i, kind, order_id, side, price, qty, leaves, code, self.now)

    def timers(self, now: int) -> None:
        self.now = now
        st = self.st
        model.check_timers(st.inst, st.quotes, st.par, st.sst, st.spar, now)
        if self.ref:
            self.ref.check_timers(now)

    def end_batch(self, now: int) -> list[tuple]:
        self.now = now
        st = self.st
        n = model.ack_reset(st.g, st.out, 0, now)     # as the loop: ahead of the pass
        n = model.requote_dirty(st.arrays, st.want, now, st.out, n)
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
    """Orders as the intents describe them; `event()` picks something the venue (through the
    sender) would report, in the order the sender promises (engine/sender/order_state.py):
    acks, partial and full fills, cancels that race fills, refused cancels and replaces,
    outcomes first unknown and resolved later, local refusals, and now and then a reset.
    Events are (instrument, kind, order_id, side, price, qty, leaves, code)."""

    def __init__(self, rng: random.Random, cancel_races: bool = True, chaos: bool = True):
        self.rng = rng
        self.cancel_races = cancel_races
        self.chaos = chaos
        # id -> [instrument, side, price, leaves, acked, canceling]
        self.orders: dict[int, list] = {}
        self.groups: list[list[tuple]] = []      # event sequences emitted in order

    def _ev(self, oid, kind, code=0):
        inst, side, price, leaves = self.orders[oid][:4]
        return inst, kind, oid, side, price, 0, leaves, code

    def apply(self, intents: list[tuple]) -> None:
        rng = self.rng
        for it in intents:
            oid, orig, inst, action, side, _, _, price, qty = it[:9]
            if action == ACTION_NEW:
                self.orders[oid] = [inst, side, price, qty, False, False]
            elif action == ACTION_REPLACE:
                r = rng.random() if self.chaos else 1.0
                self.orders[oid] = [inst, side, price, qty, False, False]
                if orig not in self.orders:          # the old one ended first: refused
                    self.groups.append([self._ev(oid, FILL_REJECT, -90004)])
                    del self.orders[oid]
                elif r < 0.06:                         # cancel leg refused: old rests
                    code = rng.choice((-1021, -90001))
                    self.groups.append([self._ev(orig, FILL_CANCEL_REJECT, code),
                                        self._ev(oid, FILL_REJECT, code)])
                    del self.orders[oid]
                elif r < 0.09:                         # nobody knows; asked, then settled
                    g = [self._ev(orig, FILL_UNKNOWN), self._ev(oid, FILL_UNKNOWN)]
                    if rng.random() < 0.5:
                        g += [(inst, FILL_CANCELED, orig, 0, 0, 0, 0, 0),
                              self._ev(oid, FILL_ACK)]
                        self.orders[oid][4] = True
                        del self.orders[orig]
                    else:
                        g += [self._ev(oid, FILL_REJECT, -2013), self._ev(orig, FILL_ACK)]
                        del self.orders[oid]
                    self.groups.append(g)
                else:
                    self.groups.append([(inst, FILL_CANCELED, orig, 0, 0, 0, 0, 0)])
                    del self.orders[orig]
            elif action == ACTION_CANCEL:
                if orig in self.orders:
                    r = rng.random() if self.chaos else 1.0
                    if r < 0.05:
                        self.groups.append([self._ev(orig, FILL_CANCEL_REJECT, -1021)])
                    elif r < 0.08:
                        self.groups.append([self._ev(orig, FILL_UNKNOWN),
                                            (inst, FILL_CANCELED, orig, 0, 0, 0, 0, 0)])
                        del self.orders[orig]
                    elif self.cancel_races:
                        self.orders[orig][5] = True
                    else:                           # the venue cancels at once
                        self.orders.pop(orig)
                        self.groups.append([(inst, FILL_CANCELED, orig, 0, 0, 0, 0, 0)])
            elif action == ACTION_CANCEL_ALL:
                self.orders.clear()
                self.groups.clear()

    def event(self):
        """(instrument, kind, order_id, side, price, qty, leaves, code) or None."""
        rng = self.rng
        if self.chaos and rng.random() < 0.0005:
            self.orders.clear()
            self.groups.clear()
            return 0, FILL_RESET, 0, 0, 0, 0, 0, 0
        if self.groups and rng.random() < 0.4:
            g = self.groups[rng.randrange(len(self.groups))]
            ev = g.pop(0)
            if not g:
                self.groups.remove(g)
            return ev
        if not self.orders:
            return None
        oid = rng.choice(list(self.orders))
        inst, side, price, leaves, acked, canceling = self.orders[oid]
        if canceling and rng.random() < 0.8:
            del self.orders[oid]
            return inst, FILL_CANCELED, oid, 0, 0, 0, 0, 0
        if not acked and not canceling:
            if rng.random() < 0.05:
                del self.orders[oid]
                return inst, FILL_REJECT, oid, side, 0, 0, 0, -2010
            self.orders[oid][4] = True
            return inst, FILL_ACK, oid, side, price, 0, leaves, 0
        qty = leaves if rng.random() < 0.6 else max(1, leaves // 2)
        left = leaves - qty
        if left == 0:
            del self.orders[oid]
        else:
            self.orders[oid][3] = left
        return inst, FILL_TRADE, oid, side, price, qty, left, 0


def signed(side: int, qty: int) -> int:
    return qty if side == SIDE_BUY else -qty
