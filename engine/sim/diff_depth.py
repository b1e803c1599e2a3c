"""The simulator's diff depth: `<symbol>@depth@100ms` and `<symbol>@depth` (1 s) events and the
REST snapshot `GET /api/v3/depth?symbol=X&limit=N`, consistent with each other as Binance's are
(../shared/PROTOCOLS.md section 1). A part of SimServer (engine/sim/server.py).

Per book one published state P (price -> qty per side, the book's displayed ladder as of the
last diff) and its id `last_u`. Every 100 ms the ladder is compared with P: the changed levels
(absolute quantities, 0 = gone) go out as one event with U = last_u + 1 and u = the book's
update id, and P becomes the ladder. The 1 s stream carries the same changes merged over ten
ticks. A snapshot is P at last_u, so a client that applies every event after it rebuilds the
ladder exactly. `drop_depth_events(n)` advances P without sending the next n events: every
subscriber sees a gap (U > its book id + 1).
"""
from __future__ import annotations

from urllib.parse import parse_qs

import msgspec

from engine.sim.market import DEPTH_LEVELS, Book, wire_decimal

_encode = msgspec.json.Encoder().encode
MAX_LIMIT = 5000


class _State:
    __slots__ = ("bids", "asks", "last_u", "slow_first", "slow_bids", "slow_asks")

    def __init__(self, book: Book):
        bids, asks = book.ladder()
        self.bids, self.asks = dict(bids), dict(asks)
        self.last_u = book.update_id
        self.slow_first = 0               # U of the first change merged for the 1 s stream
        self.slow_bids: dict[int, int] = {}
        self.slow_asks: dict[int, int] = {}


def _changes(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    out = {px: q for px, q in new.items() if old.get(px) != q}
    out.update((px, 0) for px in old if px not in new)
    return out


class DiffDepth:
    """SimServer's diff-depth part. Uses books, by_symbol, subs, paused, _publish, stats."""

    def _init_diff_depth(self) -> None:
        self._diff: list[_State | None] = [None] * len(self.books)
        self._diff_fast = [f"{b.stream_symbol}@depth@100ms" for b in self.books]
        self._diff_slow = [f"{b.stream_symbol}@depth" for b in self.books]
        self.depth_drop_left = 0          # diff events still to drop (a gap for every client)
        self.depth_drop_symbol = ""       # ... of this symbol only ("" = any)
        self.depth_refusing = False       # REST depth answers 503 (the venue overloaded)
        self.stats["depth_events_dropped"] = 0
        self.stats["depth_snapshots_served"] = 0

    def _state(self, i: int) -> _State:
        st = self._diff[i]
        if st is None:
            st = self._diff[i] = _State(self.books[i])
        return st

    def _diff_tick(self, slow: bool) -> None:
        """Every 100 ms (from the depth timer); `slow`: the 1 s stream's turn too."""
        for i, book in enumerate(self.books):
            fast_on = bool(self.subs.get(self._diff_fast[i]))
            slow_on = bool(self.subs.get(self._diff_slow[i]))
            if not fast_on and not slow_on and self._diff[i] is None:
                continue                  # nobody asked: no state to keep yet
            st = self._state(i)
            u = book.update_id
            if u > st.last_u:
                bids, asks = book.ladder()
                nb, na = dict(bids), dict(asks)
                db, da = _changes(st.bids, nb), _changes(st.asks, na)
                first = st.last_u + 1
                st.bids, st.asks, st.last_u = nb, na, u
                if self.depth_drop_left > 0 and self.depth_drop_symbol in ("", book.symbol):
                    self.depth_drop_left -= 1
                    self.stats["depth_events_dropped"] += 1
                    st.slow_first = 0             # the 1 s stream loses them too
                    st.slow_bids.clear()
                    st.slow_asks.clear()
                else:
                    if fast_on:
                        self._publish(self._diff_fast[i], self._event(book, first, u, db, da))
                    if not st.slow_first:
                        st.slow_first = first
                    st.slow_bids.update(db)
                    st.slow_asks.update(da)
            if slow and st.slow_first:
                if slow_on:
                    self._publish(self._diff_slow[i], self._event(
                        book, st.slow_first, st.last_u, st.slow_bids, st.slow_asks))
                st.slow_first = 0
                st.slow_bids.clear()
                st.slow_asks.clear()

    @staticmethod
    def _event(book: Book, first: int, last: int, bids: dict, asks: dict) -> bytes:
        from engine.sim.api_params import now_ms

        return (f'{{"e":"depthUpdate","E":{now_ms()},"s":"{book.symbol}","U":{first},'
                f'"u":{last},"b":{book.levels_json(bids.items())},'
                f'"a":{book.levels_json(asks.items())}}}').encode()

    # -- REST --
    def depth_snapshot(self, symbol: str, limit: int = 100) -> dict:
        """GET /api/v3/depth's answer: the diff stream's state (best first, `limit` levels)."""
        book = self.by_symbol[symbol]
        st = self._state(book.index)
        p, q = book.pexp, book.qexp
        bids = sorted(st.bids.items(), reverse=True)[:limit]
        asks = sorted(st.asks.items())[:limit]
        self.stats["depth_snapshots_served"] += 1
        return {"lastUpdateId": st.last_u,
                "bids": [[wire_decimal(px, p), wire_decimal(v, q)] for px, v in bids],
                "asks": [[wire_decimal(px, p), wire_decimal(v, q)] for px, v in asks]}

    def rest_get(self, path: str, query: str) -> tuple[int, bytes]:
        """(status, JSON body) of a REST GET; only /api/v3/depth is served."""
        if path != "/api/v3/depth":
            return 404, _encode({"code": -1000, "msg": f"unknown path {path}"})
        if self.depth_refusing:
            return 503, _encode({"code": -1001, "msg": "Internal error; unable to process your "
                                 "request. Please try again."})
        qs = parse_qs(query)
        symbol = qs.get("symbol", [""])[0]
        if symbol not in self.by_symbol:
            return 400, _encode({"code": -1121, "msg": "Invalid symbol."})
        try:
            limit = int(qs.get("limit", ["100"])[0])
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_LIMIT:
            return 400, _encode({"code": -1100, "msg": "Illegal characters found in parameter "
                                 "'limit'; legal range is '1-5000'."})
        return 200, _encode(self.depth_snapshot(symbol, limit))

    # -- fault switch --
    def drop_depth_events(self, n: int = 1, symbol: str = "") -> None:
        """Compute the next n diff events (of `symbol`'s book, "" = of any book) but send none:
        a gap for every subscriber, on demand."""
        if n < 0:
            raise ValueError(f"n: expected >= 0, got {n}")
        if symbol and symbol not in self.by_symbol:
            raise ValueError(f"symbol: {symbol!r} is not listed")
        self.depth_drop_left, self.depth_drop_symbol = n, symbol

    def refuse_depth_snapshots(self, on: bool) -> None:
        """While on, GET /api/v3/depth answers 503: a gap stays unsynced until it is off."""
        self.depth_refusing = bool(on)


__all__ = ["DiffDepth", "DEPTH_LEVELS"]
