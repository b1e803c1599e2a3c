"""Plain-Python reference of the quoter (engine/quoter/model.py) and of its strategies
(engine/strategies/*/model.py), written independently: objects and lists instead of numpy
records, the same formulas in the same float operation order. Tests check that both produce
identical intents; the benchmark times the compiled model against it.

Intents are tuples in INTENT_FIELDS order (ORDER_DTYPE minus seq and ts_published).
"""
from __future__ import annotations

import math

from engine.instruments import Instrument
from engine.quoter.config import QuoterConfig
from engine.records import (
    ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, ACTION_RESET_SEEN,
    ALL_INSTRUMENTS, FILL_ACK,
    FILL_CANCEL_REJECT, FILL_CANCELED, FILL_POSITION, FILL_REJECT, FILL_RESET, FILL_RESUME,
    FILL_TRADE, FILL_UNKNOWN, LOCAL_CODE_MAX, LOCAL_CODE_MIN, MD_BBO, MD_FRESH, MD_STALE,
    SIDE_BUY, SIDE_SELL,
)

INTENT_FIELDS = ("order_id", "orig_order_id", "instrument", "action", "side", "level",
                 "post_only", "price", "qty", "update_id", "ts_arrival", "ts_md_published",
                 "ts_quoter_read")

NONE, PENDING, LIVE, CANCELING, UNKNOWN = 0, 1, 2, 3, 4


class Quote:
    """One slot: the current order, and the order a replace is taking the place of."""
    __slots__ = ("order_id", "price", "qty", "state", "placed", "prev", "retry", "fails",
                 "want", "want_px", "want_qty")

    def __init__(self):
        self.order_id = self.price = self.qty = self.state = self.placed = 0
        self.prev = None          # [order_id, price, qty, state] of the replaced order
        self.retry = self.fails = 0
        self.want = self.want_px = self.want_qty = 0

    def clear(self):
        self.order_id = self.price = self.qty = self.state = self.placed = 0
        self.prev = None

    def current_gone(self):
        if self.prev is not None:
            self.order_id, self.price, self.qty, self.state = self.prev
            self.prev = None
        else:
            self.clear()


