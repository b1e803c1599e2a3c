"""The venue-neutral order gateway: the connection to a venue's order API and everything about
orders that does not depend on the venue's wire format.

A venue module subclasses `Gateway` and supplies: `logon(transport)` (authenticate, sync the
clock, subscribe to order events), `on_intent(fields, t_read)` (hot path: one ORDER_DTYPE
record's fields -> one signed frame written to the socket), `on_frame(payload)` (answers and
order events -> OrderTable transitions -> fill-ring records), `query(order)` (ask the venue what
became of an order), `reconcile(full)` and `cancel_everything(deadline)` (safety net).

This base class owns: the connection (picows) and its make-before-break replacement, the
request/response plumbing for set-up calls, requests in flight and their deadline (measured
from the round trips, engine/sender/liveness.py: an order request not answered by then has an
unknown outcome), the connection's proof of life (pings, unanswered streaks, silence) and its
replacement when dead, the questions asked about unknown orders, orders concluded gone that the
venue shows live (canceled until it confirms), the clock offset, rate-limit pacing and back-off
(ORDERS for new orders, REQUEST_WEIGHT for everything, 429/418 for every request), the kill word
read before every new order, the refusal of stale intents, the dry-run path, the stop's
settling of requests in flight and unknown orders, and the latency stamps.
"""
from __future__ import annotations

import asyncio
import os
import re
import time
from time import perf_counter_ns

from picows import WSListener, WSMsgType, ws_connect

from engine import _native as C
from engine._native import hist_record as _hist_record
from engine.proc import log
from engine.journal.writer import NoJournal
from engine.records import (ACTION_REPLACE, ALL_INSTRUMENTS, FILL_POSITION, FILL_RESET,
                            FILL_RESUME, FILL_UNKNOWN, JE_DIVERGENCE, JE_POSITION_REPAIRED)
from engine.sender.fills import (LOCAL_BEFORE_RESET, LOCAL_NOT_CONNECTED, LOCAL_ORDER_BUSY,
                                 LOCAL_RATE_LIMITED,
                                 LOCAL_STALE_INTENT, LOCAL_STOPPING, LOCAL_UNKNOWN_ORDER,
                                 FillWriter)
from engine.sender.liveness import Liveness, RoundTrip
from engine.sender.order_state import OPEN, PENDING_NEW, UNKNOWN, OrderTable

_REDACT = re.compile(rb'"(apiKey|signature|sign)":"[^"]*"')
_REDACT_ARGS = re.compile(rb'"args":\["[^"]*",(\d+),"[^"]*"\]')

# Histograms the sender records (HistogramSet names)
HISTOGRAMS = ("intent_published_to_read", "sign", "encode_send", "read_to_written",
              "tick_to_order")
EXPIRED_KEPT = 4096          # timed-out requests remembered so a late answer is still applied
QUERIES_IN_FLIGHT = 16       # order.status questions outstanding at once
PERMANENT_STREAK = 5         # the same permanent refusal this many times in a row stops us


# the gateway's counters (published by the sender process; each explained in engine/glossary.py)
COUNTS = ("intents", "orders_sent", "replaces_sent", "cancels_sent", "cancel_alls_sent",
          "malformed", "unknown_responses", "late_answers", "timeouts", "foreign_events",
          "other_events", "local_rejects", "stale_intents", "unknown_intents", "rate_paced",
          "rate_backoffs", "dry_run_frames", "server_errors", "frame_errors",
          "strangers_canceled", "reconciles", "divergences", "position_repairs", "rollovers",
          "dead_connections", "before_reset")


class GatewayError(Exception):
    """A set-up request failed (logon refused, timeout): the message says which and why."""


class VenueRefusal(GatewayError):
    """The venue refuses us for a reason retrying cannot fix (bad key, bad signature, unknown
    symbol, a filter every order fails): the message says what to change."""


def redact(frame: bytes) -> bytes:
    """The frame with every key and signature value replaced by ***."""
    return _REDACT_ARGS.sub(rb'"args":["***",\1,"***"]', _REDACT.sub(rb'"\1":"***"', frame))


