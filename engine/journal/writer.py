"""The sender's side of the journal ring: one record per event, written in place, never
blocking. A full ring (no journal agent, or one that fell behind) drops the record and counts it
in `full`; the fills it carried come back from the venue's trade list (reconcile.py), and the
agent notes the gap (the ring's seq jumps).

Cost on the sender's hot path: one struct pack into the slot and one release store per event.
"""
from __future__ import annotations

from time import perf_counter_ns

from engine.records import (JE_EXEC_TRADE, JE_FILL_BASE, JOURNAL_COMMISSION_EXP)


def asset_word(asset: str | None) -> int:
    """Up to 8 ASCII bytes of an asset name as one integer (0: none)."""
    if not asset:
        return 0
    return int.from_bytes(asset.encode()[:8].ljust(8, b"\0"), "little")


def asset_text(word: int) -> str:
    return int(word).to_bytes(8, "little").rstrip(b"\0").decode(errors="replace")


def commission_units(text: str) -> int:
    """A commission string ("0.00001234") as a mantissa at JOURNAL_COMMISSION_EXP."""
    from decimal import Decimal

    return int(Decimal(text).scaleb(-JOURNAL_COMMISSION_EXP))


class JournalWriter:
    """Packs JOURNAL_DTYPE records into the journal ring (see the module docstring)."""

    __slots__ = ("ring", "_put", "_commit", "written", "full")

    def __init__(self, ring):
        self.ring = ring
        w = ring.writer()
        self._put, self._commit = w.put, w.commit
        self.written = 0
        self.full = 0               # records dropped because the ring was full

    def _emit(self, *fields) -> None:
        if self._put(perf_counter_ns(), *fields):
            self._commit()
            self.written += 1
        else:
            self.full += 1

    def request(self, kind: int, order_id: int, ref: int, instrument: int, side: int = 0,
                price: int = 0, qty: int = 0, update_id: int = 0) -> None:
        """A request on the wire (JE_REQ_*): ref = the replaced order, update_id = u of the
        client id."""
        # (inlined _emit: one Python call less per event)
        if self._put(perf_counter_ns(), 0, order_id, ref, update_id, 0, -1, price, qty, 0, 0,
                     0, 0, 0, instrument, kind, side, 0):
            self._commit()
            self.written += 1
        else:
            self.full += 1

    def fill_record(self, kind: int, order_id: int, instrument: int, side: int, price: int,
                    qty: int, cum_qty: int, leaves_qty: int, code: int, ts_venue: int) -> None:
        """A fill-ring record the sender emitted (kind: FILL_*)."""
        if self._put(perf_counter_ns(), ts_venue, order_id, 0, 0, 0, -1, price, qty, cum_qty,
                     leaves_qty, code, 0, 0, instrument, JE_FILL_BASE + kind, side, 0):
            self._commit()
            self.written += 1
        else:
            self.full += 1

    def exec_trade(self, order_id: int, venue_order_id: int, trade_id: int, instrument: int,
                   side: int, price: int, qty: int, cum_qty: int, commission: int, asset: int,
                   maker: int, ts_venue: int) -> None:
        """The venue's fill report (executionReport TRADE)."""
        self._emit(ts_venue, order_id, 0, 0, venue_order_id, trade_id, price, qty, cum_qty, 0,
                   0, commission, asset, instrument, JE_EXEC_TRADE, side, maker)

    def decision(self, kind: int, instrument: int = 0, order_id: int = 0, qty: int = 0,
                 code: int = 0, venue_order_id: int = 0) -> None:
        """A reconcile decision or a kill / pause / resume (JE_* 40..)."""
        self._emit(0, order_id, 0, 0, venue_order_id, -1, 0, qty, 0, 0, code, 0, 0, instrument,
                   kind, 0, 0)


class NoJournal:
    """The journal switched off (journal.enabled = false, dry runs): every call does nothing."""

    written = full = 0

    def request(self, *a, **k) -> None:
        pass

    fill_record = exec_trade = decision = request