class Window:
    """At most `limit` orders in the buckets of the last `window` (plus the current one)."""

    def __init__(self, limit: int, window_ns: int, width_ns: int):
        self.limit, self.width = limit, width_ns
        self.buckets = -(-window_ns // width_ns) + 1
        self.counts: dict[int, int] = {}
        self.head = -1

    def _advance(self, bucket: int) -> None:
        if bucket > self.head:
            self.head = bucket
            self.counts = {b: c for b, c in self.counts.items() if b > bucket - self.buckets}

    def take(self, t: int) -> bool:
        bucket = t // self.width
        self._advance(bucket)
        bucket = max(bucket, self.head)
        if sum(self.counts.values()) + 1 > self.limit:
            return False
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        return True

    def refund(self, t: int) -> bool:
        bucket = min(t // self.width, self.head)
        if self.counts.get(bucket, 0) > 0:
            self.counts[bucket] -= 1
            return True
        return False


class Book:
    """Per-instrument state and parameters."""

    def __init__(self, q: QuoterConfig, inst: Instrument, exp_min: int):
        from decimal import Decimal

        def mantissa(value: str, exp: int) -> int:
            return int(Decimal(value).scaleb(-exp).to_integral_value(rounding="ROUND_DOWN"))

        self.tick, self.lot = inst.tick, inst.lot
        size = mantissa(q.size_for(inst.symbol), inst.qexp)
        self.size = max(size - size % inst.lot, inst.lot)
        self.max_position = mantissa(q.max_position_for(inst.symbol), inst.qexp)
        self.max_notional = mantissa(q.max_notional, inst.pexp + inst.qexp)
        self.pnl_scale = 10 ** (inst.pexp + inst.qexp - exp_min)
        self.levels = q.levels
        self.spacing = q.level_spacing_ticks
        self.requote_ticks = q.requote_ticks
        self.max_age = q.max_quote_age_ms * 1_000_000
        self.stale_after = q.stale_after_ms * 1_000_000
        self.backoff = int(q.retry_backoff_ms * 1e6)
        self.backoff_cap = int(q.retry_backoff_cap_ms * 1e6)
        self.cancel_after = q.cancel_after_failures
        self.band = q.price_band_bps * 1e-4
        # state
        self.bid_px = self.bid_qty = self.ask_px = self.ask_qty = 0
        self.book_ok = False
        self.mid = 0.0
        self.last_md_ns = 0
        self.stale = self.feed_stale = self.dirty = False
        self.inventory = self.pos_base = self.cash = 0
        self.mark = 0                 # last good mid
        self.target = 0               # neutral inventory, set by the start-up POSITION
        self.has_target = False
        self.trigger = (0, 0, 0, 0)   # update id, arrival, md published, read
        self.quotes = [[Quote() for _ in range(q.levels)] for _ in range(2)]
        self.strategy = STRATEGIES[q.strategy](getattr(q, q.strategy))


class ReferenceQuoter:
    """The same quoter, one Python object per instrument and per quote."""

    def __init__(self, q: QuoterConfig, instruments: tuple[Instrument, ...], first_id: int,
                 max_drawdown: int = 0, wall_offset: int = 0):
        from engine.quoter.arrays import (RATE_BUCKET_10S_NS, RATE_BUCKET_DAY_NS,
                                          RATE_WINDOW_10S_NS, RATE_WINDOW_DAY_NS)
        exp_min = min(i.pexp + i.qexp for i in instruments)
        self.books = [Book(q, i, exp_min) for i in instruments]
        self.next_id = first_id
        self.resumed = False
        self.reset_seen = 0
        self.killed = 0
        self.wall = wall_offset
        self.win10 = Window(q.rate_per_10s, RATE_WINDOW_10S_NS, RATE_BUCKET_10S_NS)
        self.winday = Window(q.rate_per_day, RATE_WINDOW_DAY_NS, RATE_BUCKET_DAY_NS)
        self.peak = 0
        self.max_drawdown = max_drawdown
        self.drawdown_hit = False
        self.counts: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    # -------------------------------------------------------------- events
    def on_md(self, i, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
              ts_md_published, now) -> None:
        if i >= len(self.books):
            return
        b = self.books[i]
        t_md = ts_arrival or now                # the market's time: the arrival stamp
        _, first, first_pub, _ = b.trigger      # tick-to-order runs from the oldest tick
        if first == 0 or (ts_arrival and ts_arrival < first):
            first, first_pub = ts_arrival, ts_md_published
        b.trigger = (update_id, first, first_pub, now)
        b.dirty = True
        if kind & MD_STALE:
            b.feed_stale = True
            return
        if kind & MD_FRESH:
            b.feed_stale = False
        if not kind & MD_BBO:
            return
        b.feed_stale = False
        b.last_md_ns = t_md
        b.bid_px, b.bid_qty, b.ask_px, b.ask_qty = bid_px, bid_qty, ask_px, ask_qty
        b.book_ok = 0 < bid_px < ask_px and bid_qty > 0 and ask_qty > 0
        if not b.book_ok:
            return
        b.mark = (bid_px + ask_px) // 2
        b.mid = (bid_px / b.tick + ask_px / b.tick) * 0.5
        b.strategy.on_book(b, t_md)

    def on_fill(self, i, kind, order_id, side, price, qty, leaves_qty, code=0, now=0) -> None:
        if kind == FILL_RESUME:
            self.resumed = True
            for b in self.books:
                b.dirty = True
            return
        if kind == FILL_RESET:
            self.resumed = False
            self.reset_seen = order_id or 1   # the next pass starts with RESET_SEEN (token)
            for b in self.books:
                b.dirty = True
                for ladder in b.quotes:
                    for x in ladder:
                        x.clear()
            return
        if i >= len(self.books):
            return
        b = self.books[i]
        b.dirty = True
        if kind == FILL_POSITION:
            b.pos_base += qty - b.inventory
            b.inventory = qty
            if not b.has_target:
                b.target, b.has_target = qty, True
            return
        if kind == FILL_TRADE:
            signed = qty if side == SIDE_BUY else -qty
            b.inventory += signed
            b.cash -= signed * price
        b.strategy.on_fill(b, kind, side, price, qty, now)
        if not order_id:
            return
        slot = cur = None
        for ladder in b.quotes:
            for x in ladder:
                if x.state != NONE and x.order_id == order_id:
                    slot, cur = x, True
                elif x.prev is not None and x.prev[0] == order_id:
                    slot, cur = x, False
                if slot is not None:
                    break
            if slot is not None:
                break
        if slot is None:
            return
        if not cur:
            if kind == FILL_TRADE:
                slot.prev[2] = leaves_qty
                if leaves_qty <= 0:
                    slot.prev = None
            elif kind in (FILL_CANCELED, FILL_REJECT):
                slot.prev = None
            elif kind == FILL_CANCEL_REJECT:
                slot.prev[3], slot.prev[2] = LIVE, leaves_qty
                self._back_off(slot, b, now)
            elif kind == FILL_UNKNOWN:
                slot.prev[3] = UNKNOWN
            elif kind == FILL_ACK:
                slot.prev[3] = LIVE
            return
        if kind == FILL_TRADE:
            if leaves_qty <= 0:
                slot.current_gone()
            else:
                slot.qty = leaves_qty
                if slot.state == PENDING:     # an UNKNOWN one waits for the sender's answer
                    slot.state = LIVE
        elif kind == FILL_ACK:
            if slot.state in (PENDING, UNKNOWN):
                slot.state = LIVE
            slot.fails = 0
        elif kind == FILL_CANCELED:
            slot.fails = 0
            slot.current_gone()
        elif kind == FILL_REJECT:
            if LOCAL_CODE_MIN <= code <= LOCAL_CODE_MAX:
                t = slot.placed + self.wall
                if self.win10.refund(t):
                    self.winday.refund(t)
            self._back_off(slot, b, now)
            slot.current_gone()
        elif kind == FILL_CANCEL_REJECT:
            slot.state, slot.qty = LIVE, leaves_qty
            self._back_off(slot, b, now)
        elif kind == FILL_UNKNOWN:
            slot.state = UNKNOWN

    @staticmethod
    def _back_off(x: Quote, b: Book, now: int) -> None:
        x.fails += 1
        x.retry = now + min(b.backoff << min(x.fails - 1, 20), b.backoff_cap)

    def check_timers(self, now) -> None:
        for b in self.books:
            if not b.stale and b.last_md_ns > 0 and now - b.last_md_ns > b.stale_after:
                b.dirty = True
            if b.strategy.on_timer(b, now):
                b.dirty = True
            for ladder in b.quotes:
                for x in ladder:
                    if b.max_age > 0 and x.state == LIVE and now - x.placed >= b.max_age:
                        b.dirty = True
                    if x.retry and now >= x.retry:
                        x.retry = 0
                        b.dirty = True

    def requote_dirty(self, now) -> list[tuple]:
        out: list[tuple] = []
        if self.reset_seen:
            out.append((self.reset_seen, 0, ALL_INSTRUMENTS, ACTION_RESET_SEEN, 0, 0, 0, 0, 0,
                        0, 0, 0, now))
            self.reset_seen = 0
        for i, b in enumerate(self.books):
            if b.dirty:
                self._requote(i, b, now, out)
                if not self.killed and self.resumed:
                    b.trigger = (0, 0, 0, 0)  # tick consumed: later passes have no trigger
                else:                         # pending, but waiting to quote is not its time
                    b.trigger = (b.trigger[0], 0, 0, b.trigger[3])
        self._mark_pnl()
        return out

    def kill(self, reason, now) -> list[tuple]:
        if self.killed:
            return []
        self.killed = reason
        for b in self.books:
            for ladder in b.quotes:
                for x in ladder:
                    x.clear()
        return [(0, 0, ALL_INSTRUMENTS, ACTION_CANCEL_ALL, 0, 0, 0, 0, 0, 0, now, now, now)]

    # -------------------------------------------------------------- the model
    def _intent(self, out, b, action, i, side, level, order_id, orig, price, qty) -> None:
        post_only = 1 if action in (ACTION_NEW, ACTION_REPLACE) else 0
        out.append((order_id, orig, i, action, SIDE_BUY if side == 0 else SIDE_SELL, level,
                    post_only, price, qty, *b.trigger))

    def _cancel(self, out, b, i, side, level, x, now) -> None:
        if x.state == PENDING or (x.state == LIVE and now >= x.retry):
            self._intent(out, b, ACTION_CANCEL, i, side, level, 0, x.order_id, x.price, x.qty)
            x.state = CANCELING

    def _cancel_stray(self, out, b, i, side, level, x, now) -> None:
        if x.prev is not None and x.prev[3] == LIVE and x.state != PENDING and now >= x.retry:
            self._intent(out, b, ACTION_CANCEL, i, side, level, 0, x.prev[0], x.prev[1],
                         x.prev[2])
            x.prev[3] = CANCELING

    def _cancel_open(self, out, b, i, now) -> None:
        for side in (0, 1):
            for level, x in enumerate(b.quotes[side]):
                self._cancel(out, b, i, side, level, x, now)
                self._cancel_stray(out, b, i, side, level, x, now)

    def _rate_ok(self, now) -> bool:
        t = now + self.wall
        if not self.win10.take(t):
            return False
        if not self.winday.take(t):
            self.win10.refund(t)
            return False
        return True

    def _requote(self, i, b, now, out) -> None:
        b.dirty = False
        if self.killed or not self.resumed:
            return
        stale = b.feed_stale or (b.last_md_ns > 0 and now - b.last_md_ns > b.stale_after)
        if stale:
            if not b.stale:
                b.stale = True
                self._count("stale_pulls")
            self._cancel_open(out, b, i, now)
            return
        b.stale = False
        if not b.book_ok:
            self._cancel_open(out, b, i, now)
            return
        wish = b.strategy.quote(b)            # wish[side][level] = (price in ticks, qty)
        # the core's rules: bids down / asks up to the tick, sizes down to the lot, then each
        # side's ladder moved as a whole so its best level stays off the other side
        best_ask_t = math.ceil(b.ask_px / b.tick) if b.ask_px % b.tick else b.ask_px // b.tick
        limit = (best_ask_t - 1, b.bid_px // b.tick + 1)
        ticks: list[list] = [[None] * b.levels, [None] * b.levels]
        for side in (0, 1):
            row = ticks[side]
            for level, (px, qty) in enumerate(wish[side]):
                size = qty - qty % b.lot if qty > 0 else 0
                if size > 0 and -1e15 < px < 1e15:
                    row[level] = (math.floor(px) if side == 0 else math.ceil(px), size)
            wanted = [r[0] for r in row if r is not None]
            move = 0
            if wanted and side == 0 and max(wanted) > limit[0]:
                move = limit[0] - max(wanted)
            elif wanted and side == 1 and min(wanted) < limit[1]:
                move = limit[1] - min(wanted)
            ticks[side] = [None if r is None else (r[0] + move, r[1]) for r in row]
        band = b.mid * b.band
        for side in (0, 1):
            sign = 1 if side == 0 else -1
            held = sum((x.prev[2] if x.prev is not None else 0)
                       + (x.qty if x.state in (CANCELING, UNKNOWN) else 0)
                       for x in b.quotes[side])
            exposure = b.inventory - b.target + sign * held
            for level, x in enumerate(b.quotes[side]):
                if ticks[side][level] is None:
                    x.want, x.want_px, x.want_qty = 0, 0, 0
                else:
                    px_t, x.want_qty = ticks[side][level]
                    x.want, x.want_px = 1, px_t * b.tick
                    if px_t <= 0 or px_t < b.mid - band or px_t > b.mid + band:
                        x.want = 0
                        self._count("risk_band")
                    else:
                        new_pos = exposure + sign * x.want_qty
                        if sign * new_pos > b.max_position:
                            x.want = 0
                            self._count("risk_position")
                        elif sign * new_pos > 0 and sign * new_pos * x.want_px > b.max_notional:
                            x.want = 0
                            self._count("risk_notional")
                        else:
                            exposure = new_pos
                if not x.want and x.state in (PENDING, LIVE):
                    exposure += sign * x.qty
        for side in (0, 1):
            for level, x in enumerate(b.quotes[side]):
                self._cancel_stray(out, b, i, side, level, x, now)
                if not x.want:
                    self._cancel(out, b, i, side, level, x, now)
        for side in (0, 1):
            for level, x in enumerate(b.quotes[side]):
                if not x.want or x.prev is not None or now < x.retry:
                    continue
                if x.state == NONE:
                    action = ACTION_NEW
                elif x.state == LIVE and (abs(x.want_px - x.price) >= b.requote_ticks * b.tick
                                          or (b.max_age > 0 and now - x.placed >= b.max_age)):
                    if x.fails >= b.cancel_after:
                        self._intent(out, b, ACTION_CANCEL, i, side, level, 0, x.order_id,
                                     x.price, x.qty)
                        x.state = CANCELING
                        continue
                    action = ACTION_REPLACE
                else:
                    continue
                if not self._rate_ok(now):
                    self._count("rate_limited")
                    b.dirty = True
                    continue
                order_id = self.next_id
                self.next_id += 1
                orig = 0
                if action == ACTION_REPLACE:
                    orig = x.order_id
                    x.prev = [x.order_id, x.price, x.qty, CANCELING]
                self._intent(out, b, action, i, side, level, order_id, orig, x.want_px,
                             x.want_qty)
                x.order_id, x.price, x.qty = order_id, x.want_px, x.want_qty
                x.state, x.placed = PENDING, now

    def _mark_pnl(self) -> None:
        total = 0
        for b in self.books:
            total += (b.cash + (b.inventory - b.pos_base) * b.mark) * b.pnl_scale
        self.peak = max(self.peak, total)
        self.pnl = total
        if self.max_drawdown > 0 and self.peak - total >= self.max_drawdown:
            self.drawdown_hit = True


# ------------------------------------------------------------------ the strategies
class Glft:
    """engine/strategies/glft/model.py: GLFT quotes around the mid or micro-price, with an EWMA
    volatility of the mid (Gueant, Lehalle, Fernandez-Tapia 2013, asymptotic quotes)."""

    def __init__(self, cfg):
        g, k, A = cfg.gamma, cfg.k, cfg.A
        self.c1 = (1.0 / g) * math.log(1.0 + g / k)
        self.c2 = math.sqrt(g / (2.0 * A * k) * (1.0 + g / k) ** (1.0 + k / g))
        self.half_floor = 0.5 * cfg.floor_spread_ticks
        self.lam = math.log(2.0) / cfg.vol_half_life_s
        self.micro = cfg.fair_value == "micro"
        self.fair = self.mid = self.energy = 0.0
        self.has_mid = False
        self.last_ns = 0

    def on_book(self, b: Book, now: int) -> None:
        self.fair = _micro(b) if self.micro else b.mid
        if self.has_mid:
            dt = (now - self.last_ns) * 1e-9
            change = b.mid - self.mid
            self.energy = self.energy * math.exp(-self.lam * dt) + change * change
        self.mid, self.last_ns, self.has_mid = b.mid, now, True

    def on_fill(self, b, kind, side, price, qty, now) -> None:
        pass

    def on_timer(self, b, now) -> bool:
        return False

    def quote(self, b: Book) -> list[list[tuple[float, int]]]:
        sigma = math.sqrt(self.energy * self.lam)
        half = max(self.c1 + 0.5 * self.c2 * sigma, self.half_floor)
        reservation = self.fair - self.c2 * sigma * ((b.inventory - b.target) / b.size)
        bid, ask = reservation - half, reservation + half
        return [[(bid - n * b.spacing, b.size) for n in range(b.levels)],
                [(ask + n * b.spacing, b.size) for n in range(b.levels)]]


class FixedSpread:
    """engine/strategies/fixed_spread/model.py: a fixed distance either side of the fair value,
    both quotes shifted against the inventory (capped)."""

    def __init__(self, cfg):
        self.half, self.skew, self.cap = cfg.half_spread_ticks, cfg.skew_ticks, cfg.max_skew_ticks
        self.micro = cfg.fair_value == "micro"
        self.fair = 0.0

    def on_book(self, b: Book, now: int) -> None:
        self.fair = _micro(b) if self.micro else b.mid

    def on_fill(self, b, kind, side, price, qty, now) -> None:
        pass

    def on_timer(self, b, now) -> bool:
        return False

    def quote(self, b: Book) -> list[list[tuple[float, int]]]:
        skew = min(max(self.skew * ((b.inventory - b.target) / b.size), -self.cap), self.cap)
        centre = self.fair - skew
        return [[(centre - self.half - n * b.spacing, b.size) for n in range(b.levels)],
                [(centre + self.half + n * b.spacing, b.size) for n in range(b.levels)]]


def _micro(b: Book) -> float:
    bid_t, ask_t = b.bid_px / b.tick, b.ask_px / b.tick
    bq, aq = float(b.bid_qty), float(b.ask_qty)
    return (bid_t * aq + ask_t * bq) / (bq + aq)


STRATEGIES = {"glft": Glft, "fixed_spread": FixedSpread}
