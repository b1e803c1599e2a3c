"""The fixed-size records that travel between processes, and their flag values.

Rules every record dtype follows (the ring checks the first two at creation):
  - it starts with `seq` (int64): the ring stamps it on claim; a gap means a record was refused;
  - its size is a multiple of 64 bytes (cache-line aligned slots);
  - integers only: prices `*_px` and quantities `*_qty` are int64 fixed-point at the
    instrument's `price_exp` / `qty_exp` (value = mantissa * 10**exp); timestamps `ts_*` are
    int64 nanoseconds, `perf_counter_ns()` (CLOCK_MONOTONIC) unless named `ts_venue*`
    (venue epoch time, ns).
"""
from __future__ import annotations

import struct

import numpy as np


def _padded(fields: list[tuple[str, str]], size: int) -> np.dtype:
    """Aligned struct dtype padded to exactly `size` bytes (a multiple of the cache line)."""
    dt = np.dtype(fields, align=True)
    if dt.itemsize > size:
        raise AssertionError(f"record needs {dt.itemsize} bytes, budget {size}")
    names = [f[0] for f in fields]
    return np.dtype({"names": names, "formats": [dt.fields[n][0] for n in names],
                     "offsets": [dt.fields[n][1] for n in names], "itemsize": size})


# ---------------------------------------------------------------- market data (feed -> quoter)
# kind: bit flags
MD_BBO = 1          # best bid/offer changed (bookTicker, bestBidAsk, orderbook.1, bbo-tbt, depth5 top)
MD_TRADE = 2        # a public trade printed: trade_px / trade_qty / trade_side
MD_SNAPSHOT = 4     # the book values are a full snapshot (not a delta)
MD_STALE = 8        # the feed marks the instrument's stream stale (quoter pulls quotes)
MD_FRESH = 16       # the stream is fresh again after a stale mark
MD_DEPTH = 32       # one L2 level changed: trade_side = SIDE_* of the level, trade_px its price,
                    # trade_qty its new size (0: gone); only in the backtest's records (with
                    # MD_SNAPSHOT: a level of a REST snapshot, which replaces the feed's book)
MD_DEPTH_BOOK = 64  # the depth board's book of the instrument changed (update_id: its book id;
                    # bid/ask: its top); with MD_STALE: the L2 book lost sync (a gap), quotes
                    # are pulled until the same with MD_FRESH (resynced from a snapshot)

SIDE_BUY = 1
SIDE_SELL = 2

MD_DTYPE = _padded([
    ("seq", "i8"),            # ring sequence
    ("update_id", "i8"),      # venue book update id (Binance u / bookUpdateId, Bybit u, OKX seqId)
    ("instrument", "u4"),     # index into the instrument table
    ("kind", "u2"),           # MD_* flags
    ("venue", "u1"),          # VENUE_* id
    ("conn", "u1"),           # which redundant connection delivered the winning copy
    ("bid_px", "i8"),
    ("bid_qty", "i8"),
    ("ask_px", "i8"),
    ("ask_qty", "i8"),
    ("trade_px", "i8"),
    ("trade_qty", "i8"),
    ("trade_side", "u1"),     # taker side, SIDE_* (0 when not a trade)
    ("ts_venue", "i8"),       # venue event time, ns since epoch (0 when the venue gives none)
    ("ts_arrival", "i8"),     # perf_counter_ns() first thing in on_ws_frame
    ("ts_decoded", "i8"),
    ("ts_published", "i8"),   # stamped just before commit
], 128)

# ---------------------------------------------------------------- depth (feed -> quoter, a board)
# The feed's L2 book of an instrument, the best DEPTH_LEVELS levels per side, conflated on the
# depth board (engine/ring/board.py, segment "depth"); MD_DEPTH_BOOK records on the md ring say
# which instrument's changed. Levels past n_bids / n_asks are zero.
DEPTH_LEVELS = 10

DEPTH_DTYPE = _padded([
    ("seq", "i8"),
    ("update_id", "i8"),      # the book's id: the u of the last diff applied (or the snapshot's)
    ("ts_venue", "i8"),       # the last diff's event time, ns since epoch (0: none)
    ("ts_arrival", "i8"),     # the last diff's frame arrival (perf_counter_ns)
    ("ts_published", "i8"),
    ("instrument", "u4"),
    ("synced", "u1"),         # 1: the book follows the stream; 0: a gap, waiting for a snapshot
    ("n_bids", "u1"),
    ("n_asks", "u1"),
    ("bid_px", "i8", (DEPTH_LEVELS,)),    # best first
    ("bid_qty", "i8", (DEPTH_LEVELS,)),
    ("ask_px", "i8", (DEPTH_LEVELS,)),
    ("ask_qty", "i8", (DEPTH_LEVELS,)),
], 384)

