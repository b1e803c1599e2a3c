"""The account and matching model: resting orders, balances, fills and execution reports.

No I/O here: the server feeds it book events and trade prints, the API feeds it requests, and
it hands Binance-shaped events (executionReport, outboundAccountPosition) to `emit`.

Matching model (documented assumptions):
- An order that does not cross rests at its price. Its queue position is the displayed size at
  that price when it joined (0 if it improves on the touch).
- A trade print at the order's price consumes the queue ahead first; what is left of the print
  fills the order (partially or fully). Each order sees the whole print: two of our orders at
  one price can together fill more than the print (the engine quotes one order per side).
- A print through the order's price (a sell below our bid, a buy above our ask) fills it fully.
- When the synthetic book moves through a resting order (best ask <= our bid, best bid >= our
  ask) the order fills fully at its own price, as a taker sweeping it would.
- A crossing LIMIT or a MARKET order takes liquidity at the opposite touch and fills fully at
  that price (the touch is treated as deep enough). A crossing LIMIT_MAKER is rejected (-2010).
- No commissions: balances move by exactly price * quantity.
"""
from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Callable

from engine.instruments import format_fixed
from engine.sim.market import Book, wire_decimal

LOG_KEPT = 100_000         # places / cancels remembered for inspection (the newest)

ZERO8 = "0.00000000"


class ApiError(Exception):
    """A Binance error answer: HTTP-like status, error code and message (and optional data)."""

    def __init__(self, status: int, code: int, msg: str, data=None):
        super().__init__(f"{code}: {msg}")
        self.status, self.code, self.msg, self.data = status, code, msg, data


def insufficient_balance() -> ApiError:
    return ApiError(400, -2010, "Account has insufficient balance for requested action.")


def unknown_order() -> ApiError:
    return ApiError(400, -2011, "Unknown order sent.")


class Order:
    """One order of the account (open or just finished)."""

    __slots__ = ("order_id", "book", "client_id", "is_buy", "type", "tif", "price", "qty",
                 "filled", "cum_quote", "status", "time_ms", "update_ms", "queue_ahead")

    def __init__(self, order_id, book, client_id, is_buy, type_, tif, price, qty, now_ms):
        self.order_id, self.book, self.client_id = order_id, book, client_id
        self.is_buy, self.type, self.tif, self.price, self.qty = is_buy, type_, tif, price, qty
        self.filled = 0
        self.cum_quote = 0          # sum of price * qty, units of 10**(pexp + qexp)
        self.status = "NEW"
        self.time_ms = self.update_ms = now_ms
        self.queue_ahead = 0

    @property
    def side(self) -> str:
        return "BUY" if self.is_buy else "SELL"

    def as_result(self, with_fills: list | None = None) -> dict:
        """The RESULT / FULL `order.place` result fields."""
        b = self.book
        out = {"symbol": b.symbol, "orderId": self.order_id, "orderListId": -1,
               "clientOrderId": self.client_id, "transactTime": self.update_ms,
               "price": wire_decimal(self.price, b.pexp), "origQty": wire_decimal(self.qty, b.qexp),
               "executedQty": wire_decimal(self.filled, b.qexp), "origQuoteOrderQty": ZERO8,
               "cummulativeQuoteQty": wire_decimal(self.cum_quote, b.pexp + b.qexp),
               "status": self.status, "timeInForce": self.tif, "type": self.type,
               "side": self.side, "workingTime": self.time_ms,
               "selfTradePreventionMode": "NONE"}
        if with_fills is not None:
            out["fills"] = with_fills
        return out

    def as_status(self) -> dict:
        """The order query format (openOrders.status)."""
        b = self.book
        return {"symbol": b.symbol, "orderId": self.order_id, "orderListId": -1,
                "clientOrderId": self.client_id, "price": wire_decimal(self.price, b.pexp),
                "origQty": wire_decimal(self.qty, b.qexp),
                "executedQty": wire_decimal(self.filled, b.qexp),
                "cummulativeQuoteQty": wire_decimal(self.cum_quote, b.pexp + b.qexp),
                "status": self.status, "timeInForce": self.tif, "type": self.type,
                "side": self.side, "stopPrice": ZERO8, "icebergQty": ZERO8,
                "time": self.time_ms, "updateTime": self.update_ms, "isWorking": True,
                "workingTime": self.time_ms, "origQuoteOrderQty": ZERO8,
                "selfTradePreventionMode": "NONE"}


