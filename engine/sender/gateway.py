"""The venue-neutral order gateway: the connection to a venue's order API and everything about
orders that does not depend on the venue's wire format.

A venue package (engine/sender/venues/<name>/gateway.py) subclasses `Gateway` and supplies:
`logon(transport)` (authenticate, sync the clock, subscribe to order events), the hot path's
hooks `place_into`, `replace_into` and `send_cancel` (one signed frame each, sent or put in the
output buffer; `on_intent`, here, decides what goes out and calls them), `dry_intent` (the dry
run), `on_frame(payload)` (answers and order events -> OrderTable transitions -> fill-ring
records), `query(order)` (ask the venue what became of an order), `reconcile(full)` and
`cancel_everything(deadline)` (safety net), `redact(frame)` (what a logged frame hides), and
`ping` / `periodic` where the venue has its own liveness.

This base class owns, one module per seam, mixed in here so every attribute stays on the one
object the hot path reads: the connection (picows) and its make-before-break replacement and
the set-up calls (connection.py); requests in flight and their deadline, measured from the
round trips (inflight.py: an order request not answered by then has an unknown outcome); the
questions asked about unknown orders, orders concluded gone that the venue shows live, the
stop's settling (order_truth.py); rate-limit pacing and back-off (pacing.py); the batch buffer,
latency stamps and the dry run's log (output.py); the intent rules: refusals, stale intents,
the kill word, cancels deferred while the connection cannot take them (intents.py); position
truth and what the quoter is told (position.py). Here: the state they share, the venue clock
and the hot path's `on_intent`.
"""
from __future__ import annotations

import asyncio
import time
from time import perf_counter_ns

from engine.journal.writer import NoJournal
from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ACTION_RESET_SEEN)
from engine.sender.connection import Connection
from engine.sender.fills import FillWriter
from engine.sender.inflight import Inflight
from engine.sender.intents import IntentRules
from engine.sender.liveness import Liveness, RoundTrip
from engine.sender.order_state import OrderTable
from engine.sender.order_truth import OrderTruth
from engine.sender.output import Output
from engine.sender.pacing import Pacing
from engine.sender.position import Position

# Histograms the sender records (HistogramSet names)
HISTOGRAMS = ("intent_published_to_read", "sign", "encode_send", "read_to_written",
              "tick_to_order", "order_round_trip")


# the gateway's counters (published by the sender process; each explained in engine/glossary.py)
COUNTS = ("intents", "orders_sent", "replaces_sent", "cancels_sent", "cancel_alls_sent",
          "malformed", "unknown_responses", "late_answers", "timeouts", "foreign_events",
          "other_events", "local_rejects", "stale_intents", "unknown_intents", "rate_paced",
          "rate_backoffs", "dry_run_frames", "server_errors", "frame_errors",
          "strangers_canceled", "reconciles", "divergences", "position_repairs", "rollovers",
          "dead_connections", "before_reset")