VENUE_SIM = 0
VENUE_BINANCE = 1
VENUE_BYBIT = 2
VENUE_OKX = 3

# ---------------------------------------------------------------- order intents (quoter -> sender)
ACTION_NEW = 1
ACTION_REPLACE = 2      # cancel-replace orig_order_id with order_id at price/qty
ACTION_CANCEL = 3
ACTION_CANCEL_ALL = 4   # every open order of `instrument` (instrument = 0xFFFFFFFF: all)
ACTION_RESET_SEEN = 5   # the quoter read the sender's RESET: every intent after this one was
                        # decided knowing it (the sender refuses new orders until it reads it)

ORDER_DTYPE = _padded([
    ("seq", "i8"),
    ("order_id", "i8"),          # engine order number n of client id <tag>-<u>-<n>
    ("orig_order_id", "i8"),     # order being replaced/canceled (0 for NEW / CANCEL_ALL)
    ("instrument", "u4"),
    ("action", "u1"),            # ACTION_*
    ("side", "u1"),              # SIDE_*
    ("level", "u1"),             # quote level, 0 = best
    ("post_only", "u1"),         # 1 = LIMIT_MAKER / PostOnly
    ("price", "i8"),             # fixed-point at price_exp
    ("qty", "i8"),               # fixed-point at qty_exp
    ("update_id", "i8"),         # update id of the tick that caused this intent (the u of the id)
    ("ts_arrival", "i8"),        # that tick's frame arrival stamp
    ("ts_md_published", "i8"),   # that tick's md publish stamp
    ("ts_quoter_read", "i8"),
    ("ts_published", "i8"),      # intent published to the order ring
], 128)

ALL_INSTRUMENTS = 0xFFFFFFFF

# ---------------------------------------------------------------- fills and acks (sender -> quoter)
FILL_ACK = 1            # order accepted and resting
FILL_TRADE = 2          # (partial) fill: qty = last fill qty, price = last fill price
FILL_REJECT = 3         # order refused (error_code = venue code)
FILL_CANCELED = 4       # order gone (canceled, expired)
FILL_POSITION = 5       # inventory snapshot from the venue: qty = base position (start-up, reconcile)
FILL_RESUME = 6         # sender connected and reconciled: quoting may (re)start
FILL_CANCEL_REJECT = 7  # the cancel (or a replace's cancel leg) of order_id did not happen: it
                        # still rests with leaves_qty (error_code = venue code, 0 if learned
                        # by asking); the quoter backs off before trying again
FILL_UNKNOWN = 8        # what became of a request touching order_id is not known; the sender
                        # is asking the venue; the slot waits for the answer (ACK, TRADE,
                        # CANCELED, REJECT or CANCEL_REJECT)
FILL_RESET = 9          # a new sender process: it knows none of the quoter's orders and cancels
                        # every order of ours the venue lists; the quoter forgets its slots

# FILL_REJECT error codes the sender uses for intents it did not send (engine/sender/fills.py
# names them); no venue uses this range. Such an order was never charged by the venue.
LOCAL_CODE_MIN = -90099
LOCAL_CODE_MAX = -90001

FILL_DTYPE = _padded([
    ("seq", "i8"),
    ("order_id", "i8"),
    ("instrument", "u4"),
    ("kind", "u1"),          # FILL_*
    ("side", "u1"),
    ("price", "i8"),
    ("qty", "i8"),
    ("cum_qty", "i8"),       # cumulative filled qty of the order
    ("leaves_qty", "i8"),    # remaining open qty (0 when done)
    ("error_code", "i8"),    # venue error code for rejects (e.g. -2010)
    ("ts_venue", "i8"),      # venue transaction time, ns since epoch
    ("ts_received", "i8"),   # perf_counter_ns() when the sender read the event
], 128)


