"""The synthetic market: one top-of-book plus a few displayed levels per instrument, driven by
a seeded random walk of the mid, and the encoders of Binance's market frames.

Everything is integers at the instrument's exponents (price units of 10**pexp, quantity units
of 10**qexp). Decimal strings appear only on the wire, with Binance's 8 decimals.
"""
from __future__ import annotations

import math
import random
import re
from decimal import Decimal

from engine.instruments import Instrument, format_fixed

WIRE_DECIMALS = 8             # Binance Spot prints prices and quantities with 8 decimals
DEPTH_LEVELS = 20             # displayed levels kept per side (depth5/10/20 streams)
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"   # quoted in Binance's -1100 message


_SCALE = [10 ** k for k in range(WIRE_DECIMALS + 1)]


def wire_decimal(mantissa: int, exp: int) -> str:
    """A mantissa at 10**exp as Binance prints it: 8 decimals, or more if exp needs them."""
    if exp < -WIRE_DECIMALS:
        return format_fixed(mantissa, exp)
    if exp > 0:
        return f"{mantissa * 10 ** exp}.{'0' * WIRE_DECIMALS}"
    # hot (every frame field): one multiply, one str, one slice
    neg = mantissa < 0
    s = str((-mantissa if neg else mantissa) * _SCALE[WIRE_DECIMALS + exp])
    if len(s) <= WIRE_DECIMALS:
        s = s.rjust(WIRE_DECIMALS + 1, "0")
    out = f"{s[:-WIRE_DECIMALS]}.{s[-WIRE_DECIMALS:]}"
    return "-" + out if neg else out


def parse_decimal(text: str, exp: int) -> tuple[int, bool] | None:
    """Parse a wire decimal into units of 10**exp. Returns (units, exact) or None when the
    text is not a decimal Binance accepts; exact is False when digits finer than 10**exp are
    not zero (the caller reports a filter failure)."""
    if not _DECIMAL_RE.match(text):
        return None
    whole, _, frac = text.partition(".")
    places = -exp
    if places <= 0:
        value = int(whole) // 10 ** exp if exp else int(whole)
        return value, (not frac.strip("0")) and int(whole) % (10 ** exp) == 0
    kept, rest = frac[:places].ljust(places, "0"), frac[places:]
    return int(whole) * 10 ** places + int(kept), not rest.strip("0")


