"""What a trader reads from a journal: fills, orders, PnL over time, the day's figures, the
markout curve. Positions in base units, PnL and fees in the quote asset.

PnL: average-cost accounting per symbol over every fill in the journal, oldest first.
Realised PnL moves when a fill reduces the position (by the fill's distance from the average
cost); marked PnL is realised plus the open position valued at the latest price seen (the
newest fill's mid when known, else its price); fees are commissions in the quote asset (one
paid in the base asset is valued at the fill's price; other assets are listed apart).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from engine.journal.markouts import HORIZONS

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_ns(text: str | None, now_ns: int | None = None) -> int:
    """'1h', '30m', '2d' -> epoch ns that long ago; None / '' -> 0 (everything)."""
    if not text:
        return 0
    m = _SINCE.match(text.strip())
    if not m:
        raise ValueError(f"--since: expected a number and s|m|h|d|w (e.g. 1h, 30m), got {text!r}")
    now_ns = time.time_ns() if now_ns is None else now_ns
    return now_ns - int(float(m.group(1)) * _UNIT_S[m.group(2)] * 1e9)


def fills(con, since: int = 0) -> list[dict]:
    """Every fill since `since` (epoch ns), oldest first."""
    cur = con.execute("SELECT ts_ns, symbol, trade_id, venue_order_id, order_id, client_id, side, "
                      "price, qty, quote_qty, commission, commission_asset, is_maker, source, "
                      "confirmed, mid_at_fill, mid_100ms, mid_1s, mid_5s, mid_30s FROM fills "
                      "WHERE ts_ns >= ? ORDER BY ts_ns, trade_id, venue_order_id", (since,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur]


def orders(con, since: int = 0) -> list[dict]:
    """One row per order placed since `since`: its request, then what became of it."""
    cur = con.execute(
        "SELECT r.ts_ns, r.kind, r.symbol, r.order_id, r.client_id, r.side, r.price, r.qty, "
        "(SELECT e.kind FROM events e WHERE e.order_id = r.order_id AND e.kind NOT IN "
        "('unknown') ORDER BY e.id DESC LIMIT 1) AS last_event, "
        "(SELECT e.cum_qty FROM events e WHERE e.order_id = r.order_id AND e.cum_qty IS NOT NULL "
        "ORDER BY e.id DESC LIMIT 1) AS filled, "
        "(SELECT e.code FROM events e WHERE e.order_id = r.order_id AND e.kind = 'reject' "
        "LIMIT 1) AS reject_code "
        "FROM requests r WHERE r.ts_ns >= ? AND r.kind IN ('new', 'replace') ORDER BY r.id",
        (since,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur]


@dataclass
class Book:
    """One symbol's running position and PnL."""
    position: float = 0.0
    avg: float = 0.0
    realised: float = 0.0
    fees: float = 0.0
    mark: float = 0.0
    other_fees: dict = field(default_factory=dict)

    def apply(self, side: str, price: float, qty: float) -> None:
        signed = qty if side == "BUY" else -qty
        pos = self.position
        if pos == 0 or (pos > 0) == (signed > 0):          # opening or adding
            new = pos + signed
            self.avg = (self.avg * abs(pos) + price * qty) / abs(new) if new else 0.0
            self.position = new
        else:                                              # reducing (maybe flipping)
            closed = min(abs(signed), abs(pos))
            self.realised += closed * (price - self.avg) * (1 if pos > 0 else -1)
            self.position = pos + signed
            if abs(signed) > abs(pos):
                self.avg = price
            elif self.position == 0:
                self.avg = 0.0

    @property
    def marked(self) -> float:
        return self.realised + self.position * (self.mark - self.avg)


