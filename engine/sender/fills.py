"""The sender's side of the fill ring: one FILL_DTYPE record per ack, fill, reject, cancel,
position snapshot or resume signal, written in place (claim, pack_into, commit).

The sender never blocks on this ring and never drops a record: when the ring is full (the
quoter is slow, or gone after a clean exit) records wait in order in a backlog that every
later emit and the sender's watch duty flush first.

Protocol for the quoter (kinds are engine.records FILL_*):
  FILL_ACK       order_id accepted by the venue (once per order, before any FILL_TRADE of it)
  FILL_TRADE     qty = this fill's qty, price = its price, cum_qty / leaves_qty after it
  FILL_REJECT    order_id refused; error_code = venue code (-2010, -2022, ...) or a LOCAL_* code
  FILL_CANCELED  order_id gone without further fills (canceled, expired, or confirmed absent:
                 "does not exist" twice, not_found_confirm_ms apart)
  FILL_POSITION  instrument's base-asset balance (free + locked) at the venue, qty at qty_exp
  FILL_RESUME    connected and reconciled: quoting may (re)start (after every POSITION batch)
  FILL_CANCEL_REJECT  the cancel of order_id did not happen; it rests with leaves_qty
  FILL_UNKNOWN   order_id's fate is being asked of the venue; its slot waits for the answer
  FILL_RESET     a new sender process: the quoter forgets every slot (the sender cancels what
                 the venue lists); order_id = a token the quoter echoes in its RESET_SEEN
                 intent, before which the sender places nothing (intents decided earlier
                 belong to the slots the RESET drops)
(engine/sender/order_state.py states when each is emitted.)
"""
from __future__ import annotations

import time
from collections import deque


# Local error codes (never used by a venue: Binance codes are > -10000, Bybit's are positive),
# in records.LOCAL_CODE_MIN..LOCAL_CODE_MAX: the quoter refunds their rate charge (not sent).
LOCAL_NOT_CONNECTED = -90001   # intent arrived while the order connection was down
LOCAL_RATE_LIMITED = -90002    # venue asked us to back off (429); intent not sent
LOCAL_STOPPING = -90003        # kill switch / shutdown in progress; intent not sent
LOCAL_UNKNOWN_ORDER = -90004   # replace/cancel of an order id the sender does not know
LOCAL_STALE_INTENT = -90006    # the intent was older than sender.max_intent_age_ms: not sent
LOCAL_ORDER_BUSY = -90007      # replace of an order whose state is not settled (not sent)
LOCAL_BEFORE_RESET = -90008    # decided before the quoter read this sender's RESET (not sent)


class FillWriter:
    """Packs fill records into the fill ring, in order; a full ring delays, never loses."""

    def __init__(self, ring):
        self.ring = ring
        self._writer = ring.writer()
        self.backlog: deque[tuple] = deque()
        self.delayed = 0            # records that had to wait in the backlog
        self.written = 0
        self.journal = None         # engine.journal.writer.JournalWriter: every record too

    def emit(self, kind: int, order_id: int, instrument: int, side: int = 0, price: int = 0,
             qty: int = 0, cum_qty: int = 0, leaves_qty: int = 0, error_code: int = 0,
             ts_venue: int = 0) -> bool:
        """Write and publish one record; True when it went to the ring now, False when it
        waits in the backlog (behind earlier waiting records)."""
        rec = (order_id, instrument, kind, side, price, qty, cum_qty, leaves_qty, error_code,
               ts_venue)
        if self.backlog and not self.flush():
            self.backlog.append(rec)
            self.delayed += 1
            sent = False
        elif not self._writer.put(*rec, time.perf_counter_ns()):
            self.backlog.append(rec)
            self.delayed += 1
            sent = False
        else:
            self.written += 1
            self._writer.commit()
            sent = True
        if self.journal is not None:         # after the quoter's copy: it is the one waited for
            self.journal.fill_record(kind, order_id, instrument, side, price, qty, cum_qty,
                                     leaves_qty, error_code, ts_venue)
        return sent

    def flush(self) -> bool:
        """Move waiting records into the ring; True when none is left waiting."""
        backlog, put = self.backlog, self._writer.put
        moved = 0
        while backlog and put(*backlog[0], time.perf_counter_ns()):
            backlog.popleft()
            moved += 1
        if moved:
            self.written += moved
            self._writer.commit()
        return not backlog