class Book:
    """One instrument's synthetic book: best bid/ask, displayed sizes, update and trade ids."""

    __slots__ = ("inst", "index", "symbol", "stream_symbol", "tick", "lot", "pexp", "qexp",
                 "bid", "ask", "bid_qty", "ask_qty", "bid_levels", "ask_levels",
                 "update_id", "trade_id", "_rng", "_sigma_ticks", "_size_mean", "_trade_mean",
                 "_spread_max", "_p_trade", "_vol_bps", "_mid0", "_depth_rng", "replayed")

    def __init__(self, inst: Instrument, index: int, mid: str, rng: random.Random, *,
                 event_rate: float, volatility_bps: float, trade_rate: float,
                 spread_ticks_max: int, top_size_notional: float, trade_size_notional: float):
        self.inst = inst
        self.index = index
        self.symbol = inst.symbol
        self.stream_symbol = inst.symbol.lower()
        self.tick, self.lot, self.pexp, self.qexp = inst.tick, inst.lot, inst.pexp, inst.qexp
        self._rng = rng
        units = Decimal(mid).scaleb(-self.pexp)
        bid = max(self.tick, int(units) // self.tick * self.tick)
        self._mid0 = bid
        self.bid, self.ask = bid, bid + self.tick
        self._spread_max = spread_ticks_max
        mid_f = float(Decimal(mid))
        lot_value = mid_f * float(Decimal(inst.lot_size))      # quote value of one lot
        self._size_mean = max(1.0, top_size_notional / lot_value)
        self._trade_mean = max(1.0, trade_size_notional / lot_value)
        self._vol_bps = volatility_bps
        self.set_rates(event_rate, trade_rate)
        self.bid_qty = self._size()
        self.ask_qty = self._size()
        # Depth sizes draw from their own generator: snapshots are timed by the wall clock, and
        # must not shift the seeded sequence of bookTicker and trade frames.
        self._depth_rng = random.Random(rng.random())
        self.refresh_depth()
        self.update_id = 1_000_000 * (index + 1) + rng.randrange(1000)
        self.trade_id = 100_000 * (index + 1)
        self.replayed = False         # a replayed book knows only its touch (see displayed_at)

    def set_rates(self, event_rate: float, trade_rate: float) -> None:
        """Re-derive the per-event step size and trade probability from per-second rates."""
        mid_ticks = self._mid0 / self.tick
        self._sigma_ticks = self._vol_bps * 1e-4 * mid_ticks / math.sqrt(event_rate)
        self._p_trade = min(1.0, trade_rate / event_rate)

    def _size(self) -> int:
        return (1 + int(self._rng.expovariate(1.0 / self._size_mean))) * self.lot

    # -- hot: one call per book event --
    def step(self) -> bool:
        """Advance one book event (new update id). Returns True when a trade should print."""
        rng = self._rng
        move = round(rng.gauss(0.0, self._sigma_ticks)) if self._sigma_ticks > 0 else 0
        bid = self.bid + move * self.tick
        if bid < self.tick:
            bid = self.tick
        spread = 1 if rng.random() < 0.75 else rng.randint(2, self._spread_max) \
            if self._spread_max > 1 else 1
        self.bid, self.ask = bid, bid + spread * self.tick
        self.bid_qty = self._size()
        self.ask_qty = self._size()
        self.update_id += 1
        return rng.random() < self._p_trade

    def random_trade(self) -> tuple[bool, int, int]:
        """A market trade at the touch: (taker is buyer, price, qty). Shrinks the level hit."""
        rng = self._rng
        qty = (1 + int(rng.expovariate(1.0 / self._trade_mean))) * self.lot
        self.trade_id += 1
        if rng.random() < 0.5:
            self.ask_qty = max(self.lot, self.ask_qty - qty)
            return True, self.ask, qty
        self.bid_qty = max(self.lot, self.bid_qty - qty)
        return False, self.bid, qty

    def refresh_depth(self) -> None:
        """New sizes for the levels behind the touch (called once per depth snapshot)."""
        expo, mean, lot = self._depth_rng.expovariate, 1.0 / self._size_mean, self.lot
        self.bid_levels = [(1 + int(expo(mean))) * lot for _ in range(DEPTH_LEVELS)]
        self.ask_levels = [(1 + int(expo(mean))) * lot for _ in range(DEPTH_LEVELS)]

    def displayed_at(self, is_buy: bool, price: int) -> int:
        """Displayed quantity at `price` on one side: the queue ahead of an order joining it.
        Better than the touch: 0. Behind the displayed levels: the mean level size. A replayed
        book (book-ticker frames) shows nothing behind the touch: an order there queues behind
        what the touch shows (mm backtest assumes the same: engine/backtest/venue.py)."""
        if is_buy:
            if price > self.bid:
                return 0
            if price == self.bid or self.replayed:
                return self.bid_qty
            level = (self.bid - price) // self.tick
            levels = self.bid_levels
        else:
            if price < self.ask:
                return 0
            if price == self.ask or self.replayed:
                return self.ask_qty
            level = (price - self.ask) // self.tick
            levels = self.ask_levels
        return levels[level] if level < len(levels) else int(self._size_mean) * self.lot

    # -- frames (bytes ready to write) --
    def book_ticker(self) -> bytes:
        p, q = self.pexp, self.qexp
        return (f'{{"u":{self.update_id},"s":"{self.symbol}","b":"{wire_decimal(self.bid, p)}",'
                f'"B":"{wire_decimal(self.bid_qty, q)}","a":"{wire_decimal(self.ask, p)}",'
                f'"A":"{wire_decimal(self.ask_qty, q)}"}}').encode()

    def trade_frame(self, trade_id: int, price: int, qty: int, buyer_maker: bool,
                    now_ms: int) -> bytes:
        return (f'{{"e":"trade","E":{now_ms},"s":"{self.symbol}","t":{trade_id},'
                f'"p":"{wire_decimal(price, self.pexp)}","q":"{wire_decimal(qty, self.qexp)}",'
                f'"T":{now_ms},"m":{"true" if buyer_maker else "false"},"M":true}}').encode()

    def ladder(self, levels: int = DEPTH_LEVELS) -> tuple[list[tuple[int, int]],
                                                          list[tuple[int, int]]]:
        """The displayed book, best first: the touch, then a level per tick behind it."""
        tick = self.tick
        bids = [(self.bid, self.bid_qty)] + [(self.bid - i * tick, self.bid_levels[i])
                                             for i in range(1, levels) if self.bid - i * tick > 0]
        asks = [(self.ask, self.ask_qty)] + [(self.ask + i * tick, self.ask_levels[i])
                                             for i in range(1, levels)]
        return bids, asks

    def depth_frame(self, levels: int) -> bytes:
        bids, asks = self.ladder(levels)
        return (f'{{"lastUpdateId":{self.update_id},"bids":{self.levels_json(bids)},'
                f'"asks":{self.levels_json(asks)}}}').encode()

    def levels_json(self, levels) -> str:
        """`[["price","qty"],...]` of (px, qty) mantissas, as Binance writes depth levels."""
        p, q = self.pexp, self.qexp
        return "[" + ",".join(f'["{wire_decimal(px, p)}","{wire_decimal(v, q)}"]'
                              for px, v in levels) + "]"
