"""The WebSocket API at /ws-api/v3: Binance's request/response envelope, signatures, recvWindow,
rate limits and error codes, on top of the account model in engine.sim.exchange.

Request:  {"id": <int|str|null>, "method": "order.place", "params": {...}}
Response: {"id": ..., "status": 200, "result": ..., "rateLimits": [...]}
          {"id": ..., "status": 4xx, "error": {"code": -2010, "msg": "..."}, "rateLimits": [...]}
"""
from __future__ import annotations

import collections
import logging
import re
import time
from typing import Callable

import msgspec

from engine.sim import auth
from engine.sim.chaos import Chaos
from engine.sim.exchange import ApiError, Exchange, Order, unknown_order
from engine.sim.market import DECIMAL_RANGE, Book, parse_decimal, wire_decimal

log = logging.getLogger("mm.sim")
_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
CLIENT_ID_RANGE = "^[a-zA-Z0-9-_]{1,36}$"
ORDER_LOG = 100_000              # order requests kept for inspection (the newest)
_ORDER_METHODS = frozenset(("order.place", "order.cancelReplace", "order.cancel",
                            "openOrders.cancelAll"))
_ORDER_FIELDS = ("symbol", "side", "type", "price", "quantity", "newClientOrderId",
                 "cancelReplaceMode")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                f"or malformed.")


def illegal(name: str, legal: str) -> ApiError:
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range "
                                f"is '{legal}'.")


class Session:
    """Per-connection API state: logon, user-data subscriptions, default returnRateLimits."""

    __slots__ = ("send", "number", "connected_since", "authorized_since", "user_subs",
                 "next_sub_id", "return_rate_limits")

    def __init__(self, send: Callable[[bytes], None], return_rate_limits: bool = True,
                 number: int = 0):
        self.send = send
        self.number = number                # connection number (cancel_log actor)
        self.connected_since = now_ms()
        self.authorized_since = 0           # 0 = not logged on
        self.user_subs: list[int] = []
        self.next_sub_id = 0
        self.return_rate_limits = return_rate_limits


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


