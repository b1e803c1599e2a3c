"""A seeded synthetic Binance spot BTCUSDT text capture ("<arrival ns> <frame>" lines, as
hftbacktest's collector writes them and `mm backtest` reads them), with the three streams the
corpus captures have: bookTicker, trade and depth@100ms diff-depth, plus the REST snapshot the
collector writes at the start. For tests and the benchmark, not for production.

The market: an L2 book of LEVELS price levels a side around a random-walk mid; every event
is one of: the touch changes (a bookTicker: it moves, resizes, or someone improves on a wide
touch), a trade at the touch (which takes size off the touch; a trade that empties it moves
the touch), or sizes change deeper in the book; every
100 ms of market time a depthUpdate carries every level that changed since the last one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TICK = 0.01
LOT = 0.00001
LEVELS = 40
START_TICKS = 6_000_000          # 60000.00
SWEEP_SHARE = 0.1                # trades that take 2-8 levels at once


def _px(t: int) -> str:
    return f"{t * TICK:.8f}"


def _qty(lots: int) -> str:
    return f"{lots * LOT:.8f}"


def _put(side: dict, changed: dict, p: int, rng) -> None:
    side[p] = changed[p] = int(rng.integers(1, 40_000))


def _drop(side: dict, changed: dict, p: int) -> None:
    del side[p]
    changed[p] = 0


def write_capture(path: str | Path, events: int, seed: int = 1,
                  start_ns: int = 1_723_161_253_937_085_768,
                  sweep_share: float = SWEEP_SHARE) -> Path:
    """Write a capture of `events` market steps (about 0.75 frames each: changes behind the
    touch show only in the next depthUpdate) to `path`; return the path. Depth and trade
    frames carry USD-M's "T" and "X" too, so hftbacktest's own converter
    (hftbacktest.data.utils.binancefutures.convert) reads the file as well."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    bid_t = START_TICKS
    bids = {bid_t - k: int(rng.integers(1, 40_000)) for k in range(LEVELS)}
    asks = {bid_t + 1 + k: int(rng.integers(1, 40_000)) for k in range(LEVELS)}
    changed_b: dict[int, int] = {}
    changed_a: dict[int, int] = {}
    u = 1_000_000
    trade_id = 1
    t = start_ns
    next_depth = t + 100_000_000
    gaps = rng.exponential(1_000_000, events).astype(np.int64) + 1000
    kinds = rng.random(events)
    out = []

    def best():
        return max(bids), min(asks)

    out.append(f"{t} " + json.dumps({
        "lastUpdateId": u, "E": t // 1_000_000, "T": t // 1_000_000, "bids": [[_px(p), _qty(q)] for p, q in sorted(bids.items())[::-1]],
        "asks": [[_px(p), _qty(q)] for p, q in sorted(asks.items())]}, separators=(",", ":")))
    for k in range(events):
        t += int(gaps[k])
        if t >= next_depth and (changed_b or changed_a):
            U = u + 1
            u += len(changed_b) + len(changed_a)
            out.append(f"{t} " + json.dumps({"stream": "btcusdt@depth@100ms", "data": {
                "e": "depthUpdate", "E": t // 1_000_000, "T": t // 1_000_000, "s": "BTCUSDT",
                "U": U, "u": u,
                "b": [[_px(p), _qty(q)] for p, q in changed_b.items()],
                "a": [[_px(p), _qty(q)] for p, q in changed_a.items()]}},
                separators=(",", ":")))
            changed_b.clear()
            changed_a.clear()
            next_depth = t + 100_000_000
            continue
        b, a = best()
        r = kinds[k]
        if r < 0.25:                                   # a trade at the touch, or a sweep
            buy = rng.random() < 0.5
            side = asks if buy else bids
            sweep = int(rng.integers(2, 9)) if rng.random() < sweep_share else 1
            for n in range(sweep):
                p = min(asks) if buy else max(bids)
                last = n == sweep - 1
                q = int(rng.integers(1, max(2, side[p] + side[p] // 2))) if last else side[p]
                take = min(q, side[p])
                side[p] -= take
                (changed_a if buy else changed_b)[p] = side[p]
                if side[p] == 0:                       # the touch moves: refill the far end
                    del side[p]
                    if buy:
                        _put(asks, changed_a, max(asks) + 1, rng)
                    else:
                        _put(bids, changed_b, min(bids) - 1, rng)
                trade_id += 1
                out.append(f"{t} " + json.dumps({"stream": "btcusdt@trade", "data": {
                    "e": "trade", "E": t // 1_000_000, "s": "BTCUSDT", "t": trade_id,
                    "p": _px(p), "q": _qty(take), "T": t // 1_000_000, "m": not buy,
                    "M": True, "X": "MARKET"}}, separators=(",", ":")))
                u += 1
            if sweep > 1:                              # the book ticker shows the new touch
                b, a = best()
                u += 1
                out.append(f"{t} " + json.dumps({"stream": "btcusdt@bookTicker", "data": {
                    "u": u, "s": "BTCUSDT", "b": _px(b), "B": _qty(bids[b]), "a": _px(a),
                    "A": _qty(asks[a]), "e": "bookTicker"}}, separators=(",", ":")))
        elif r < 0.75:                                 # the touch moves or resizes
            step = int(rng.choice((-2, -1, -1, 0, 0, 0, 1, 1, 2)))
            if a - b > 1 and rng.random() < 0.6:     # someone improves on a wide touch
                if rng.random() < 0.5:
                    _put(bids, changed_b, b + 1, rng)
                    _drop(bids, changed_b, min(bids))
                else:
                    _put(asks, changed_a, a - 1, rng)
                    _drop(asks, changed_a, max(asks))
            elif step < 0:                               # bids leave, asks follow down
                for _ in range(-step):
                    p = max(bids)
                    del bids[p]
                    changed_b[p] = 0
                    _put(asks, changed_a, min(asks) - 1, rng)
                    _put(bids, changed_b, min(bids) - 1, rng)
                    _drop(asks, changed_a, max(asks))
            elif step > 0:                             # asks leave, bids follow up
                for _ in range(step):
                    p = min(asks)
                    del asks[p]
                    changed_a[p] = 0
                    _put(bids, changed_b, max(bids) + 1, rng)
                    _put(asks, changed_a, max(asks) + 1, rng)
                    _drop(bids, changed_b, min(bids))
            else:
                side, changed, p = ((bids, changed_b, b) if rng.random() < 0.5
                                    else (asks, changed_a, a))
                side[p] = int(rng.integers(1, 40_000))
                changed[p] = side[p]
            b, a = best()
            u += 1
            out.append(f"{t} " + json.dumps({"stream": "btcusdt@bookTicker", "data": {
                "u": u, "s": "BTCUSDT", "b": _px(b), "B": _qty(bids[b]), "a": _px(a),
                "A": _qty(asks[a]), "e": "bookTicker"}}, separators=(",", ":")))
        else:                                  # sizes change behind the touch (depth only)
            if rng.random() < 0.5:
                p = b - int(rng.integers(1, 15))
                if p in bids:
                    _put(bids, changed_b, p, rng)
            else:
                p = a + int(rng.integers(1, 15))
                if p in asks:
                    _put(asks, changed_a, p, rng)
    path.write_text("\n".join(out) + "\n")
    return path
