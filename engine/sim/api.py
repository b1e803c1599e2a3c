"""The WebSocket API at /ws-api/v3: Binance's request/response envelope, signatures, recvWindow,
rate limits and error codes, on top of the account model in engine.sim.exchange.

This module dispatches a request frame (rate windows, authentication, chaos on the answer) to
its method; the methods live beside it, by kind: api_session.py (Session, authentication,
logon, user-data subscriptions), api_orders.py (order entry, cancel-replace),
api_queries.py (status, account, trades, exchangeInfo); api_params.py reads their parameters.

Request:  {"id": <int|str|null>, "method": "order.place", "params": {...}}
Response: {"id": ..., "status": 200, "result": ..., "rateLimits": [...]}
          {"id": ..., "status": 4xx, "error": {"code": -2010, "msg": "..."}, "rateLimits": [...]}
"""
from __future__ import annotations

import collections
import logging
import time
from typing import Callable

import msgspec

from engine.sim import auth
from engine.sim.api_orders import OrderMethods
from engine.sim.api_params import mandatory, now_ms
from engine.sim.api_queries import QueryMethods
from engine.sim.api_session import Session, SessionMethods
from engine.sim.chaos import Chaos
from engine.sim.exchange import ApiError, Exchange

log = logging.getLogger("mm.sim")
ORDER_LOG = 100_000              # order requests kept for inspection (the newest)
_ORDER_METHODS = frozenset(("order.place", "order.cancelReplace", "order.cancel",
                            "openOrders.cancelAll"))
_ORDER_FIELDS = ("symbol", "side", "type", "price", "quantity", "newClientOrderId",
                 "cancelReplaceMode")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class _Window:
    """A fixed-window counter (Binance counts per calendar interval)."""

    __slots__ = ("type", "interval", "num", "limit", "span_ms", "start", "count")

    def __init__(self, type_: str, interval: str, num: int, limit: int):
        self.type, self.interval, self.num, self.limit = type_, interval, num, limit
        self.span_ms = num * {"SECOND": 1000, "MINUTE": 60_000, "DAY": 86_400_000}[interval]
        self.start, self.count = 0, 0

    def add(self, n: int, now: int) -> bool:
        """Count n; False when that takes the window over its limit."""
        start = now - now % self.span_ms
        if start != self.start:
            self.start, self.count = start, 0
        self.count += n
        return self.count <= self.limit

    def entry(self) -> dict:
        return {"rateLimitType": self.type, "interval": self.interval, "intervalNum": self.num,
                "limit": self.limit, "count": self.count}


class Faults:
    """Switches tests flip on the order side (see SimServer for the market side)."""

    def __init__(self):
        self.reject_count = 0
        self.reject_code = -2010
        self.reject_msg = "Order rejected by the simulator (fault injection)."


