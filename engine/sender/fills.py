"""The sender's side of the fill ring: one FILL_DTYPE record per ack, fill, reject, cancel,
position snapshot or resume signal, written in place (claim, pack_into, commit).

Protocol for the quoter (kinds are engine.records FILL_*):
  FILL_ACK       order_id accepted by the venue (once per order, before any FILL_TRADE of it)
  FILL_TRADE     qty = this fill's qty, price = its price, cum_qty / leaves_qty after it
  FILL_REJECT    order_id refused; error_code = venue code (-2010, -2022, ...) or a LOCAL_* code
  FILL_CANCELED  order_id gone without further fills (canceled, expired, or absent at reconcile)
  FILL_POSITION  instrument's base-asset balance (free + locked) at the venue, qty at qty_exp
  FILL_RESUME    connected and reconciled: quoting may (re)start (after every POSITION batch)
"""
from __future__ import annotations

import time

import numpy as np

from engine.records import FILL_DTYPE, packer

# Local error codes (never used by a venue: Binance codes are > -10000, Bybit's are positive).
LOCAL_NOT_CONNECTED = -90001   # intent arrived while the order connection was down
LOCAL_RATE_LIMITED = -90002    # venue asked us to back off (429); intent not sent
LOCAL_STOPPING = -90003        # kill switch / shutdown in progress; intent not sent
LOCAL_UNKNOWN_ORDER = -90004   # replace/cancel of an order id the sender does not know
LOCAL_DRY_RUN = -90005         # reserved: dry-run sends nothing and reports nothing


class FillWriter:
    """Packs fill records into the fill ring; counts records the ring refused."""

    def __init__(self, ring):
        self.ring = ring
        self._mv = memoryview(ring.slots.view(np.uint8).reshape(-1))
        self._size = FILL_DTYPE.itemsize
        self._pack = packer(FILL_DTYPE).pack_into
        self.refused = 0
        self.written = 0

    def emit(self, kind: int, order_id: int, instrument: int, side: int = 0, price: int = 0,
             qty: int = 0, cum_qty: int = 0, leaves_qty: int = 0, error_code: int = 0,
             ts_venue: int = 0) -> bool:
        """Write and publish one record. False (and counted) when the ring refused it."""
        i = self.ring.claim()
        if i < 0:
            self.refused += 1
            return False
        self._pack(self._mv, i * self._size + 8, order_id, instrument, kind, side, price, qty,
                   cum_qty, leaves_qty, error_code, ts_venue, time.perf_counter_ns())
        self.ring.commit()
        self.written += 1
        return True