class _Listener(WSListener):
    """Hands text frames to the gateway; a CLOSE or a drop ends that connection."""

    def __init__(self, gateway: "Gateway"):
        self.gw = gateway

    def on_ws_frame(self, transport, frame) -> None:
        t = frame.msg_type
        gw = self.gw
        if transport is gw.transport:        # proof of life: one stamp, checked by the watch
            gw.liveness.last_frame_ns = perf_counter_ns()
        if t == WSMsgType.TEXT or t == WSMsgType.BINARY:
            try:
                self.gw.on_frame(frame.get_payload_as_bytes())
            except Exception as e:  # a bug must not drop the connection: count, say, go on
                self.gw.counts["frame_errors"] += 1
                if self.gw.counts["frame_errors"] <= 3:
                    log("sender", f"error handling a frame: {type(e).__name__}: {e}")
        elif t == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport) -> None:
        self.gw.on_disconnected(transport)


class Gateway:
    """Connection, request plumbing, order-truth upkeep and pacing shared by the venues."""
    venue = "?"

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
        self.banned = False                 # 418: stop sending; the process pulls the kill switch
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
        self._fd = -1                       # the socket, for direct writes (-1: TLS or none)
        self._pending: list[list[int]] = [[0] * 256 for _ in range(4)]  # stamps to record
        self._npending = 0
        # journal records of the requests in the output buffer: handed over once the bytes
        # are written, so the journal costs the order nothing on its way out
        self.journal_later: list[tuple] = []
        self._stop_cancel_base: int | None = None  # orders canceled before the stop began
        if hist is not None:
            (self._h_read, self._h_sign, self._h_send, self._h_r2w,
             self._h_t2o) = (hist.addr(n) for n in HISTOGRAMS)

    # ---------------------------------------------------------------- connection
    async def open_connection(self, url: str):
        """A new WebSocket to `url`, logged on: returns its transport; GatewayError on
        failure (the half-open connection is closed)."""
        try:
            transport, _ = await asyncio.wait_for(
                ws_connect(lambda: _Listener(self), url, enable_auto_pong=True,
                           websocket_handshake_timeout=self.scfg.connect_timeout_s),
                self.scfg.connect_timeout_s)
        except (OSError, asyncio.TimeoutError, Exception) as e:
            raise GatewayError(f"connect {url}: {type(e).__name__}: {e}") from None
        try:
            await self.logon(transport)
        except Exception:
            _close(transport)
            raise
        return transport

    async def connect(self, url: str) -> None:
        """Open the connection and run the venue's logon; GatewayError on failure."""
        transport = await self.open_connection(url)
        self._use(transport)
        self.fresh_connection()
        self.connected = True
        self.connected_ever = True
        self.connected_at = asyncio.get_running_loop().time()

    async def roll_over(self, url: str) -> None:
        """Make-before-break: log on a second connection, move the hot path to it, retire the
        old one once its requests are answered (or time out). Orders never see a gap."""
        new = await self.open_connection(url)
        old = self.transport
        self._use(new)
        self.fresh_connection()
        self.connected_at = asyncio.get_running_loop().time()
        self.counts["rollovers"] += 1
        if old is not None:
            self._retiring.append((old, perf_counter_ns() + self.order_timeout_ns))

    async def replace_dead(self, url: str) -> None:
        """The connection is dead (it stopped proving alive): stop sending orders, log on a new
        one (make-before-break: the dead one is dropped only once the new one is up), treat
        what was in flight on the dead one as unknown. The caller reconciles before quoting
        resumes (`ready` stays False until then). GatewayError: no new connection (the dead
        one is closed; the reconnect loop takes over)."""
        self.ready = False
        self.counts["dead_connections"] += 1
        try:
            new = await self.open_connection(url)
        except GatewayError:
            self.close()
            raise
        old = self.transport
        self._use(new)
        self.fresh_connection()
        self.connected = True
        self.connected_at = asyncio.get_running_loop().time()
        for t, _ in self._retiring:
            _close(t)
        self._retiring = []
        if old is not None:
            _close(old)
            self._orphan_requests(old)

    def fresh_connection(self) -> None:
        """A new connection carries the hot path: alive as of now (venues add their own)."""
        self.liveness.reset(perf_counter_ns())

    def dead_reason(self, now_ns: int) -> str:
        """Watch duty: ping the connection when it has been quiet; why it is dead, or ""."""
        if not self.connected or self.transport is None:
            return ""
        live = self.liveness
        if live.ping_due(now_ns):
            try:
                self.ping()
            except Exception:
                pass
        oldest = min((req[3] for req in self._inflight.values() if req[4] is self.transport),
                     default=0)
        return live.dead_reason(now_ns, oldest)
    def _use(self, transport) -> None:
        """Make `transport` the connection the hot path writes to."""
        self.transport = transport
        tr = transport.underlying_transport
        sock = tr.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None and not transport.is_secure else -1
        self._tr_write = tr.write
        self._tr_buffered = tr.get_write_buffer_size

    def retire_old_connections(self, now_ns: int) -> None:
        """Close retired connections with nothing in flight on them (or past their deadline)."""
        keep = []
        for t, deadline in self._retiring:
            busy = any(req[4] is t for req in self._inflight.values())
            if busy and now_ns < deadline:
                keep.append((t, deadline))
            else:
                _close(t)
        self._retiring = keep

    def close(self) -> None:
        """Drop the connection (if any): what was in flight on it has an unknown outcome."""
        t = self.transport
        for old, _ in self._retiring:
            _close(old)
        self._retiring = []
        if t is not None:
            _close(t)
        self._lost(t)

    def on_disconnected(self, transport=None) -> None:
        if transport is not None and transport is self.transport:
            self._lost(transport)
        else:                                 # a retired connection ended
            self._retiring = [(t, d) for t, d in self._retiring if t is not transport]
            self._orphan_requests(transport)

    def _lost(self, transport) -> None:
        self.connected = False
        self.ready = False
        self.transport = None
        self._fd = -1
        self.out_len = 0
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(GatewayError("connection lost"))
        self._waiters.clear()
        self._orphan_requests(transport)

    def _orphan_requests(self, transport) -> None:
        """Requests sent on a connection that ended: their outcome is unknown."""
        now = perf_counter_ns()
        for rid in [r for r, req in self._inflight.items()
                    if transport is None or req[4] is transport]:
            self.request_unknown(self._inflight.pop(rid), now)

    def send(self, frame: bytes, transport=None) -> None:
        (transport or self.transport).send(WSMsgType.TEXT, frame)

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    async def call(self, build, timeout: float | None = None, transport=None):
        """Send a set-up request built by `build(request_id) -> bytes` (on `transport`, default
        the current connection); await its answer (the decoded frame); GatewayError on timeout
        or disconnect."""
        if transport is None and not self.connected:
            raise GatewayError("not connected")
        if self.requests_blocked():
            raise GatewayError("backing off after the venue's 429/418")   # any request kind
        rid = self.next_rid()
        fut = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        self.send(build(rid), transport)
        wait = timeout or self.scfg.request_timeout_s
        try:
            return await asyncio.wait_for(fut, wait)
        except asyncio.TimeoutError:
            raise GatewayError(f"no answer to request {rid} within {wait:g} s") from None
        finally:
            self._waiters.pop(rid, None)

    def resolve(self, rid, response) -> bool:
        """Complete a set-up call's future; False when `rid` is not a set-up call."""
        fut = self._waiters.pop(rid, None)
        if fut is None:
            return False
        if not fut.done():
            fut.set_result(response)
        return True

    async def call_before(self, build, deadline: float):
        """`call` bounded by an absolute loop-time deadline; None once it has passed."""
        left = deadline - asyncio.get_running_loop().time()
        return await self.call(build, timeout=left) if left > 0 else None

    def now_ms(self) -> int:
        """Local wall clock corrected to the venue's, in ms (what timestamp= carries)."""
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    def set_clock(self, t0_ns: int, server_ms: int, t1_ns: int) -> None:
        """Offset = server - midpoint of the local send/receive wall times."""
        self.clock_offset_ms = server_ms - (t0_ns + t1_ns) // 2_000_000

    # ---------------------------------------------------------------- requests in flight
    def track(self, rid: int, kind: int, order_id: int, orig: int, t_sent: int) -> None:
        self._inflight[rid] = (kind, order_id, orig, t_sent, self.transport)

    def take_request(self, rid) -> tuple | None:
        """The request an answer belongs to (a timed-out one too: its answer is still the
        truth, applied idempotently), or None."""
        req = self._inflight.pop(rid, None)
        if req is None:
            req = self._expired.pop(rid, None)
            if req is not None:
                self.counts["late_answers"] += 1    # not a sample (Karn), but a sign of life
                self.liveness.answered()
            return req
        self.rtt.sample(perf_counter_ns() - req[3])
        self.liveness.answered()
        return req

    def expire_requests(self, now_ns: int) -> None:
        """Order requests unanswered past their measured deadline: outcome unknown."""
        limit = now_ns - self.rtt.deadline_ns()
        late = [rid for rid, req in self._inflight.items() if req[3] < limit]
        if not late:
            return
        self.rtt.missed()
        # one miss per pass: a burst caught by one slow spell of the venue is one sign, not
        # several (each new request that goes unanswered later is another)
        here = [self._inflight[rid][3] for rid in late if self._inflight[rid][4] is self.transport]
        if here:
            self.liveness.missed(max(here))
        for rid in late:
            req = self._inflight.pop(rid)
            self._expired[rid] = req
            self.counts["timeouts"] += 1
            self.request_unknown(req, now_ns)
        while len(self._expired) > EXPIRED_KEPT:
            del self._expired[next(iter(self._expired))]

    def request_unknown(self, req: tuple, now_ns: int) -> None:
        """Every order `req` touched has an unknown outcome (the venue is asked), except a new
        order whose acceptance a report already told (its creation is not in doubt)."""
        kind, order_id, orig = req[:3]
        for n in (orig, order_id):          # the old order first (ordering contract)
            o = self.orders.get(n) if n else None
            if o is not None and not (n == order_id and kind in self.CREATES and o.acked
                                      and not o.cancel_asked):
                self.orders.outcome_unknown(o, now_ns)

    CREATES: frozenset = frozenset()        # request kinds whose order_id is a new order

    def in_flight(self) -> int:
        return len(self._inflight)

    def pending_for(self, order_id: int) -> bool:
        """True while a request touching `order_id` waits for its answer."""
        return any(order_id == req[1] or order_id == req[2] for req in self._inflight.values())

    def ask_about_unknown_orders(self) -> None:
        """Start order.status questions for UNKNOWN orders that are due (bounded)."""
        if not self.ready:
            return
        room = (1 if self.weight_tight() else QUERIES_IN_FLIGHT) - self._queries
        if room <= 0 or self.requests_blocked():
            return
        loop = asyncio.get_running_loop()
        for o in self.orders.due_queries(self.orders.clock(), room):
            o.querying = True
            self._queries += 1
            loop.create_task(self._ask(o))

    async def _ask(self, o) -> None:
        try:
            await self.query(o)
        except Exception as e:              # no answer, a refusal, an answer we cannot read:
            if not isinstance(e, GatewayError):     # ask again later, not at once
                self.counts["malformed"] += 1
            o.query_due_ns = perf_counter_ns() + max(self.rtt.deadline_ns(),
                                                     self.order_timeout_ns // 4)
        finally:
            o.querying = False
            self._queries -= 1

    def query_timeout_s(self) -> float:
        """How long an order.status question may take (two order deadlines, at most the cap)."""
        return min(2 * self.rtt.deadline_ns(), self.order_timeout_ns) / 1e9

    async def ask_all_unknown(self, deadline: float) -> None:
        """Ask the venue about every UNKNOWN order now (reconcile after a replacement), all at
        once, bounded by `deadline` (loop time); what stays unknown is asked again later."""
        todo = [o for o in self.orders.unknown() if not o.querying]
        if not todo or asyncio.get_running_loop().time() >= deadline:
            return
        for o in todo:
            o.querying = True
            self._queries += 1
        await asyncio.gather(*(self._ask(o) for o in todo))

    def cancel_orphans(self) -> None:
        """Cancel orders concluded gone that the venue showed live (order_state `_revive`), at
        once, and again whenever one is back to OPEN (a cancel refused or "unknown"), until the
        venue confirms it is gone."""
        orders = self.orders
        if orders.to_cancel:
            orders.to_cancel.clear()
        if not self.ready or self.requests_blocked():
            return
        for o in list(orders.live.values()):
            if o.orphan and o.state == OPEN:
                self.send_cancel(o)

    async def settle(self, deadline: float) -> bool:
        """The stop's last step: wait for every request in flight to be answered or expire, and
        ask the venue about every UNKNOWN order, until none is left (True) or `deadline`
        (loop time) passes (False). An order the answers show resting is left OPEN for the
        caller to cancel."""
        loop = asyncio.get_running_loop()
        while True:
            self.expire_requests(perf_counter_ns())
            if not self._inflight and not self.orders.unknown():
                return True
            if loop.time() >= deadline or not self.connected:
                return False
            for o in self.orders.due_queries(self.orders.clock(), QUERIES_IN_FLIGHT):
                o.querying = True
                self._queries += 1
                loop.create_task(self._ask(o))
            await asyncio.sleep(0.02)

    def doubt_live_orders(self) -> None:
        """The venue just listed none of our orders: every live one the table holds with no
        request for it in flight is asked about (never concluded from that absence)."""
        now = self.orders.clock()
        for o in list(self.orders.live.values()):
            if o.state != UNKNOWN and not self.pending_for(o.order_id):
                self.orders.outcome_unknown(o, now)

    def unknown_summary(self) -> str:
        """What is not known at a stop: requests in flight and UNKNOWN orders, by client id."""
        unknown = [o.cid.decode() for o in self.orders.unknown()]
        return (f"{len(self._inflight)} requests unanswered, {len(unknown)} orders of unknown "
                f"outcome{': ' + ', '.join(unknown[:10]) if unknown else ''}")

    # ---------------------------------------------------------------- pacing and back-off
    def send_delay_ns(self) -> int:
        """0 when an order may go out now, else how long to wait (ring is left unread)."""
        if self.pace_ns:
            d = self.next_send_ns - perf_counter_ns()
            if d > 0:
                return d
        return 0

    def back_off(self, retry_after_ms: int, status: int, every_kind: bool = True) -> None:
        """429 (wait until retryAfter, venue epoch ms) or 418 (banned: stop sending)."""
        self.counts["rate_backoffs"] += 1
        if status == 418:
            self.banned = True
        wait_ms = max(retry_after_ms - self.now_ms(), 1000) if retry_after_ms else 1000
        until = perf_counter_ns() + wait_ms * 1_000_000
        self.blocked_until_ns = max(self.blocked_until_ns, until)
        if every_kind or status == 418:
            self.all_blocked_until_ns = max(self.all_blocked_until_ns, until)
        log("sender", f"venue answered {status}: backing off {wait_ms} ms")

    def blocked(self) -> bool:
        """No new order may go out (a 429 of any kind, a ban)."""
        return self.banned or (self.blocked_until_ns and perf_counter_ns() < self.blocked_until_ns)

    def requests_blocked(self) -> bool:
        """No request of any kind may go out: a 429 for request weight (or one whose kind is
        not known), a 418 ban. An ORDERS 429 (too many new orders) holds new orders only."""
        return self.banned or (self.all_blocked_until_ns and
                               perf_counter_ns() < self.all_blocked_until_ns)

    async def wait_unblocked(self, deadline: float) -> bool:
        """Sleep out a 429/418 back-off, at most until `deadline` (loop time); True when clear."""
        if self.banned:
            return False
        left = (self.all_blocked_until_ns - perf_counter_ns()) / 1e9
        if left <= 0:
            return True
        if asyncio.get_running_loop().time() + left > deadline:
            return False
        await asyncio.sleep(left)
        return True

    def note_weight(self, count: int, limit: int, interval_ms: int) -> None:
        """The REQUEST_WEIGHT window an answer reported (every request kind counts in it)."""
        if limit > 0:
            self.weight = (count, limit, perf_counter_ns() + interval_ms * 1_000_000)

    def weight_tight(self) -> bool:
        """True while the reported REQUEST_WEIGHT use is above the slow-down share: queries are
        kept to one at a time and the periodic reconcile waits (orders and cancels go on)."""
        count, limit, until = self.weight
        return limit > 0 and count > self.scfg.rate_slow_fraction * limit and \
            perf_counter_ns() < until

    def pace(self, limits) -> None:
        """Rate-limit feedback from one answer: `limits` are (count, limit, interval_ms) of
        every ORDERS window the venue reported. Above the slow-down share of any of them,
        order sends are spaced evenly over that window; the widest spacing needed wins, and
        pacing ends only when every window is below half its limit. An answer without ORDERS
        windows (a cancel, a query) says nothing about them: call this only with some."""
        if not limits:
            return
        need = 0
        relaxed = True
        slow = self.scfg.rate_slow_fraction
        for count, limit, interval_ms in limits:
            if limit <= 0:
                continue
            if count > slow * limit:
                need = max(need, interval_ms * 1_000_000 // limit)
            if count >= 0.5 * limit:
                relaxed = False
        if need > self.pace_ns:
            self.pace_ns = need
            self.counts["rate_paced"] += 1
        elif relaxed:
            self.pace_ns = 0

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

    # ---------------------------------------------------------------- hot-path helpers
    def killed(self) -> bool:
        """The kill word, read with acquire before every new order (not from a cache)."""
        return self.kill_addr != 0 and C.load_acquire(self.kill_addr) != 0

    def begin_batch(self) -> None:
        """Frames go to the output buffer until end_batch() writes them with one syscall."""
        self._batching = True

    def end_batch(self) -> None:
        self._batching = False
        self.flush_out()

    def sent(self, ts_published: int, ts_arrival: int, t_read: int, t_signed: int) -> None:
        """A frame is in the output buffer: note its stamps, write it now unless batching."""
        k = self._npending
        if k == 256:                        # a very long batch: write what is there first
            self.flush_out()
            k = 0
        p = self._pending
        p[0][k], p[1][k], p[2][k], p[3][k] = ts_published, ts_arrival, t_read, t_signed
        self._npending = k + 1
        if not self._batching:
            self.flush_out()

    def flush_out(self) -> None:
        """Write the output buffer (one syscall when the socket takes it all), then record
        every frame's latency with the same written stamp."""
        n = self.out_len
        if not n and not self._npending:    # an empty batch (the ring had nothing): no work
            return
        if n:
            self.out_len = 0
            written = 0
            with memoryview(self.out) as mv:
                if self._fd >= 0 and not self._tr_buffered():
                    try:
                        written = os.write(self._fd, mv[:n])
                    except (BlockingIOError, InterruptedError):
                        written = 0
                if written < n:             # TLS, or the socket is full: the loop writes it
                    self._tr_write(bytes(mv[written:n]))
        k = self._npending
        if k and self.hist is not None:
            t_sent = perf_counter_ns()
            p = self._pending
            for j in range(k):
                self.record_latency(p[0][j], p[1][j], p[2][j], p[3][j], t_sent)
        self._npending = 0
        if self.journal_later:
            request = self.journal.request
            for args in self.journal_later:
                request(*args)
            self.journal_later.clear()

    def record_latency(self, ts_published: int, ts_arrival: int, t_read: int, t_signed: int,
                       t_sent: int) -> None:
        if self.hist is None:
            return
        rec = _hist_record
        if ts_published:
            rec(self._h_read, t_read - ts_published)
        rec(self._h_sign, t_signed - t_read)
        rec(self._h_send, t_sent - t_signed)
        rec(self._h_r2w, t_sent - t_read)
        if ts_arrival:
            rec(self._h_t2o, t_sent - ts_arrival)

    def dry_write(self, frame: bytes) -> None:
        """Dry run: count the frame that would have gone out, log it redacted at a bounded
        rate."""
        self.counts["dry_run_frames"] += 1
        sec = perf_counter_ns() // 1_000_000_000
        if sec != self._dry_log_second:
            self._dry_log_second, self._dry_log_budget = sec, self.scfg.dry_run_log_per_s
        if self._dry_log_budget > 0:
            self._dry_log_budget -= 1
            log("sender", f"dry-run: {redact(frame).decode()}")

    # ---------------------------------------------------------------- intent rules (venue-neutral)
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

    @property
    def canceled_at_stop(self) -> int:
        base = self._stop_cancel_base
        return 0 if base is None else self.orders.counts["canceled"] - base

    # ---------------------------------------------------------------- position truth
    def check_position(self, inst: int, venue_qty: int, first: bool, settled: bool) -> None:
        """Compare the venue's base balance with the position our fills add up to. The first
        snapshot sets it. A difference is repaired only when nothing can still explain it (no
        request in flight, no order whose outcome is being asked: `settled`) and the next
        settled check sees the same venue figure (a report on its way explains a one-off)."""
        table = self.orders
        if first or inst not in table.position:
            table.position[inst] = venue_qty
            self._position_seen.pop(inst, None)
        elif venue_qty == table.position[inst]:
            self._position_seen.pop(inst, None)
        elif settled:
            if self._position_seen.get(inst) == venue_qty:
                self.counts["position_repairs"] += 1
                log("sender", f"{self.instruments[inst].symbol}: venue position {venue_qty} "
                              f"differs from our fills' {table.position[inst]} twice: repaired")
                table.position[inst] = venue_qty
                self._position_seen.pop(inst, None)
                self.journal.decision(JE_POSITION_REPAIRED, inst, qty=venue_qty)
            else:
                self.counts["divergences"] += 1
                self._position_seen[inst] = venue_qty
                self.journal.decision(JE_DIVERGENCE, inst, qty=venue_qty)

    def tell_quoter(self, reset: bool, resume: bool) -> None:
        """Where the quoter stands: (RESET: forget every slot,) POSITION per instrument (the
        position our fills add up to, consistent with every TRADE record before it), (RESUME:
        quote). After every reconcile, and for every new quoter process."""
        if reset:
            # intents the quoter publishes before reading it belong to slots it will drop:
            # none is placed until its RESET_SEEN (an order placed for one would rest unmanaged)
            # the token: perf_counter_ns, distinct for every RESET of every sender on the box
            token = self.awaiting_reset_seen = perf_counter_ns()
            self.fills.emit(FILL_RESET, token, ALL_INSTRUMENTS)
        for inst in range(len(self.instruments)):
            if inst in self.orders.position:
                self.fills.emit(FILL_POSITION, 0, inst, 0, 0, self.orders.position[inst])
        if resume:
            self.fills.emit(FILL_RESUME, 0, ALL_INSTRUMENTS)

    # ---------------------------------------------------------------- venue interface
    async def logon(self, transport) -> None:
        raise NotImplementedError

    def on_intent(self, fields: tuple, t_read: int) -> None:
        raise NotImplementedError

    def on_frame(self, payload: bytes) -> None:
        raise NotImplementedError

    def send_cancel(self, o, ts_pub: int = 0, ts_arr: int = 0, t_read: int = 0) -> None:
        """Cancel the live order `o` (stamps: the intent's, for the latency histograms)."""
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


def _close(transport) -> None:
    try:
        transport.send_close()
        transport.disconnect()
    except Exception:
        pass
