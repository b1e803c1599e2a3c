"""Intent rules, venue-neutral: the client order id, when a new order or replace may go
(refusal reasons: not connected, rate-limited, stopping, stale, before the quoter's
RESET_SEEN), local refusals and their ordering contract, cancels (deferred while the
connection cannot take them), the quoter's CANCEL_ALL, and the venue's permanent refusals.

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use and
supplies the venue's `send_cancel`.
"""
from __future__ import annotations

from engine import _native as C
from engine.records import ACTION_REPLACE, ALL_INSTRUMENTS, FILL_UNKNOWN
from engine.sender.fills import (LOCAL_BEFORE_RESET, LOCAL_NOT_CONNECTED, LOCAL_ORDER_BUSY,
                                 LOCAL_RATE_LIMITED, LOCAL_STALE_INTENT, LOCAL_STOPPING,
                                 LOCAL_UNKNOWN_ORDER)
from engine.sender.order_state import OPEN, PENDING_NEW, UNKNOWN

PERMANENT_STREAK = 5         # the same permanent refusal this many times in a row stops us


class IntentRules:
    """What may go out, what is refused, cancels and refusals (part of Gateway)."""

    def killed(self) -> bool:
        """The kill word, read with acquire before every new order (not from a cache)."""
        return self.kill_addr != 0 and C.load_acquire(self.kill_addr) != 0


    def cid_of(self, u: int, order_id: int) -> bytes:
        """The client order id `<tag>-<u>-<n>` (without u when it would pass 36 characters)."""
        cid = self._cid % (u, order_id)
        if len(cid) > 36:
            cid = self._cid % (0, order_id)
        return cid

    def refusal_reason(self, ts_pub: int, t_read: int) -> int:
        """0 when a NEW/REPLACE may go out now, else the LOCAL_* code it is refused with."""
        if not self.ready:
            return LOCAL_NOT_CONNECTED
        if self.blocked():
            return LOCAL_RATE_LIMITED
        if self.killed() or self.refusal or self.paused:
            return LOCAL_STOPPING
        if ts_pub and t_read - ts_pub > self.max_intent_age_ns:
            self.counts["stale_intents"] += 1
            return LOCAL_STALE_INTENT
        if self.awaiting_reset_seen:
            self.counts["before_reset"] += 1
            return LOCAL_BEFORE_RESET
        return 0

    def reset_seen(self, token: int) -> None:
        """The quoter's RESET_SEEN intent for the RESET carrying `token`: every intent after it
        was decided knowing our latest RESET, so new orders may go again (the echo of an
        earlier RESET, an older sender's or ours, changes nothing)."""
        if token == self.awaiting_reset_seen:
            self.awaiting_reset_seen = 0

    def refuse(self, f: tuple, code: int) -> None:
        """A NEW or REPLACE not sent: the quoter gets REJECT with a LOCAL_* code (for a
        replace, after the old order's truth: see _replace_not_sent)."""
        _seq, order_id, orig, inst, action, side, _l, _p, price, qty, u = f[:11]
        self.counts["local_rejects"] += 1
        if action == ACTION_REPLACE:
            old = self.orders.get(orig)
            if old is not None:
                self._replace_not_sent(old, code)
        o = self.orders.new(order_id, self.cid_of(u, order_id), inst, side, price, qty)
        self.orders.rejected(o, code)

    def replaceable(self, orig: int, order_id: int, cid: bytes, inst: int, side: int,
                    price: int, qty: int):
        """The OPEN order a REPLACE intent replaces, or None: it is gone already (its end
        reached the quoter first) or not settled (not acked yet, asked about, a cancel in
        flight), and the new order is refused locally after the old order's truth."""
        old = self.orders.get(orig)
        if old is not None and old.state == OPEN:
            return old
        if old is not None:
            self._replace_not_sent(old, LOCAL_ORDER_BUSY)
        o = self.orders.new(order_id, cid, inst, side, price, qty)
        self.orders.rejected(o, LOCAL_UNKNOWN_ORDER if old is None else LOCAL_ORDER_BUSY)
        self.counts["unknown_intents"] += 1
        return None

    def _replace_not_sent(self, old, code: int) -> None:
        """The quoter took `old` for canceling when it sent the REPLACE: before the new order's
        REJECT, say what `old` is (ordering contract, order_state.py), so its slot never holds
        it as canceling with no cancel in flight: OPEN or not acked yet, CANCEL_REJECT (it
        rests, or its ack or end comes); UNKNOWN, UNKNOWN again (the answer to the question
        ends it); CANCELING, nothing (that cancel's answer comes)."""
        if old.state == OPEN or old.state == PENDING_NEW:
            self.orders.cancel_refused(old, code)
        elif old.state == UNKNOWN:
            self.orders.sink.emit(FILL_UNKNOWN, old.order_id, old.instrument, old.side,
                                  old.price, 0, old.cum_qty, old.leaves, 0, 0)

    def cancel_intent(self, orig: int, order_id: int, *stamps: int) -> None:
        """A CANCEL intent: the live order it names (orig_order_id, else order_id) is canceled
        now, or after reconcile / back-off when the connection cannot take it (an unknown id
        is counted: the order already finished or was never sent)."""
        o = self.orders.get(orig or order_id)
        if o is None:
            self.counts["unknown_intents"] += 1
        elif not self.dry_run and (not self.ready or self.requests_blocked()):
            self.deferred_cancels.append(o.order_id)
        else:
            self.send_cancel(o, *stamps)

    def flush_deferred(self) -> None:
        """Send cancels held during an outage or back-off (after reconcile / when unblocked)."""
        held, self.deferred_cancels = self.deferred_cancels, []
        for target in held:
            o = self.orders.get(target)
            if o is not None and o.state in (PENDING_NEW, OPEN):
                self.send_cancel(o)

    def cancel_ours(self, inst: int) -> None:
        """The quoter's CANCEL_ALL: cancel every live order of ours on `inst` (or all)."""
        self.mark_stop_cancels()
        for o in list(self.orders.live.values()):
            if (inst == ALL_INSTRUMENTS or o.instrument == inst) and o.state in (PENDING_NEW,
                                                                                  OPEN):
                self.send_cancel(o)

    def mark_stop_cancels(self) -> None:
        """The stop began (the quoter's CANCEL_ALL or the safety net): count cancels from here."""
        if self._stop_cancel_base is None:
            self._stop_cancel_base = self.orders.counts["canceled"]

    def forget_stop_cancels(self) -> None:
        """The cancels counted so far were not the stop's (a pause's): count from the next."""
        self._stop_cancel_base = None

    @property
    def canceled_at_stop(self) -> int:
        base = self._stop_cancel_base
        return 0 if base is None else self.orders.counts["canceled"] - base


    def refused(self, code: int, permanent: bool, what: str) -> None:
        """Note a venue refusal; a permanent one repeated PERMANENT_STREAK times in a row (or an
        authentication refusal, at once) becomes `self.refusal`, which stops the engine."""
        if not permanent:
            self._refusal_streak = (0, 0)
            return
        last, n = self._refusal_streak
        n = n + 1 if last == code else 1
        self._refusal_streak = (code, n)
        if n >= PERMANENT_STREAK and not self.refusal:
            self.refusal = what

    def accepted_one(self) -> None:
        """A new order was accepted: whatever refusals came before were not permanent."""
        self._refusal_streak = (0, 0)
