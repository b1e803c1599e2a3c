"""Order entry on the WS API (engine/sim/api.py): order.place / order.test, order.cancel,
openOrders.cancelAll and order.cancelReplace, with the chaos that answers them (refused
cancels, phantom unknowns, fills racing a replace, status lag)."""
from __future__ import annotations

import time

from engine.sim.api_params import Params, mandatory
from engine.sim.exchange import ApiError, Order, unknown_order
from engine.sim.market import Book


class OrderMethods(Params):
    """The order-entry methods (a part of Api: self.ex, self.chaos, self.faults, self.stats and
    self._hidden are its)."""

    def _chaos_refusal(self) -> None:
        """Chaos: refuse a cancel-type request before doing anything (the order keeps resting)."""
        if self.chaos.enabled and self.chaos.roll("refuse_cancel"):
            status, code, msg = self.chaos.refusal()
            raise ApiError(status, code, msg)

    def _chaos_phantom(self) -> bool:
        return self.chaos.enabled and self.chaos.roll("phantom_unknown")

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