class Api:
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

    def _hide_from_status(self, order: Order) -> None:
        """Chaos status_lag: order.status says -2013 for this resting order for a while."""
        now = time.perf_counter_ns()
        if len(self._hidden) > 10_000:      # bounded: forget the lags that are over
            self._hidden = {k: v for k, v in self._hidden.items() if v > now}
        self._hidden[order.order_id] = now + int(self.chaos.lag_s() * 1e9)

    def _status_lags(self, order: Order) -> bool:
        until = self._hidden.get(order.order_id)
        if until is None:
            return False
        if time.perf_counter_ns() < until:
            return True
        del self._hidden[order.order_id]
        return False

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

    def _chaos_refusal(self) -> None:
        """Chaos: refuse a cancel-type request before doing anything (the order keeps resting)."""
        if self.chaos.enabled and self.chaos.roll("refuse_cancel"):
            status, code, msg = self.chaos.refusal()
            raise ApiError(status, code, msg)

    def _chaos_phantom(self) -> bool:
        return self.chaos.enabled and self.chaos.roll("phantom_unknown")

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

    # -- authentication --
    def _authorize(self, session: Session, params: dict, kind: str, now: int) -> None:
        if kind == "none":
            return
        if kind == "session":
            if not session.authorized_since:
                raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
            return
        self._check_timestamp(params, now)
        if kind == "signed" and session.authorized_since and "signature" not in params:
            return                  # a logged-on session signs nothing more
        api_key = params.get("apiKey")
        if not api_key:
            raise mandatory("apiKey")
        signature = params.get("signature")
        if not signature or not isinstance(signature, str):
            raise mandatory("signature")
        if api_key != self.creds.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = auth.signature_payload(params)
        if kind == "logon":
            ok = self.creds.check_ed25519(payload, signature)
        else:
            ok = self.creds.check_hmac(payload, signature) if len(signature) == 64 \
                else self.creds.check_ed25519(payload, signature)
        if not ok:
            raise ApiError(400, -1022, "Signature for this request is not valid.")

    def _check_timestamp(self, params: dict, now: int) -> None:
        ts = params.get("timestamp")
        if isinstance(ts, str) and ts.isdigit():
            ts = int(ts)
        if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
            raise mandatory("timestamp")
        if ts > 100_000_000_000_000:        # microseconds
            ts = ts / 1000
        window = params.get("recvWindow", self.recv_window_ms)
        try:
            window = float(window)
        except (TypeError, ValueError):
            raise mandatory("recvWindow") from None
        if not 0 < window <= 60_000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        if ts >= now + 1000:
            raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the "
                                       "server's time.")
        if now - ts > window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    # -- parameters --
    def _book(self, params: dict) -> Book:
        symbol = params.get("symbol")
        if not symbol or not isinstance(symbol, str):
            raise mandatory("symbol")
        book = self.ex.by_symbol.get(symbol)
        if book is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return book

    @staticmethod
    def _decimal(params: dict, name: str, exp: int) -> tuple[int, bool]:
        raw = params.get(name)
        if raw is None or raw == "":
            raise mandatory(name)
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise illegal(name, DECIMAL_RANGE)
        parsed = parse_decimal(str(raw), exp)
        if parsed is None:
            raise illegal(name, DECIMAL_RANGE)
        return parsed

    @staticmethod
    def _client_id(params: dict, name: str) -> str | None:
        cid = params.get(name)
        if cid is None:
            return None
        if not isinstance(cid, str) or not _CLIENT_ID_RE.match(cid):
            raise illegal(name, CLIENT_ID_RANGE)
        return cid

    def _new_order_args(self, book: Book, params: dict) -> tuple:
        """Validate the new-order params; returns the arguments of Exchange.place."""
        side = params.get("side")
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        type_ = params.get("type")
        if not type_:
            raise mandatory("type")
        if type_ not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise ApiError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce")
        if type_ == "LIMIT":
            if not tif:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise ApiError(400, -1115, "Invalid timeInForce.")
        else:
            tif = "GTC"
        qty, qty_exact = self._decimal(params, "quantity", book.qexp)
        if type_ == "MARKET":
            price, price_exact = (book.ask if side == "BUY" else book.bid), True
        else:
            price, price_exact = self._decimal(params, "price", book.pexp)
        client_id = self._client_id(params, "newClientOrderId")
        resp_type = params.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise ApiError(400, -1100, "Illegal characters found in parameter "
                                       "'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.")
        if not price_exact or price <= 0 or price % book.tick:
            raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if not qty_exact or qty <= 0 or qty % book.lot:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if price * qty < book.inst.min_notional_units:
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")
        return side == "BUY", type_, tif, price, qty, client_id, resp_type

    def _place(self, book: Book, args: tuple, actor: int = 0) -> dict:
        is_buy, type_, tif, price, qty, client_id, resp_type = args
        f = self.faults
        if f.reject_count > 0:
            f.reject_count -= 1
            self.stats["rejects"] += 1
            raise ApiError(400, f.reject_code, f.reject_msg)
        order, fills = self.ex.place(book, is_buy, type_, tif, price, qty,
                                     client_id or f"sim{self.ex._next_order_id}x", actor)
        if (self.chaos.enabled and order.status in ("NEW", "PARTIALLY_FILLED")
                and self.chaos.roll("status_lag")):
            self._hide_from_status(order)
        return self._order_response(order, resp_type, fills)

    @staticmethod
    def _order_response(order: Order, resp_type: str, fills: list) -> dict:
        if resp_type == "ACK":
            return {"symbol": order.book.symbol, "orderId": order.order_id, "orderListId": -1,
                    "clientOrderId": order.client_id, "transactTime": order.time_ms}
        return order.as_result(fills if resp_type == "FULL" else None)

    def _locate(self, book: Book, params: dict, id_name: str, cid_name: str,
                finished_too: bool = False) -> Order:
        """The order the request names by venue id or client id: an open one (cancels), or
        with `finished_too` any order the venue keeps (order.status)."""
        order_id = params.get(id_name)
        client_id = params.get(cid_name)
        if order_id is None and client_id is None:
            raise mandatory(f"{id_name}' or '{cid_name}")
        if order_id is not None:
            try:
                order_id = int(order_id)
            except (TypeError, ValueError):
                raise illegal(id_name, "^[0-9]{1,20}$") from None
        if finished_too:
            return self.ex.lookup(book, order_id, client_id)
        return self.ex.find(book, order_id, client_id)

    # -- methods --
    def _ping(self, session, params):
        return {}

    def _time(self, session, params):
        return {"serverTime": now_ms()}

    def _exchange_info(self, session, params):
        return {"timezone": "UTC", "serverTime": now_ms(),
                "rateLimits": [{k: v for k, v in w.entry().items() if k != "count"}
                               for w in (self.weight, self.orders_10s, self.orders_day)],
                "exchangeFilters": [], "symbols": self.instruments_info()}

    def _logon(self, session: Session, params):
        now = now_ms()
        session.authorized_since = now
        if "returnRateLimits" in params:
            session.return_rate_limits = params["returnRateLimits"] is not False
        return self._session_status(session, params)

    def _session_status(self, session: Session, params):
        return {"apiKey": self.creds.api_key if session.authorized_since else None,
                "authorizedSince": session.authorized_since or None,
                "connectedSince": session.connected_since,
                "returnRateLimits": session.return_rate_limits, "serverTime": now_ms(),
                "userDataStream": bool(session.user_subs)}

    def _logout(self, session: Session, params):
        session.authorized_since = 0
        return self._session_status(session, params)

    def _order_place(self, session, params):
        book = self._book(params)
        return self._place(book, self._new_order_args(book, params), session.number)

    def _order_test(self, session, params):
        book = self._book(params)
        self._new_order_args(book, params)
        return {}

    def _order_cancel(self, session, params):
        book = self._book(params)
        cancel_cid = self._client_id(params, "newClientOrderId")
        order = self._locate(book, params, "orderId", "origClientOrderId")
        self._chaos_refusal()
        if self._chaos_phantom():
            raise unknown_order()           # under load: "unknown" while it still rests
        return self.ex.cancel(order, cancel_cid, session.number)

    def _order_status(self, session, params):
        book = self._book(params)
        order = self._locate(book, params, "orderId", "origClientOrderId", finished_too=True)
        if order.status in ("NEW", "PARTIALLY_FILLED") and (
                self._status_lags(order) or self._chaos_phantom()):
            raise ApiError(400, -2013, "Order does not exist.")
        return order.as_status()

    def _cancel_all(self, session, params):
        book = self._book(params)
        orders = sorted(self.ex.open[book.symbol].values(), key=lambda o: o.order_id)
        if not orders:
            raise unknown_order()
        return [self.ex.cancel(o, None, session.number) for o in orders]

    def _cancel_replace(self, session, params):
        book = self._book(params)
        mode = params.get("cancelReplaceMode")
        if not mode:
            raise mandatory("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise ApiError(400, -1100, "Illegal characters found in parameter "
                                       "'cancelReplaceMode'; legal range is 'STOP_ON_FAILURE, "
                                       "ALLOW_FAILURE'.")
        cancel_cid = self._client_id(params, "cancelNewClientOrderId")
        args = self._new_order_args(book, params)
        self._chaos_refusal()
        cancel_resp = new_resp = None
        cancel_err = new_err = None
        try:
            order = self._locate(book, params, "cancelOrderId", "cancelOrigClientOrderId")
            if self.chaos.enabled and self.chaos.roll("fill_during_replace"):
                self.ex.taker_fill(order, order.qty - order.filled)   # the race: filled first
                if order.status == "FILLED":
                    raise unknown_order()
            if self._chaos_phantom():
                raise unknown_order()
            cancel_resp = self.ex.cancel(order, cancel_cid, session.number)
        except ApiError as e:
            cancel_err = {"code": e.code, "msg": e.msg}
        if cancel_err is None or mode == "ALLOW_FAILURE":
            try:
                new_resp = self._place(book, args, session.number)
            except ApiError as e:
                new_err = {"code": e.code, "msg": e.msg}
        data = {"cancelResult": "FAILURE" if cancel_err else "SUCCESS",
                "newOrderResult": ("SUCCESS" if new_resp is not None else
                                   "FAILURE" if new_err else "NOT_ATTEMPTED"),
                "cancelResponse": cancel_err or cancel_resp,
                "newOrderResponse": new_err or new_resp}
        if cancel_err is None and new_err is None:
            return data
        if cancel_err is not None and new_resp is None:
            raise ApiError(400, -2022, "Order cancel-replace failed.", data)
        raise ApiError(409, -2021, "Order cancel-replace partially failed.", data)

    def _open_orders(self, session, params):
        if params.get("symbol") is not None:
            books = [self._book(params)]
        else:
            books = self.ex.books
        return [o.as_status() for b in books
                for o in sorted(self.ex.open[b.symbol].values(), key=lambda o: o.order_id)]

    def _account_status(self, session, params):
        balances = self.ex.balance_strings()
        return {"makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
                "sellerCommission": 0, "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "brokered": False, "requireSelfTradePrevention": False,
                "preventSor": False, "updateTime": now_ms(), "accountType": "SPOT",
                "balances": [{"asset": a, "free": v["free"], "locked": v["locked"]}
                             for a, v in balances.items()],
                "permissions": ["SPOT"], "uid": 1}

    def _my_trades(self, session, params):
        """The account's trades of one symbol, Binance's rules: fromId -> ids >= fromId,
        oldest first; startTime / endTime -> that window (at most 24 h); neither -> the most
        recent; orderId -> that order's; limit default 500, at most 1000."""
        book = self._book(params)
        trades = self.ex.trades[book.symbol]
        limit = _int_param(params, "limit", 500)
        if not 1 <= limit <= 1000:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'; "
                                       "legal range is '1000'.")
        from_id = _int_param(params, "fromId", None)
        start, end = _int_param(params, "startTime", None), _int_param(params, "endTime", None)
        order_id = _int_param(params, "orderId", None)
        if from_id is not None and (start is not None or end is not None):
            raise ApiError(400, -1106, "Parameter 'startTime' sent when not required.")
        if start is not None and end is not None and end - start > 86_400_000:
            raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
        out = [t for t in trades if order_id is None or t["orderId"] == order_id]
        if from_id is not None:
            return [t for t in out if t["id"] >= from_id][:limit]
        if start is not None or end is not None:
            start = end - 86_400_000 if start is None else start
            end = start + 86_400_000 if end is None else end
            return [t for t in out if start <= t["time"] <= end][:limit]
        return out[-limit:]

    def _uds_subscribe(self, session: Session, params):
        sub = session.next_sub_id
        session.next_sub_id += 1
        session.user_subs.append(sub)
        return {"subscriptionId": sub}

    def _uds_unsubscribe(self, session: Session, params):
        sub = params.get("subscriptionId")
        if sub is None:
            session.user_subs.clear()
        elif sub in session.user_subs:
            session.user_subs.remove(sub)
        else:
            raise ApiError(400, -2030, "Subscription not found.")
        return {}


def instrument_info(book: Book) -> dict:
    """The exchangeInfo entry of one symbol (its filters at Binance's 8 decimals)."""
    i = book.inst
    p, q = book.pexp, book.qexp
    return {"symbol": i.symbol, "status": "TRADING", "baseAsset": i.base,
            "baseAssetPrecision": 8, "quoteAsset": i.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": wire_decimal(book.tick, p),
                 "maxPrice": wire_decimal(10 ** 6 * 10 ** -p, p) if p < 0 else "1000000",
                 "tickSize": wire_decimal(book.tick, p)},
                {"filterType": "LOT_SIZE", "minQty": wire_decimal(book.lot, q),
                 "maxQty": "9000.00000000", "stepSize": wire_decimal(book.lot, q)},
                {"filterType": "NOTIONAL", "minNotional": wire_decimal(
                    i.min_notional_units, p + q), "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False,
                 "avgPriceMins": 5}]}


def _int_param(params: dict, name: str, default):
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
