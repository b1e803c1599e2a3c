"""Queries on the WS API (engine/sim/api.py): ping, time, exchangeInfo, order.status,
openOrders.status, account.status and myTrades."""
from __future__ import annotations

from engine.sim.api_params import Params, _int_param, now_ms
from engine.sim.exchange import ApiError
from engine.sim.market import Book, wire_decimal


class QueryMethods(Params):
    """The query methods (a part of Api: order.status hides what order entry's chaos says it
    should, _status_lags and _chaos_phantom)."""

    def _ping(self, session, params):
        return {}

    def _time(self, session, params):
        return {"serverTime": now_ms()}

    def _exchange_info(self, session, params):
        return {"timezone": "UTC", "serverTime": now_ms(),
                "rateLimits": [{k: v for k, v in w.entry().items() if k != "count"}
                               for w in (self.weight, self.orders_10s, self.orders_day)],
                "exchangeFilters": [], "symbols": self.instruments_info()}

    def _order_status(self, session, params):
        book = self._book(params)
        order = self._locate(book, params, "orderId", "origClientOrderId", finished_too=True)
        if order.status in ("NEW", "PARTIALLY_FILLED") and (
                self._status_lags(order) or self._chaos_phantom()):
            raise ApiError(400, -2013, "Order does not exist.")
        return order.as_status()

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