def pnl(con, instruments=(), since: int = 0, by: str = "hour") -> list[dict]:
    """PnL per time bucket (hour | day, UTC) and symbol, for buckets from `since`: fills,
    volume, fees, realised and marked PnL (cumulative over the whole journal, net of fees in
    `net`), position at the bucket's end."""
    quote_of = {i.symbol: i.quote for i in instruments}
    base_of = {i.symbol: i.base for i in instruments}
    span = {"hour": 3600, "day": 86400}[by] * 1_000_000_000
    books: dict[str, Book] = {}
    rows: dict[tuple, dict] = {}
    for f in fills(con, 0):
        sym = f["symbol"]
        b = books.setdefault(sym, Book())
        price, qty = float(f["price"]), float(f["qty"])
        b.apply(f["side"], price, qty)
        b.mark = f["mid_at_fill"] or price
        fee_asset, fee = f["commission_asset"], float(f["commission"] or 0)
        if fee:
            if fee_asset == quote_of.get(sym, fee_asset):
                b.fees += fee
            elif fee_asset == base_of.get(sym):
                b.fees += fee * price
            else:
                b.other_fees[fee_asset] = b.other_fees.get(fee_asset, 0.0) + fee
        if f["ts_ns"] < since:
            continue
        start = f["ts_ns"] - f["ts_ns"] % span
        r = rows.setdefault((start, sym), {"bucket": start, "symbol": sym, "fills": 0,
                                           "volume": 0.0})
        r["fills"] += 1
        r["volume"] += price * qty
        r.update(position=b.position, realised=b.realised, marked=b.marked, fees=b.fees,
                 net=b.marked - b.fees)
    return [rows[k] for k in sorted(rows)]


def series(con, instruments=(), since: int = 0) -> list[dict]:
    """After every fill from `since` (epoch ns): the symbol's position (base units) and its
    realised, marked PnL and fees (quote asset) counted from `since` (what came before is the
    starting point, not part of the figures)."""
    quote_of = {i.symbol: i.quote for i in instruments}
    base_of = {i.symbol: i.base for i in instruments}
    books: dict[str, Book] = {}
    start: dict[str, tuple] = {}
    out = []
    for f in fills(con, 0):
        sym = f["symbol"]
        b = books.setdefault(sym, Book())
        if f["ts_ns"] >= since and sym not in start:
            start[sym] = (b.realised, b.marked, b.fees)
        price, qty = float(f["price"]), float(f["qty"])
        b.apply(f["side"], price, qty)
        b.mark = f["mid_at_fill"] or price
        fee, asset = float(f["commission"] or 0), f["commission_asset"]
        if fee and asset == quote_of.get(sym, asset):
            b.fees += fee
        elif fee and asset == base_of.get(sym):
            b.fees += fee * price
        if f["ts_ns"] >= since:
            r0, m0, f0 = start[sym]
            out.append({"ts_ns": f["ts_ns"], "symbol": sym, "position": b.position,
                        "realised": b.realised - r0, "marked": b.marked - m0,
                        "fees": b.fees - f0})
    return out


def totals(con, instruments=(), since: int = 0) -> dict:
    """Fills, volume, fees and PnL since `since` (today: since = midnight UTC), per symbol."""
    out = {}
    before = {r["symbol"]: r for r in pnl(con, instruments, 0, "day") if r["bucket"] < since}
    for r in pnl(con, instruments, since, "day"):
        t = out.setdefault(r["symbol"], {"fills": 0, "volume": 0.0})
        t["fills"] += r["fills"]
        t["volume"] += r["volume"]
        b = before.get(r["symbol"], {})
        for k in ("realised", "marked", "fees", "net"):
            t[k] = r[k] - b.get(k, 0.0)
        t["position"] = r["position"]
    return out


def markout_bps(side: str, price, mid: float) -> float:
    """side * (mid - price) / price in basis points: comparable across symbols; below 0 the
    market moved against the fill."""
    p = float(price)
    return (1 if side == "BUY" else -1) * (mid - p) / p * 1e4


def markout_curve(con, since: int = 0) -> list[dict]:
    """Per horizon: fills with a markout, their mean markout in basis points of the fill price
    (markout_bps), and the share of adverse ones (below 0)."""
    out = []
    for col, ns in HORIZONS:
        vals = [markout_bps(s, p, m)
                for s, p, m in con.execute(f"SELECT side, price, {col} FROM fills WHERE "
                                           f"{col} IS NOT NULL AND ts_ns >= ?", (since,))]
        n = len(vals)
        out.append({"horizon": col[4:], "horizon_ms": ns // 1_000_000, "fills": n,
                    "mean": sum(vals) / n if n else None,
                    "adverse_share": sum(v < 0 for v in vals) / n if n else None})
    return out


def inventory(con, since: int = 0) -> list[tuple[int, str, float]]:
    """(ts_ns, symbol, position in base units after the fill) for every fill, oldest first."""
    pos: dict[str, float] = {}
    out = []
    for ts, sym, side, qty in con.execute("SELECT ts_ns, symbol, side, qty FROM fills ORDER BY "
                                          "ts_ns, trade_id"):
        pos[sym] = pos.get(sym, 0.0) + (float(qty) if side == "BUY" else -float(qty))
        if ts >= since:
            out.append((ts, sym, pos[sym]))
    return out