class Exchange:
    """Orders, balances and matching for the one simulated account."""

    def __init__(self, books: list[Book], balances: dict[str, str],
                 emit: Callable[[dict], None], clock_ms: Callable[[], int]):
        self.books = books
        self.by_symbol = {b.symbol: b for b in books}
        self.emit = emit
        self.now_ms = clock_ms
        # One fixed-point exponent for every asset, fine enough for any price * qty.
        self.asset_exp = min([-8] + [b.pexp + b.qexp for b in books])
        self.free: dict[str, int] = {}
        self.locked: dict[str, int] = {}
        for b in books:
            for asset in (b.inst.base, b.inst.quote):
                self.free.setdefault(asset, 0)
                self.locked.setdefault(asset, 0)
        for asset, amount in balances.items():
            self.free[asset] = int(Decimal(amount).scaleb(-self.asset_exp))
            self.locked.setdefault(asset, 0)
        self.open: dict[str, dict[int, Order]] = {b.symbol: {} for b in books}
        # Every order ever accepted, open or finished, for order.status (the venue keeps them).
        self.orders: dict[int, Order] = {}
        self.by_client: dict[tuple[str, str], Order] = {}   # (symbol, client id) -> latest
        self.client_ids_used: set[str] = set()
        self.client_ids_reused = 0      # a client id placed twice (legal once finished; counted)
        # (actor, client id) of every order placed / canceled by a request (the newest
        # LOG_KEPT), for tests that check who touched whose orders; actor is the API
        # connection number (0 = the simulator)
        self.place_log: deque[tuple[int, str]] = deque(maxlen=LOG_KEPT)
        self.cancel_log: deque[tuple[int, str]] = deque(maxlen=LOG_KEPT)
        self._next_order_id = 1
        self._next_exec_id = 1
        self.fills = 0
        # the account's trade list per symbol, oldest first (myTrades): Binance's entry shape
        self.trades: dict[str, list[dict]] = {b.symbol: [] for b in books}

    # -- conversions to asset units --
    def _base_units(self, book: Book, qty: int) -> int:
        return qty * 10 ** (book.qexp - self.asset_exp)

    def _quote_units(self, book: Book, price: int, qty: int) -> int:
        return price * qty * 10 ** (book.pexp + book.qexp - self.asset_exp)

    def balance_strings(self) -> dict[str, dict[str, str]]:
        e = self.asset_exp
        return {a: {"free": format_fixed(self.free[a], e),
                    "locked": format_fixed(self.locked[a], e)} for a in sorted(self.free)}

    # -- orders --
    def find(self, book: Book, order_id: int | None, client_id: str | None) -> Order:
        """An open order of `book` by venue id or client id (order.cancel, cancelReplace)."""
        orders = self.open[book.symbol]
        if order_id is not None:
            o = orders.get(order_id)
            if o is not None and (client_id is None or o.client_id == client_id):
                return o
            raise unknown_order()
        o = self.by_client.get((book.symbol, client_id))
        if o is None or o.order_id not in orders:
            raise unknown_order()
        return o

    def lookup(self, book: Book, order_id: int | None, client_id: str | None) -> Order:
        """Any order of `book` (open or finished) by venue id or client id: order.status."""
        o = self.orders.get(order_id) if order_id is not None else \
            self.by_client.get((book.symbol, client_id))
        if o is None or o.book is not book or (client_id is not None and o.client_id != client_id):
            raise ApiError(400, -2013, "Order does not exist.")
        return o

    def place(self, book: Book, is_buy: bool, type_: str, tif: str, price: int, qty: int,
              client_id: str, actor: int = 0) -> tuple[Order, list[dict]]:
        """Accept, rest or fill a validated order. Returns the order and its FULL `fills`."""
        same = self.by_client.get((book.symbol, client_id))
        if same is not None and same.order_id in self.open[book.symbol]:
            raise ApiError(400, -2010, "Duplicate order sent.")
        crosses = (price >= book.ask) if is_buy else (price <= book.bid)
        if type_ == "MARKET":
            price, crosses = (book.ask if is_buy else book.bid), True
        if type_ == "LIMIT_MAKER" and crosses:
            raise ApiError(400, -2010, "Order would immediately match and take.")
        base, quote = book.inst.base, book.inst.quote
        if is_buy:
            need = self._quote_units(book, price, qty)
            if self.free[quote] < need:
                raise insufficient_balance()
            self.free[quote] -= need
            self.locked[quote] += need
        else:
            need = self._base_units(book, qty)
            if self.free[base] < need:
                raise insufficient_balance()
            self.free[base] -= need
            self.locked[base] += need
        now = self.now_ms()
        o = Order(self._next_order_id, book, client_id, is_buy, type_, tif, price, qty, now)
        self._next_order_id += 1
        self.open[book.symbol][o.order_id] = o
        self.orders[o.order_id] = o
        self.by_client[(book.symbol, client_id)] = o
        if client_id in self.client_ids_used:
            self.client_ids_reused += 1
        self.client_ids_used.add(client_id)
        self.place_log.append((actor, client_id))
        self._report(o, "NEW")
        fills: list[dict] = []
        if crosses:
            touch = book.ask if is_buy else book.bid
            book.trade_id += 1
            self.fill(o, qty, touch, maker=False, trade_id=book.trade_id)
            fills.append({"price": wire_decimal(touch, book.pexp),
                          "qty": wire_decimal(qty, book.qexp), "commission": ZERO8,
                          "commissionAsset": base if is_buy else quote,
                          "tradeId": book.trade_id})
        elif tif in ("IOC", "FOK"):
            self._finish(o, "EXPIRED", "EXPIRED")
        else:
            o.queue_ahead = book.displayed_at(is_buy, price)
        self._position((base, quote))
        return o, fills

    def cancel(self, o: Order, cancel_client_id: str | None = None, actor: int = 0) -> dict:
        """Cancel an open order; returns the order.cancel result."""
        b = o.book
        self.cancel_log.append((actor, o.client_id))
        self._finish(o, "CANCELED", "CANCELED", orig_client_id=o.client_id,
                     report_client_id=cancel_client_id)
        self._position((b.inst.base, b.inst.quote))
        out = o.as_result()
        del out["workingTime"]
        out["origClientOrderId"] = o.client_id
        out["clientOrderId"] = cancel_client_id or f"sim{o.order_id}x"
        out["transactTime"] = o.update_ms
        return out

    def _finish(self, o: Order, exec_type: str, status: str, *, orig_client_id: str = "",
                report_client_id: str | None = None) -> None:
        """Take an open order off the book and release what it still holds."""
        b = o.book
        left = o.qty - o.filled
        if o.is_buy:
            amount = self._quote_units(b, o.price, left)
            asset = b.inst.quote
        else:
            amount = self._base_units(b, left)
            asset = b.inst.base
        self.locked[asset] -= amount
        self.free[asset] += amount
        o.status = status
        o.update_ms = self.now_ms()
        self.open[b.symbol].pop(o.order_id, None)
        self._report(o, exec_type, orig_client_id=orig_client_id, client_id=report_client_id)

    # -- fills --
    def fill(self, o: Order, qty: int, price: int, *, maker: bool, trade_id: int) -> None:
        """Fill `qty` of `o` at `price`; move balances; report TRADE."""
        b = o.book
        o.filled += qty
        o.cum_quote += price * qty
        if o.is_buy:
            self.locked[b.inst.quote] -= self._quote_units(b, o.price, qty)
            self.free[b.inst.quote] += self._quote_units(b, o.price - price, qty)
            self.free[b.inst.base] += self._base_units(b, qty)
        else:
            self.locked[b.inst.base] -= self._base_units(b, qty)
            self.free[b.inst.quote] += self._quote_units(b, price, qty)
        o.status = "FILLED" if o.filled == o.qty else "PARTIALLY_FILLED"
        o.update_ms = self.now_ms()
        if o.status == "FILLED":
            self.open[b.symbol].pop(o.order_id, None)
        self.fills += 1
        self.trades[b.symbol].append({
            "symbol": b.symbol, "id": trade_id, "orderId": o.order_id, "orderListId": -1,
            "price": wire_decimal(price, b.pexp), "qty": wire_decimal(qty, b.qexp),
            "quoteQty": wire_decimal(price * qty, b.pexp + b.qexp), "commission": ZERO8,
            "commissionAsset": b.inst.base if o.is_buy else b.inst.quote,
            "time": o.update_ms, "isBuyer": o.is_buy, "isMaker": maker, "isBestMatch": True})
        self._report(o, "TRADE", last_qty=qty, last_price=price, trade_id=trade_id, maker=maker)

    def taker_fill(self, o: Order, qty: int) -> None:
        """A taker hits resting order `o` for `qty` at its price, now (chaos, tests)."""
        b = o.book
        b.trade_id += 1
        self.fill(o, min(qty, o.qty - o.filled), o.price, maker=True, trade_id=b.trade_id)
        self._position((b.inst.base, b.inst.quote))

    def on_trade(self, book: Book, taker_buys: bool, price: int, qty: int, trade_id: int) -> int:
        """Match a market trade print against our resting orders. Returns fills made."""
        orders = self.open[book.symbol]
        if not orders:
            return 0
        n = 0
        for o in sorted(orders.values(), key=lambda o: o.order_id):
            if o.is_buy == taker_buys:
                continue            # a buyer-taker print only hits asks (our sells), and back
            left = o.qty - o.filled
            through = price < o.price if o.is_buy else price > o.price
            if through:
                take = left
            elif price == o.price:
                eaten = min(o.queue_ahead, qty)
                o.queue_ahead -= eaten
                take = min(left, qty - eaten)
            else:
                continue
            if take > 0:
                self.fill(o, take, o.price, maker=True, trade_id=trade_id)
                n += 1
        if n:
            self._position((book.inst.base, book.inst.quote))
        return n

    def on_book(self, book: Book) -> int:
        """Fill resting orders the book has moved through (at their own price)."""
        orders = self.open[book.symbol]
        if not orders:
            return 0
        n = 0
        for o in sorted(orders.values(), key=lambda o: o.order_id):
            if (book.ask <= o.price) if o.is_buy else (book.bid >= o.price):
                book.trade_id += 1
                self.fill(o, o.qty - o.filled, o.price, maker=True, trade_id=book.trade_id)
                n += 1
        if n:
            self._position((book.inst.base, book.inst.quote))
        return n

    # -- events --
    def _report(self, o: Order, exec_type: str, *, last_qty: int = 0, last_price: int = 0,
                trade_id: int = -1, maker: bool = False, orig_client_id: str = "",
                client_id: str | None = None) -> None:
        b = o.book
        p, q = b.pexp, b.qexp
        now = o.update_ms
        exec_id = self._next_exec_id
        self._next_exec_id += 1
        self.emit({
            "e": "executionReport", "E": now, "s": b.symbol, "c": client_id or o.client_id,
            "S": o.side, "o": o.type, "f": o.tif, "q": wire_decimal(o.qty, q),
            "p": wire_decimal(o.price, p), "P": ZERO8, "F": ZERO8, "g": -1, "C": orig_client_id,
            "x": exec_type, "X": o.status, "r": "NONE", "i": o.order_id,
            "l": wire_decimal(last_qty, q), "z": wire_decimal(o.filled, q),
            "L": wire_decimal(last_price, p), "n": "0", "N": None, "T": now, "t": trade_id,
            "I": exec_id, "w": o.status in ("NEW", "PARTIALLY_FILLED"), "m": maker, "M": False,
            "O": o.time_ms, "Z": wire_decimal(o.cum_quote, p + q),
            "Y": wire_decimal(last_price * last_qty, p + q), "Q": ZERO8, "W": o.time_ms,
            "V": "NONE"})

    def _position(self, assets) -> None:
        e = self.asset_exp
        now = self.now_ms()
        self.emit({"e": "outboundAccountPosition", "E": now, "u": now,
                   "B": [{"a": a, "f": format_fixed(self.free[a], e),
                          "l": format_fixed(self.locked[a], e)} for a in dict.fromkeys(assets)]})
