"""The light venue's market data, made before streaming: the instruments (BTCUSDT's filters for
made-up symbols), their exchangeInfo entries, and each symbol's bookTicker payloads along a
closed random walk, pre-encoded (only the update id is patched in when a frame is sent)."""
from __future__ import annotations

import random
from decimal import Decimal

from bench import light_ws as ws

U_DIGITS = 12                  # update ids keep 12 digits (bench/light_venue.py patches them)
_BOOK = b'{"u":%0*d,"s":"%s","b":"%s","B":"%s","a":"%s","A":"%s"}'


def instruments_for(symbols: list[str]):
    """Instrument objects for the symbols: the built-in ones as they are, others made up."""
    from engine.instruments import DEFAULT_INSTRUMENTS, Instrument

    known = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
    base = known["BTCUSDT"]
    return [known.get(s) or Instrument(symbol=s, base=s[:-4] if s.endswith("USDT") else s,
                                       quote="USDT", tick_size=base.tick_size,
                                       lot_size=base.lot_size, min_notional=base.min_notional)
            for s in symbols]


def _d8(value) -> str:
    return f"{Decimal(value):.8f}"


def exchange_info_entry(inst) -> dict:
    """The exchangeInfo symbol entry (Binance's shape, 8 decimals)."""
    return {"symbol": inst.symbol, "status": "TRADING", "baseAsset": inst.base,
            "baseAssetPrecision": 8, "quoteAsset": inst.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": _d8(inst.tick_size),
                 "maxPrice": "1000000.00000000", "tickSize": _d8(inst.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": _d8(inst.lot_size),
                 "maxQty": "9000.00000000", "stepSize": _d8(inst.lot_size)},
                {"filterType": "NOTIONAL", "minNotional": _d8(inst.min_notional),
                 "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5}]}


START_MID = {"ETHUSDT": "3000"}   # every other symbol starts at 60,000 (BTCUSDT's level)


def _fmt8(units: int) -> bytes:
    return b"%d.%08d" % divmod(units, 10 ** 8)


def book_payloads(inst, count: int, rng: random.Random) -> list[bytes]:
    """`count` bookTicker payloads (u zero-filled, patched when sent) along a closed random walk
    of the mid, 1-3 ticks a step, so nearly every event moves a quote and the path repeats
    without a jump."""
    tick = int(Decimal(inst.tick_size) * 10 ** 8)
    mid = int(Decimal(START_MID.get(inst.symbol, "60000")) * 10 ** 8) // tick
    half = [rng.choice((-3, -2, -1, 1, 2, 3)) for _ in range(count // 2)]
    steps = half + [-s for s in reversed(half)] + [0] * (count % 2)
    lot = int(Decimal(inst.lot_size) * 10 ** 8)
    out = []
    for step in steps:
        mid += step
        spread = 1 if rng.random() < 0.8 else rng.randint(2, 4)
        bid = mid - spread // 2
        out.append(_BOOK % (U_DIGITS, 0, inst.symbol.encode(), _fmt8(bid * tick),
                            _fmt8(lot * rng.randint(1000, 50000)),
                            _fmt8((bid + spread) * tick), _fmt8(lot * rng.randint(1000, 50000))))
    return out


class _Frames:
    """One symbol's pre-encoded frames, raw and combined, each with the offset of u's digits
    (per frame: a payload near 126 bytes may take either header length)."""

    __slots__ = ("raw", "combined", "n", "next")

    def __init__(self, inst, count: int, rng: random.Random):
        self.raw, self.combined = [], []
        prefix = b'{"stream":"%s@bookTicker","data":' % inst.symbol.lower().encode()
        for p in book_payloads(inst, count, rng):
            raw = ws.frame(p)
            self.raw.append((bytearray(raw), len(raw) - len(p) + 5))        # after '{"u":'
            c = ws.frame(prefix + p + b"}")
            self.combined.append((bytearray(c), len(c) - len(p) - 1 + 5))
        self.n, self.next = count, 0


# ---------------------------------------------------------------- connections