def packer(dtype: np.dtype, with_seq: bool = False) -> struct.Struct:
    """A struct.Struct of every field after `seq` (or of the whole record, `with_seq`), in
    offset order, with the dtype's padding: `packer(MD_DTYPE).pack_into(buf, slot_offset + 8,
    *values)` fills a slot in one C call (the ring stamps `seq` itself), far cheaper than
    per-field numpy assignment. engine/ring/ring.py's RecordWriter and RecordReader use them."""
    fields = sorted(((f[1], n, f[0]) for n, f in dtype.fields.items()), key=lambda t: t[0])
    fmt, pos = ("<q" if with_seq else "<"), 8     # seq is at offset 0 either way
    codes = {"i8": "q", "u8": "Q", "i4": "i", "u4": "I", "i2": "h", "u2": "H", "i1": "b",
             "u1": "B"}
    for off, name, ft in fields:
        if name == "seq":
            continue
        if off > pos:
            fmt += f"{off - pos}x"
        if ft.subdtype is not None:          # a fixed array (DEPTH_DTYPE's levels): n values
            base, shape = ft.subdtype
            fmt += f"{int(np.prod(shape))}{codes[base.str.lstrip('<|')]}"
        else:
            fmt += codes[ft.str.lstrip("<|")]
        pos = off + ft.itemsize
    if dtype.itemsize > pos:
        fmt += f"{dtype.itemsize - pos}x"
    return struct.Struct(fmt)


def field_order(dtype: np.dtype) -> tuple[str, ...]:
    """Names of the fields `packer(dtype)` expects, in argument order."""
    return tuple(n for _, n in sorted((f[1], n) for n, f in dtype.fields.items()) if n != "seq")

# ---------------------------------------------------------------- journal (sender -> journal agent)
# kind: what happened. Requests we sent, then every fill-ring record the sender emitted (kind =
# JE_FILL_BASE + FILL_*), then the venue's own fill report (trade id, commission), then
# decisions. engine/journal/schema.sql says where each lands.
JE_REQ_NEW = 1          # order.place sent: order_id, update_id = u of its client id
JE_REQ_REPLACE = 2      # order.cancelReplace sent: order_id (new), ref = orig_order_id
JE_REQ_CANCEL = 3       # order.cancel sent for order_id
JE_REQ_CANCEL_ALL = 4   # openOrders.cancelAll sent (instrument)
JE_FILL_BASE = 10       # 10 + FILL_*: ACK 11, TRADE 12, REJECT 13, CANCELED 14, POSITION 15,
                        # RESUME 16, CANCEL_REJECT 17, UNKNOWN 18, RESET 19
JE_EXEC_TRADE = 30      # the venue's fill report: trade_id, venue_order_id, price, qty,
                        # commission (mantissa at JOURNAL_COMMISSION_EXP) and its asset
JE_STRANGER_CANCELED = 40   # reconcile: an order of our tag no slot held was canceled
JE_DIVERGENCE = 41      # reconcile: the venue's position differs from our fills' (qty: venue's)
JE_POSITION_REPAIRED = 42   # ... twice: our position set to the venue's (qty)
JE_KILL = 50            # the kill switch seen (code: reason)
JE_PAUSE = 51           # mm kill: pause (code: reason)
JE_RESUMED = 52         # mm resume: quoting again
JOURNAL_COMMISSION_EXP = -12

JOURNAL_DTYPE = _padded([
    ("seq", "i8"),
    ("ts", "i8"),               # perf_counter_ns() when the sender wrote it
    ("ts_venue", "i8"),         # venue time, ns since epoch (0: none)
    ("order_id", "i8"),         # engine order number n of <tag>-<u>-<n>
    ("ref", "i8"),              # REPLACE: the order it replaces (orig_order_id)
    ("update_id", "i8"),        # NEW / REPLACE: u of the client id <tag>-<u>-<n>
    ("venue_order_id", "i8"),
    ("trade_id", "i8"),         # the venue's trade id (JE_EXEC_TRADE), else -1
    ("price", "i8"),            # fixed-point at the instrument's price_exp
    ("qty", "i8"),              # fixed-point at qty_exp
    ("cum_qty", "i8"),
    ("leaves_qty", "i8"),
    ("code", "i8"),             # venue / LOCAL_* error code, kill or pause reason
    ("commission", "i8"),       # mantissa at JOURNAL_COMMISSION_EXP
    ("commission_asset", "u8"), # up to 8 ASCII bytes, little-endian (0: none)
    ("instrument", "u4"),
    ("kind", "u2"),             # JE_*
    ("side", "u1"),
    ("maker", "u1"),            # 1 when the fill was a maker fill
], 128)
