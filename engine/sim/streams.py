"""The simulator's market streams: the synthetic market's timers (book events, trades, depth
snapshots), the frames they write to subscribers, and the subscriptions market connections
ask for. A part of SimServer (engine/sim/server.py puts the parts together).

Streams: <symbol>@bookTicker, <symbol>@trade, <symbol>@depth<5|10|20>[@100ms] (lowercase
symbol); diff depth <symbol>@depth[@100ms] is diff_depth.py's. SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY work on any market connection.

Known simplifications: the 5 messages/s client limit of market connections is not enforced;
timeUnit=MICROSECOND is ignored.
"""
from __future__ import annotations

from time import perf_counter_ns

import msgspec
from picows import WSMsgType

from engine.sim.api_params import now_ms
from engine.sim.connections import TIMER_SLACK_S, MarketConn
from engine.sim.market import Book, parse_decimal

_TEXT = WSMsgType.TEXT
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_MAX_BURST = 64               # book events per timer callback when the loop falls behind


class MarketStreams:
    """SimServer's market part. Uses books, by_symbol, exchange, clock, stats, _loop, the
    arrival dice (_arrivals, event_rate) and the fault switches (stalled, malformed_left)."""

    def _init_streams(self) -> None:
        # stream name -> connections subscribed (insertion-ordered)
        self.subs: dict[str, dict[MarketConn, None]] = {}
        self._wrap_prefix: dict[str, bytes] = {}
        self._bt = [f"{b.stream_symbol}@bookTicker" for b in self.books]
        self._tr = [f"{b.stream_symbol}@trade" for b in self.books]
        self.paused = False
        self._timer = None            # the market timer (None: paused)
        self._next_at = [0.0] * len(self.books)
        self._depth_timer = None
        self._depth_count = 0

    # -- stream subscriptions --
    @staticmethod
    def _canonical(name: str) -> str:
        sym, at, rest = name.partition("@")
        return f"{sym.lower()}{at}{rest}"

    def _subscribe(self, conn: MarketConn, name: str) -> None:
        name = self._canonical(name)
        if name not in conn.streams:
            conn.streams.append(name)
            self.subs.setdefault(name, {})[conn] = None
            if name not in self._wrap_prefix:
                self._wrap_prefix[name] = f'{{"stream":"{name}","data":'.encode()

    def _unsubscribe(self, conn: MarketConn, name: str) -> None:
        name = self._canonical(name)
        if name in conn.streams:
            conn.streams.remove(name)
            self.subs.get(name, {}).pop(conn, None)

    def _md_control(self, conn: MarketConn, payload: bytes) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY."""
        try:
            msg = _decode(payload)
        except msgspec.DecodeError as e:
            self._md_reply(conn, {"code": 3, "msg": f"Invalid JSON: {e}", "id": None})
            return
        if not isinstance(msg, dict):
            self._md_reply(conn, {"code": 3, "msg": "Invalid JSON: expected an object",
                                  "id": None})
            return
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if req_id is not None and not (isinstance(req_id, int) or (
                isinstance(req_id, str) and req_id.isalnum() and len(req_id) <= 36)):
            self._md_reply(conn, {"code": 2, "msg": "Invalid request: request ID must be an "
                                  "unsigned integer or an alphanumeric string", "id": None})
            return
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._md_reply(conn, {"code": 2, "msg": "Invalid request: params must be a "
                                      "list of stream names", "id": req_id})
                return
            act = self._subscribe if method == "SUBSCRIBE" else self._unsubscribe
            for name in params:
                act(conn, name)
            self._md_reply(conn, {"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._md_reply(conn, {"result": list(conn.streams), "id": req_id})
        elif method == "SET_PROPERTY":
            if not (isinstance(params, list) and len(params) == 2 and params[0] == "combined"):
                self._md_reply(conn, {"code": 0, "msg": "Unknown property", "id": req_id})
            elif not isinstance(params[1], bool):
                self._md_reply(conn, {"code": 1, "msg": "Invalid value type: expected Boolean",
                                      "id": req_id})
            else:
                conn.combined = params[1]
                self._md_reply(conn, {"result": None, "id": req_id})
        elif method == "GET_PROPERTY":
            if params == ["combined"]:
                self._md_reply(conn, {"result": conn.combined, "id": req_id})
            else:
                self._md_reply(conn, {"code": 0, "msg": "Unknown property", "id": req_id})
        else:
            self._md_reply(conn, {"code": 2, "msg": "Invalid request: unknown method",
                                  "id": req_id})

    def _md_reply(self, conn: MarketConn, msg: dict) -> None:
        if "code" in msg:
            self.stats["md_control_errors"] += 1
        conn.t.send(_TEXT, _encode(msg))

    # -- hot: market frames --
    def _publish(self, stream: str, payload: bytes, book_index: int = -1,
                 update_id: int = 0) -> None:
        """Write one market frame to every subscriber of `stream` (raw or wrapped)."""
        subs = self.subs.get(stream)
        if not subs or self.stalled:
            return
        wrapped = None
        if self.malformed_left > 0:
            self.malformed_left -= 1
            self.stats["malformed_sent"] += 1
            payload = payload[: len(payload) // 2]          # truncated JSON
            wrapped = self._wrap_prefix[stream] + payload
        if book_index >= 0:
            self.clock.stamp(book_index, update_id, perf_counter_ns())
        for conn in subs:
            if conn.combined:
                if wrapped is None:
                    wrapped = self._wrap_prefix[stream] + payload + b"}"
                conn.t.send(_TEXT, wrapped)
            else:
                conn.t.send(_TEXT, payload)
        self.stats["frames_sent"] += len(subs)

    def _tick(self) -> None:
        """One timer for every book: emit the events that are due, re-arm at the next one."""
        loop = self._loop
        now = loop.time()
        # Loop timers have ~1 ms resolution (uvloop) and may fire a little early: events due
        # within the next millisecond go now, or the timer would spin re-arming itself.
        horizon = now + TIMER_SLACK_S
        expo, rate, next_at = self._arrivals.expovariate, self.event_rate, self._next_at
        for i, book in enumerate(self.books):
            n = 0
            while next_at[i] <= horizon and n < _MAX_BURST:
                self._book_event(book)
                next_at[i] += expo(rate)
                n += 1
            if next_at[i] < now:
                next_at[i] = now            # fell behind: do not try to catch up forever
        self._timer = loop.call_at(min(next_at), self._tick)
        if self._user_events:
            self._flush_user_events()

    def _book_event(self, book: Book) -> None:
        trade = book.step()
        self.stats["book_events"] += 1
        self.exchange.on_book(book)
        if self.chaos.enabled:
            self._book_chaos(book)
        i = book.index
        self._publish(self._bt[i], book.book_ticker(), i, book.update_id)
        if trade:
            taker_buys, price, qty = book.random_trade()
            self._print_trade(book, taker_buys, price, qty)

    def _print_trade(self, book: Book, taker_buys: bool, price: int, qty: int) -> None:
        self.stats["trades_printed"] += 1
        if self.subs.get(self._tr[book.index]):
            self._publish(self._tr[book.index],
                          book.trade_frame(book.trade_id, price, qty, not taker_buys, now_ms()))
        self.exchange.on_trade(book, taker_buys, price, qty, book.trade_id)

    def _depth_tick(self) -> None:
        self._depth_timer = self._loop.call_later(0.1, self._depth_tick)
        self._drop_slow_consumers()
        if self.paused or self.cfg.replay_file:
            return
        self._depth_count += 1
        slow = self._depth_count % 10 == 0
        self._diff_tick(slow)
        for b in self.books:
            refreshed = False
            for levels in (5, 10, 20):
                for name in (f"{b.stream_symbol}@depth{levels}@100ms",
                             f"{b.stream_symbol}@depth{levels}" if slow else None):
                    if name and self.subs.get(name):
                        if not refreshed:
                            b.refresh_depth()
                            refreshed = True
                        self._publish(name, b.depth_frame(levels))

    # -- controls (call on the loop) --
    def pause_market(self) -> None:
        """Stop generating book events (the book freezes; connections stay up)."""
        self.paused = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def resume_market(self) -> None:
        self.paused = False
        if self.cfg.replay_file or self._loop is None or self._timer is not None:
            return
        now = self._loop.time()
        for i in range(len(self.books)):
            self._next_at[i] = now + self._arrivals.expovariate(self.event_rate)
        self._timer = self._loop.call_at(min(self._next_at), self._tick)

    def set_event_rate(self, per_s: float) -> None:
        """Book events per second per symbol (trade rate scales to keep the trade share)."""
        if not per_s > 0:
            raise ValueError(f"event rate: expected > 0, got {per_s}")
        share = self.cfg.trade_rate / self.cfg.event_rate
        self.event_rate = per_s
        for b in self.books:
            b.set_rates(per_s, share * per_s)
        if not self.paused:
            self.pause_market()
            self.resume_market()

    def trade_at(self, symbol: str, price: str, qty: str, taker_side: str) -> None:
        """Print a market trade now (fills resting orders at/through `price`)."""
        book = self.by_symbol[symbol]
        p = parse_decimal(price, book.pexp)
        q = parse_decimal(qty, book.qexp)
        if p is None or q is None or not p[1] or not q[1]:
            raise ValueError(f"trade_at: price {price!r} / qty {qty!r} off the instrument grid")
        if taker_side not in ("BUY", "SELL"):
            raise ValueError(f"taker_side: expected BUY or SELL, got {taker_side!r}")
        book.trade_id += 1
        self._print_trade(book, taker_side == "BUY", p[0], q[0])
        self._flush_user_events()