class Api(SessionMethods, OrderMethods, QueryMethods):
    """Dispatch of WS API requests for one simulated account."""

    def __init__(self, exchange: Exchange, credentials: auth.Credentials, *, recv_window_ms: int,
                 orders_per_10s: int, orders_per_day: int, weight_per_minute: int,
                 on_order_frame: Callable[[int, object, object], None],
                 instruments_info: Callable[[], list[dict]]):
        self.ex = exchange
        self.creds = credentials
        self.recv_window_ms = recv_window_ms
        self.weight = _Window("REQUEST_WEIGHT", "MINUTE", 1, weight_per_minute)
        self.orders_10s = _Window("ORDERS", "SECOND", 10, orders_per_10s)
        self.orders_day = _Window("ORDERS", "DAY", 1, orders_per_day)
        self.on_order_frame = on_order_frame
        self.instruments_info = instruments_info
        self.faults = Faults()
        # chaos hooks the server installs: defer(delay_s, fn, *args) runs fn later on the loop;
        # after_late() delivers the reports a late execution made
        self.defer: Callable | None = None
        self.after_late: Callable[[], None] = lambda: None
        self._hidden: dict[int, int] = {}   # status_lag: venue order id -> shown from (ns)
        # late executions carried out: (perf_counter_ns, client order id), newest kept
        self.late_log: collections.deque = collections.deque(maxlen=ORDER_LOG)
        self.chaos = Chaos({}, 0)           # the server installs the configured one
        self.stats = {"requests": 0, "orders_received": 0, "errors": 0, "rejects": 0,
                      "malformed_requests": 0}
        # every order request as received, oldest first (tests compare them with a backtest):
        # (method, the order fields of its params, the client id of the order it cancels,
        # arrival perf_counter_ns)
        self.order_requests: collections.deque = collections.deque(maxlen=ORDER_LOG)
        # method -> (handler, weight, auth kind, counts as an order)
        self.methods = {
            "ping": (self._ping, 1, "none", False),
            "time": (self._time, 1, "none", False),
            "exchangeInfo": (self._exchange_info, 20, "none", False),
            "session.logon": (self._logon, 2, "logon", False),
            "session.status": (self._session_status, 2, "none", False),
            "session.logout": (self._logout, 2, "none", False),
            "order.place": (self._order_place, 1, "signed", True),
            "order.test": (self._order_test, 1, "signed", False),
            "order.cancel": (self._order_cancel, 1, "signed", False),
            "order.status": (self._order_status, 4, "signed", False),
            "order.cancelReplace": (self._cancel_replace, 1, "signed", True),
            "openOrders.cancelAll": (self._cancel_all, 1, "signed", False),
            "openOrders.status": (self._open_orders, 6, "signed", False),
            "account.status": (self._account_status, 20, "signed", False),
            "myTrades": (self._my_trades, 20, "signed", False),
            "userDataStream.subscribe": (self._uds_subscribe, 2, "session", False),
            "userDataStream.subscribe.signature": (self._uds_subscribe, 2, "signed", False),
            "userDataStream.unsubscribe": (self._uds_unsubscribe, 2, "none", False),
        }

    # -- entry point: one text frame --

    def handle(self, session: Session, t_arrival_ns: int, payload: bytes) -> None:
        """Answer one request frame on `session` (never raises)."""
        self.stats["requests"] += 1
        try:
            req = _decode(payload)
            if not isinstance(req, dict):
                raise ValueError
        except (msgspec.DecodeError, ValueError):
            self.stats["malformed_requests"] += 1
            self._error(session, None, ApiError(400, -1102, "Malformed request: not a JSON "
                                                            "object."), True)
            return
        req_id = req.get("id")
        method = req.get("method")
        params = req.get("params") or {}
        if isinstance(method, str) and method.startswith("v3/"):
            method = method[3:]
        if method in ("order.place", "order.cancelReplace") and isinstance(params, dict):
            self.stats["orders_received"] += 1
            self.on_order_frame(t_arrival_ns, params.get("symbol"), params.get("newClientOrderId"))
        if method in _ORDER_METHODS and isinstance(params, dict):
            self._log_order_request(method, params, t_arrival_ns)
        show_limits = session.return_rate_limits
        try:
            if not isinstance(method, str) or not method:
                raise mandatory("method")
            if not isinstance(params, dict):
                raise mandatory("params")
            if params.get("returnRateLimits") is False:
                show_limits = False
            entry = self.methods.get(method)
            if entry is None:
                raise ApiError(400, -1020, "This operation is not supported.")
            handler, weight, kind, is_order = entry
            now = now_ms()
            if not self.weight.add(weight, now):
                raise ApiError(429, -1003, f"Too much request weight used; current limit is "
                                           f"{self.weight.limit} request weight per 1 MINUTE. "
                                           f"Please use WebSocket Streams for live updates to "
                                           f"avoid polling the API.",
                               {"serverTime": now, "retryAfter": self.weight.start
                                + self.weight.span_ms})
            self._authorize(session, params, kind, now)
            if is_order:
                ok10 = self.orders_10s.add(1, now)
                okday = self.orders_day.add(1, now)
                if not ok10 or not okday:
                    w = self.orders_10s if not ok10 else self.orders_day
                    raise ApiError(429, -1015, f"Too many new orders; current limit is "
                                               f"{w.limit} orders per {w.num} {w.interval}.",
                                   {"serverTime": now, "retryAfter": w.start + w.span_ms})
            if (is_order and self.chaos.enabled and self.defer is not None
                    and self.chaos.roll("late_execution")):
                self.defer(self.chaos.lag_s(), self._execute_late, handler, session, params)
                return                      # no answer, ever: the engine must ask
            try:
                result = handler(session, params)
            except ApiError:
                raise
            except Exception:       # a simulator bug: answer like the venue's unknown error
                log.exception("%s failed", method)
                raise ApiError(500, -1000, "An unknown error occurred while processing the "
                                           "request.") from None
        except ApiError as e:
            if not self._answer_lost(method):
                self._error(session, req_id, e, show_limits, method in ("order.place",
                                                                          "order.cancelReplace"))
            return
        if self._answer_lost(method):
            return
        out = {"id": req_id, "status": 200, "result": result}
        if show_limits:
            out["rateLimits"] = self._limits(method in ("order.place", "order.cancelReplace"))
        session.send(_encode(out))

    def _execute_late(self, handler, session: Session, params: dict) -> None:
        """Chaos late_execution: the unanswered request is carried out now."""
        self.stats["late_executions"] = self.stats.get("late_executions", 0) + 1
        self.late_log.append((time.perf_counter_ns(), params.get("newClientOrderId")))
        try:
            handler(session, params)
        except Exception:                   # refused (filters, balance): still no answer
            pass
        self.after_late()

    _LOSABLE = frozenset(("order.place", "order.cancelReplace", "order.cancel", "order.status"))

    def _log_order_request(self, method: str, params: dict, t_arrival_ns: int) -> None:
        fields = {k: params[k] for k in _ORDER_FIELDS if k in params}
        target = params.get("origClientOrderId") or params.get("cancelOrigClientOrderId")
        venue_id = params.get("orderId", params.get("cancelOrderId"))
        if target is None and venue_id is not None:
            try:
                o = self.ex.orders.get(int(venue_id))
            except (TypeError, ValueError):
                o = None
            target = o.client_id if o is not None else None
        self.order_requests.append((method, fields, target, t_arrival_ns))

    def _answer_lost(self, method) -> bool:
        """Chaos: the request was carried out (or refused) but its answer never leaves."""
        return method in self._LOSABLE and self.chaos.enabled and self.chaos.roll("lost_answer")

    def _error(self, session: Session, req_id, e: ApiError, show_limits: bool,
               is_order: bool = False) -> None:
        self.stats["errors"] += 1
        key = f"error {e.code} {e.msg[:40]}"  # by code and message: what the venue refused and why
        self.stats[key] = self.stats.get(key, 0) + 1
        err = {"code": e.code, "msg": e.msg}
        if e.data is not None:
            err["data"] = e.data
        out = {"id": req_id, "status": e.status, "error": err}
        if show_limits:
            out["rateLimits"] = self._limits(is_order)
        session.send(_encode(out))

    def _limits(self, orders: bool) -> list[dict]:
        if orders:
            return [self.orders_10s.entry(), self.orders_day.entry(), self.weight.entry()]
        return [self.weight.entry()]
