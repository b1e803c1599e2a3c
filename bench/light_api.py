"""The order side of the bench's light venue: Binance's WebSocket API (PROTOCOLS.md section 3) as
far as the engine, the reflex and the asyncio bot use it, answered from byte templates.

Methods: ping, time, exchangeInfo, session.logon / status / logout, userDataStream.subscribe
(.signature) / unsubscribe, order.place, order.cancelReplace (STOP_ON_FAILURE and
ALLOW_FAILURE, -2022 / -2021 with the legs' data), order.cancel (by orderId or client id),
order.status (open and recently finished orders), openOrders.status, openOrders.cancelAll,
account.status, myTrades (always empty: nothing matches here; the journal agent asks).
Envelopes, result fields and error codes are Binance's.

What it leaves out, on purpose (it is a bench venue):
  - signatures are NOT checked (apiKey, signature and timestamp are accepted as sent), there are
    no recvWindow or rate-limit refusals (a constant rateLimits block is returned unless
    returnRateLimits=false), and no filters are checked;
  - there is no matching: orders rest until canceled, never fill, are never refused for crossing
    (post-only), and balances never move.
A session subscribed to its user data (userDataStream.subscribe) gets the executionReports a
live venue sends for what it did: NEW for a placed order, CANCELED for a canceled one (both legs
of a cancelReplace), after the answer and in the same write. They are queued on the session
(`Session.events`) for the server to send; clients that check their report stream (the engine
replaces a connection whose accepted orders get no report) need them.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import Callable

import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_CID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
FINISHED_KEPT = 50_000           # finished orders order.status still knows (the newest)

_ENVELOPE_OK = b'{"id":%s,"status":200,"result":%s%s}'
_ENVELOPE_ERR = b'{"id":%s,"status":%d,"error":{"code":%d,"msg":"%s"%s}%s}'
_LIMITS = (b',"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,'
           b'"limit":1000000000,"count":1},{"rateLimitType":"ORDERS","interval":"DAY",'
           b'"intervalNum":1,"limit":1000000000000,"count":1},{"rateLimitType":"REQUEST_WEIGHT",'
           b'"interval":"MINUTE","intervalNum":1,"limit":1000000000000,"count":1}]')
_ACK = b'{"symbol":"%s","orderId":%d,"orderListId":-1,"clientOrderId":"%s","transactTime":%d}'
_RESULT = (b'{"symbol":"%s","orderId":%d,"orderListId":-1,"clientOrderId":"%s","transactTime":%d,'
           b'"price":"%s","origQty":"%s","executedQty":"0.00000000","cummulativeQuoteQty":'
           b'"0.00000000","status":"NEW","timeInForce":"GTC","type":"%s","side":"%s",'
           b'"workingTime":%d,"selfTradePreventionMode":"NONE"%s}')
_STATUS = (b'{"symbol":"%s","orderId":%d,"orderListId":-1,"clientOrderId":"%s","price":"%s",'
           b'"origQty":"%s","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000",'
           b'"status":"%s","timeInForce":"GTC","type":"%s","side":"%s","stopPrice":"0.00000000",'
           b'"icebergQty":"0.00000000","time":%d,"updateTime":%d,"isWorking":true,'
           b'"workingTime":%d,"origQuoteOrderQty":"0.00000000","selfTradePreventionMode":"NONE"}')
_CANCELED = (b'{"symbol":"%s","origClientOrderId":"%s","orderId":%d,"orderListId":-1,'
             b'"clientOrderId":"%s","transactTime":%d,"price":"%s","origQty":"%s",'
             b'"executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED",'
             b'"timeInForce":"GTC","type":"%s","side":"%s","selfTradePreventionMode":"NONE"}')
_UNKNOWN_ORDER = b'{"code":-2011,"msg":"Unknown order sent."}'
# an executionReport as the WS API's user-data subscription delivers it (PROTOCOLS.md section 4)
_REPORT = (b'{"subscriptionId":%d,"event":{"e":"executionReport","E":%d,"s":"%s","c":"%s",'
           b'"S":"%s","o":"%s","f":"GTC","q":"%s","p":"%s","P":"0.00000000","F":"0.00000000",'
           b'"g":-1,"C":"%s","x":"%s","X":"%s","r":"NONE","i":%d,"l":"0.00000000",'
           b'"z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":%d,"t":-1,"v":3,"I":%d,'
           b'"w":%s,"m":false,"M":false,"O":%d,"Z":"0.00000000","Y":"0.00000000",'
           b'"Q":"0.00000000","W":%d,"V":"NONE"}}')


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str, data: bytes = b""):
        super().__init__(msg)
        self.status, self.code, self.msg, self.data = status, code, msg, data


def _unknown_order() -> ApiError:
    return ApiError(400, -2011, "Unknown order sent.")


def _mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                                f"malformed.")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Order:
    __slots__ = ("order_id", "symbol", "cid", "side", "type", "price", "qty", "time_ms",
                 "update_ms", "status")

    def __init__(self, order_id, symbol, cid, side, type_, price, qty, t_ms):
        self.order_id, self.symbol, self.cid, self.side, self.type = (order_id, symbol, cid,
                                                                      side, type_)
        self.price, self.qty, self.time_ms, self.update_ms = price, qty, t_ms, t_ms
        self.status = b"NEW"

    def status_json(self) -> bytes:
        return _STATUS % (self.symbol, self.order_id, self.cid, self.price, self.qty, self.status,
                          self.type, self.side, self.time_ms, self.update_ms, self.time_ms)


class Session:
    """Per-connection state: logged on or not, whether answers carry rateLimits."""

    __slots__ = ("logged_on", "limits", "subs", "events")

    def __init__(self, return_rate_limits: bool = True):
        self.logged_on = False
        self.limits = return_rate_limits
        self.subs = 0
        self.events: list[bytes] = []    # executionReports to send after the answer

    def report(self, o: "Order", x: bytes, cid: bytes, orig_cid: bytes, exec_id: int) -> None:
        """Queue one executionReport for `o` when this session subscribed to its user data."""
        if self.subs:
            t = o.update_ms
            self.events.append(_REPORT % (self.subs - 1, t, o.symbol, cid, o.side, o.type, o.qty,
                                          o.price, orig_cid, x, o.status, o.order_id, t,
                                          exec_id, b"true" if x == b"NEW" else b"false",
                                          o.time_ms, o.time_ms))


class LightApi:
    """One account's open orders and the answers to WS API requests.

    `on_order(t_arrival_ns, client_id)` is called for every order.place / order.cancelReplace
    frame (the venue's wire clock); `handle(session, t_ns, payload)` returns the answer bytes
    (a JSON text payload, never raises)."""

    def __init__(self, instruments: list[dict], balances: dict[str, str],
                 on_order: Callable[[int, str], None]):
        self.instruments = instruments                  # exchangeInfo symbol entries
        self.symbols = {i["symbol"]: i for i in instruments}
        self.balances = balances
        self.on_order = on_order
        self.open: dict[tuple[bytes, bytes], Order] = {}
        self.by_id: dict[int, Order] = {}
        self.finished: OrderedDict = OrderedDict()      # (symbol, cid) -> Order
        self.next_id = 1
        self.next_exec = 0                              # execution ids (the reports' I)
        self.stats = {"requests": 0, "orders_received": 0, "errors": 0, "malformed": 0}
        self.methods = {
            "ping": self._empty, "time": self._time, "exchangeInfo": self._exchange_info,
            "session.logon": self._logon, "session.status": self._session_status,
            "session.logout": self._logout,
            "userDataStream.subscribe": self._subscribe,
            "userDataStream.subscribe.signature": self._subscribe,
            "userDataStream.unsubscribe": self._empty,
            "order.place": self._place, "order.cancelReplace": self._cancel_replace,
            "order.cancel": self._cancel, "order.status": self._order_status,
            "openOrders.status": self._open_orders, "openOrders.cancelAll": self._cancel_all,
            "account.status": self._account, "myTrades": self._my_trades,
        }

    # ---------------------------------------------------------------- entry point
    def handle(self, session: Session, t_ns: int, payload: bytes) -> bytes:
        self.stats["requests"] += 1
        try:
            req = _decode(payload)
            if not isinstance(req, dict):
                raise ValueError
        except (msgspec.DecodeError, ValueError):
            self.stats["malformed"] += 1
            return self._error(b"null", ApiError(400, -1102, "Malformed request: not a JSON "
                                                              "object."), session.limits)
        rid = _encode(req.get("id"))
        method = req.get("method")
        params = req.get("params") or {}
        if isinstance(method, str) and method.startswith("v3/"):
            method = method[3:]
        limits = session.limits and params.get("returnRateLimits") is not False \
            if isinstance(params, dict) else session.limits
        if method in ("order.place", "order.cancelReplace") and isinstance(params, dict):
            self.stats["orders_received"] += 1
            cid = params.get("newClientOrderId")
            if isinstance(cid, str):
                self.on_order(t_ns, cid)
        handler = self.methods.get(method) if isinstance(method, str) else None
        try:
            if handler is None:
                raise ApiError(400, -1020, "This operation is not supported.")
            if not isinstance(params, dict):
                raise _mandatory("params")
            result = handler(session, params)
        except ApiError as e:
            return self._error(rid, e, limits)
        except Exception:             # a malformed value this venue did not foresee: the
            return self._error(rid, ApiError(500, -1000, "An unknown error occurred while "
                                                         "processing the request."), limits)
        return _ENVELOPE_OK % (rid, result, _LIMITS if limits else b"")

    def _error(self, rid: bytes, e: ApiError, limits: bool) -> bytes:
        self.stats["errors"] += 1
        data = b',"data":' + e.data if e.data else b""
        return _ENVELOPE_ERR % (rid, e.status, e.code, e.msg.encode(), data,
                                _LIMITS if limits else b"")

    # ---------------------------------------------------------------- session and info
    def _empty(self, session, params):
        return b"{}"

    def _time(self, session, params):
        return b'{"serverTime":%d}' % now_ms()

    def _exchange_info(self, session, params):
        wanted = params.get("symbols") or ([params["symbol"]] if params.get("symbol") else None)
        if wanted:
            missing = [s for s in wanted if s not in self.symbols]
            if missing:
                raise ApiError(400, -1121, "Invalid symbol.")
            entries = [self.symbols[s] for s in wanted]
        else:
            entries = self.instruments
        return _encode({"timezone": "UTC", "serverTime": now_ms(), "rateLimits": [],
                        "exchangeFilters": [], "symbols": entries})

    def _logon(self, session, params):
        session.logged_on = True            # the bench venue checks no signature
        if "returnRateLimits" in params:
            session.limits = params["returnRateLimits"] is not False
        return self._session_status(session, params)

    def _session_status(self, session, params):
        return _encode({"apiKey": params.get("apiKey") if session.logged_on else None,
                        "authorizedSince": now_ms() if session.logged_on else None,
                        "connectedSince": now_ms(), "returnRateLimits": session.limits,
                        "serverTime": now_ms(), "userDataStream": session.subs > 0})

    def _logout(self, session, params):
        session.logged_on = False
        return self._session_status(session, params)

    def _subscribe(self, session, params):
        session.subs += 1
        return b'{"subscriptionId":%d}' % (session.subs - 1)

    def _account(self, session, params):
        return _encode({"makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
                        "sellerCommission": 0, "canTrade": True, "canWithdraw": True,
                        "canDeposit": True, "brokered": False,
                        "requireSelfTradePrevention": False, "preventSor": False,
                        "updateTime": now_ms(), "accountType": "SPOT",
                        "balances": [{"asset": a, "free": v, "locked": "0.00000000"}
                                     for a, v in self.balances.items()],
                        "permissions": ["SPOT"], "uid": 1})

    # ---------------------------------------------------------------- orders
    def _symbol(self, params) -> bytes:
        s = params.get("symbol")
        if not s:
            raise _mandatory("symbol")
        if s not in self.symbols:
            raise ApiError(400, -1121, "Invalid symbol.")
        return s.encode()

    def _new_order(self, symbol: bytes, params) -> Order:
        cid = params.get("newClientOrderId") or f"light{self.next_id}"
        if not isinstance(cid, str) or not _CID.match(cid):
            raise ApiError(400, -1100, "Illegal characters found in parameter "
                                       "'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
        side, type_ = params.get("side"), params.get("type")
        if side not in ("BUY", "SELL"):
            raise _mandatory("side")
        if type_ not in ("LIMIT", "LIMIT_MAKER"):
            raise ApiError(400, -1116, "Invalid orderType.")
        price, qty = params.get("price"), params.get("quantity")
        if not price or not qty:
            raise _mandatory("price" if not price else "quantity")
        key = (symbol, cid.encode())
        if key in self.open:
            raise ApiError(400, -2010, "Duplicate order sent.")
        o = Order(self.next_id, symbol, key[1], side.encode(), type_.encode(), str(price).encode(),
                  str(qty).encode(), now_ms())
        self.next_id += 1
        self.open[key] = o
        self.by_id[o.order_id] = o
        return o

    def _new_answer(self, o: Order, params) -> bytes:
        kind = params.get("newOrderRespType", "ACK")
        if kind == "ACK":
            return _ACK % (o.symbol, o.order_id, o.cid, o.time_ms)
        return _RESULT % (o.symbol, o.order_id, o.cid, o.time_ms, o.price, o.qty, o.type,
                          o.side, o.time_ms, b',"fills":[]' if kind == "FULL" else b"")

    def _find(self, symbol: bytes, params, id_key: str, cid_key: str) -> Order:
        oid, cid = params.get(id_key), params.get(cid_key)
        if oid is not None:
            try:
                o = self.by_id.get(int(oid))
            except (TypeError, ValueError):
                raise _mandatory(id_key) from None
            if o is None or o.symbol != symbol or (cid is not None and o.cid != cid.encode()):
                raise _unknown_order()
            return o
        if not cid:
            raise _mandatory(cid_key)
        o = self.open.get((symbol, str(cid).encode()))
        if o is None:
            raise _unknown_order()
        return o

    def _close(self, session: Session, o: Order, cancel_cid) -> bytes:
        del self.open[(o.symbol, o.cid)]
        del self.by_id[o.order_id]
        o.status, o.update_ms = b"CANCELED", now_ms()
        self.finished[(o.symbol, o.cid)] = o
        if len(self.finished) > FINISHED_KEPT:
            self.finished.popitem(last=False)
        new_cid = str(cancel_cid).encode() if cancel_cid else b"lightx%d" % o.order_id
        self.next_exec += 1
        session.report(o, b"CANCELED", new_cid, o.cid, self.next_exec)
        return _CANCELED % (o.symbol, o.cid, o.order_id, new_cid, o.update_ms, o.price, o.qty,
                            o.type, o.side)

    def _opened(self, session: Session, o: Order) -> Order:
        self.next_exec += 1
        session.report(o, b"NEW", o.cid, b"", self.next_exec)
        return o

    def _place(self, session, params):
        symbol = self._symbol(params)
        return self._new_answer(self._opened(session, self._new_order(symbol, params)), params)

    def _cancel(self, session, params):
        symbol = self._symbol(params)
        o = self._find(symbol, params, "orderId", "origClientOrderId")
        return self._close(session, o, params.get("newClientOrderId"))

    def _cancel_replace(self, session, params):
        symbol = self._symbol(params)
        mode = params.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise _mandatory("cancelReplaceMode")
        cancel_ok = new_ok = b""
        cancel_err = new_err = b""
        try:
            old = self._find(symbol, params, "cancelOrderId", "cancelOrigClientOrderId")
            cancel_ok = self._close(session, old, params.get("cancelNewClientOrderId"))
        except ApiError as e:
            if e.code == -1102:
                raise
            cancel_err = _UNKNOWN_ORDER
        if not cancel_err or mode == "ALLOW_FAILURE":
            try:
                new_ok = self._new_answer(self._opened(session, self._new_order(symbol, params)),
                                          params)
            except ApiError as e:
                new_err = b'{"code":%d,"msg":"%s"}' % (e.code, e.msg.encode())
        data = (b'{"cancelResult":"%s","newOrderResult":"%s","cancelResponse":%s,'
                b'"newOrderResponse":%s}' % (
                    b"FAILURE" if cancel_err else b"SUCCESS",
                    b"SUCCESS" if new_ok else b"FAILURE" if new_err else b"NOT_ATTEMPTED",
                    cancel_err or cancel_ok, new_err or new_ok or b"null"))
        if not cancel_err and not new_err:
            return data
        if cancel_err and not new_ok:
            raise ApiError(400, -2022, "Order cancel-replace failed.", data)
        raise ApiError(409, -2021, "Order cancel-replace partially failed.", data)

    def _order_status(self, session, params):
        symbol = self._symbol(params)
        try:
            return self._find(symbol, params, "orderId", "origClientOrderId").status_json()
        except ApiError as e:
            if e.code != -2011:
                raise
        cid = params.get("origClientOrderId")
        o = self.finished.get((symbol, str(cid).encode())) if cid else None
        if o is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return o.status_json()

    def _open_orders(self, session, params):
        symbol = params.get("symbol")
        if symbol is not None:
            symbol = self._symbol(params)
        return b"[" + b",".join(o.status_json() for o in sorted(
            self.open.values(), key=lambda o: o.order_id)
            if symbol is None or o.symbol == symbol) + b"]"

    def _my_trades(self, session, params):
        self._symbol(params)                 # mandatory, as at the venue
        return b"[]"

    def _cancel_all(self, session, params):
        symbol = self._symbol(params)
        mine = sorted((o for o in self.open.values() if o.symbol == symbol),
                      key=lambda o: o.order_id)
        if not mine:
            raise _unknown_order()
        return b"[" + b",".join(self._close(session, o, None) for o in mine) + b"]"