class Gateway(Connection, Inflight, OrderTruth, Pacing, Output, IntentRules, Position):
    """Connection, request plumbing, order-truth upkeep and pacing shared by the venues.

    What the sender process reads of a gateway, whatever the venue (engine/sender/process.py):
    `fd` (the order socket for direct writes and the busy-spin poll, -1: TLS or none), `auth`
    (how the connection authenticates, for the log), `shutdown_notice` (the venue announced a
    close: roll over; stays False where the venue sends no such notice), `connected`, `ready`,
    `paused`, `banned`, `refusal`, `resume_owed`, `deferred_cancels`, `pace_ns`,
    `next_send_ns`, `counts`, `orders`, `journal`, `liveness`, `rtt`, `clock_offset_ms`,
    `rtt_ns`, `connected_at`, `connected_ever`, and the methods of the mixins and below."""
    venue = "?"                             # the venue's name (its OrderVenue's)
    auth = "?"                              # how the connection authenticates (venues set it)

    def __init__(self, cfg, creds, fills: FillWriter, hist=None, dry_run: bool = False,
                 kill_addr: int = 0):
        self.cfg = cfg                      # EngineConfig
        self.scfg = s = cfg.sender
        self.creds = creds
        self.fills = fills
        self.journal = getattr(fills, "journal", None) or NoJournal()   # engine/journal
        self.hist = hist
        self.dry_run = dry_run
        self.kill_addr = kill_addr          # the control segment's kill word (0: none)
        self.instruments = cfg.instruments
        self.inst_by_symbol = {i.symbol: n for n, i in enumerate(cfg.instruments)}
        self.orders = OrderTable(fills, cfg.tag, query_delay_ns=0,
                                 not_found_confirm_ns=int(s.not_found_confirm_ms * 1e6),
                                 gone_after_ns=int((s.recv_window_ms + s.backend_timeout_ms) * 1e6))
        self.tag = cfg.tag.encode()
        self._cid = self.tag + b"-%d-%d"    # <tag>-<u>-<n>
        self._reconciled_once = False
        self.transport = None
        self.connected = False
        self.ready = False                  # connected, logged on and reconciled
        self.connected_ever = False
        self.connected_at = 0.0             # loop time of the current connection's logon
        self.clock_offset_ms = 0            # venue clock - local clock
        self.rtt_ns = 0
        self.counts: dict[str, int] = dict.fromkeys(COUNTS, 0)
        # the token of the RESET told the quoter whose RESET_SEEN is not read yet (0: none):
        # new orders wait (refusal_reason)
        self.awaiting_reset_seen = 0
        self.paused = False                 # mm kill (the process's pause): cancels only
        self.banned = False                 # the venue banned us (Binance's 418): stop sending;
                                            # the process pulls the kill switch
        self.refusal: str = ""              # a permanent refusal: the process stops, says this
        self._refusal_streak: tuple[int, int] = (0, 0)   # (code, count) of the latest refusals
        self.shutdown_notice = False        # the venue announced a close: roll over (venues set it)
        self.resume_owed = False            # a reconcile left orders of our tag resting: no
                                            # RESUME until one that leaves none
        self.weight = (0, 0, 0)             # REQUEST_WEIGHT (count, limit, valid until ns)
        self.pace_ns = 0                    # minimum spacing of order sends (0 = none)
        self.next_send_ns = 0
        self.blocked_until_ns = 0           # 429 back-off end for new orders (perf_counter_ns)
        self.all_blocked_until_ns = 0       # ... for every request kind (weight, IP: not ORDERS)
        self.deferred_cancels: list[int] = []  # cancel targets held while blocked/disconnected
        self.max_intent_age_ns = int(s.max_intent_age_ms * 1e6)
        self.order_timeout_ns = int(s.order_timeout_ms * 1e6)     # the deadline's cap
        self.rtt = RoundTrip(int(s.order_timeout_min_ms * 1e6), self.order_timeout_ns)
        self.liveness = Liveness(int(s.ping_interval_s * 1e9), int(s.pong_timeout_s * 1e9),
                             int(s.silence_ms * 1e6), s.dead_after_timeouts, perf_counter_ns())
        self._rid = 0
        self._waiters: dict[int, asyncio.Future] = {}
        self._inflight: dict[int, tuple] = {}   # rid -> (kind, order_id, orig, t_sent, transport)
        self._expired: dict[int, tuple] = {}
        self._queries = 0
        self._retiring: list = []           # old connections kept until their answers arrive
        self._dry_log_budget = 0
        self._dry_log_second = 0
        self._position_seen: dict[int, int] = {}  # instrument -> venue position that differed
        # hot-path output: every frame of a ring batch goes into one buffer, written with one
        # syscall at the batch's end (the second order of a tick does not wait for the first)
        self.out = bytearray(1 << 16)
        self.out_len = 0
        self._batching = False
        self.fd = -1                        # the socket, for direct writes (-1: TLS or none)
        self._pending: list[list[int]] = [[0] * 256 for _ in range(4)]  # stamps to record
        self._npending = 0
        # journal records of the requests in the output buffer: handed over once the bytes
        # are written, so the journal costs the order nothing on its way out
        self.journal_later: list[tuple] = []
        self._stop_cancel_base: int | None = None  # orders canceled before the stop began
        self._h_rtt = 0                     # 0: not recorded (no histograms)
        if hist is not None:
            (self._h_read, self._h_sign, self._h_send, self._h_r2w,
             self._h_t2o, self._h_rtt) = (hist.addr(n) for n in HISTOGRAMS)

    def now_ms(self) -> int:
        """Local wall clock corrected to the venue's, in ms (what timestamp= carries)."""
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    def set_clock(self, t0_ns: int, server_ms: int, t1_ns: int) -> None:
        """Offset = server - midpoint of the local send/receive wall times."""
        self.clock_offset_ms = server_ms - (t0_ns + t1_ns) // 2_000_000

    # ---------------------------------------------------------------- hot path
    def on_intent(self, f: tuple, t_read: int) -> None:
        """One order intent (ORDER_DTYPE fields after seq) -> one frame on the wire: a cancel;
        a new order or a replace, unless refused (refusal_reason; a replace also needs its old
        order OPEN: replaceable); the quoter's CANCEL_ALL and RESET_SEEN; anything else is
        malformed. The venue renders and sends through place_into, replace_into and
        send_cancel; the dry run is the venue's dry_intent. Hot path: one hook call per intent
        (the client id is cid_of inlined, so the calls are as many as with no skeleton)."""
        (_seq, order_id, orig, inst, action, side, _lvl, post_only, price, qty, u, ts_arr,
         _, _, ts_pub) = f
        self.counts["intents"] += 1
        if self.dry_run:
            self.dry_intent(f, t_read)
            return
        if action == ACTION_CANCEL:
            self.cancel_intent(orig, order_id, ts_pub, ts_arr, t_read)
        elif action == ACTION_NEW or action == ACTION_REPLACE:
            why = self.refusal_reason(ts_pub, t_read)
            if why:
                self.refuse(f, why)
                return
            cid = self._cid % (u, order_id)          # cid_of
            if len(cid) > 36:
                cid = self._cid % (0, order_id)
            rid = self._rid = self._rid + 1          # spent even when the replace is refused
            if action == ACTION_NEW:
                self.place_into(rid, order_id, inst, side, post_only, cid, price, qty, u,
                                ts_pub, ts_arr, t_read)
            else:
                old = self.replaceable(orig, order_id, cid, inst, side, price, qty)
                if old is not None:
                    self.replace_into(rid, old, order_id, inst, side, post_only, cid, price, qty,
                                      u, ts_pub, ts_arr, t_read)
        elif action == ACTION_CANCEL_ALL:
            self.cancel_ours(inst)
        elif action == ACTION_RESET_SEEN:
            self.reset_seen(order_id)
        else:
            self.counts["malformed"] += 1

    # ---------------------------------------------------------------- venue interface
    def place_into(self, rid: int, order_id: int, inst: int, side: int, post_only: int,
                   cid: bytes, price: int, qty: int, u: int, ts_pub: int, ts_arr: int,
                   t_read: int) -> None:
        """Hot path: send the new order `cid` as request `rid` (or put it in the output buffer:
        `sent`), track it, enter it in the order table, count it, stamp its latency."""
        raise NotImplementedError

    def replace_into(self, rid: int, old, order_id: int, inst: int, side: int, post_only: int,
                     cid: bytes, price: int, qty: int, u: int, ts_pub: int, ts_arr: int,
                     t_read: int) -> None:
        """Hot path: replace the OPEN order `old` by the new order `order_id` (`cid`) as request
        `rid`: as place_into, with `old` marked canceling (orders.cancel_sent) first."""
        raise NotImplementedError

    def dry_intent(self, f: tuple, t_read: int) -> None:
        """Dry run: what on_intent would send, signed and encoded, given to dry_write."""
        raise NotImplementedError

    async def logon(self, transport) -> None:
        raise NotImplementedError

    def on_frame(self, payload: bytes) -> None:
        raise NotImplementedError

    def send_cancel(self, o, ts_pub: int = 0, ts_arr: int = 0, t_read: int = 0) -> None:
        """Cancel the live order `o` (stamps: the intent's, for the latency histograms)."""
        raise NotImplementedError

    def redact(self, frame: bytes) -> bytes:
        """`frame` with every key and signature replaced by *** (the dry run logs it)."""
        raise NotImplementedError

    def ping(self) -> None:
        """Ask the venue for a sign of life (any frame back counts): a WebSocket ping."""
        self.transport.send_ping()

    def periodic(self, now: float) -> None:
        """Called by the watch duty every ~50 ms (application pings and the like)."""

    async def query(self, order) -> None:
        """Ask the venue what became of `order` (UNKNOWN) and apply the answer."""
        raise NotImplementedError

    async def reconcile(self, full: bool = True) -> None:
        """Align the order table with the venue (open orders, unknown ones asked about,
        strangers of our tag canceled, positions checked); `full` (start-up, reconnect) then
        emits FILL_RESUME. Sets `ready`: intents are sent from then on."""
        raise NotImplementedError

    async def cancel_everything(self, deadline: float) -> int:
        """Cancel every open order of ours on every instrument and check none is left before
        `deadline` (loop.time()). Returns the number of our open orders still seen (-1:
        unknown)."""
        raise NotImplementedError
