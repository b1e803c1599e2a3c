"""The simulator's fault controls: the switches tests throw (stall the streams, truncate frames,
delay answers, drop or silence connections, end user-data streams, announce a shutdown) and the
chaos injected on book events (engine/sim/chaos.py holds the dice). A part of SimServer
(engine/sim/server.py puts the parts together); every method runs on the server's loop.
"""
from __future__ import annotations

from time import perf_counter_ns

import msgspec

from engine.sim.api_params import now_ms
from engine.sim.market import Book

_encode = msgspec.json.Encoder().encode


class FaultSwitches:
    """SimServer's fault part. Uses chaos, exchange and the open connections (md_conns,
    api_conns, _abort)."""

    def _init_faults(self) -> None:
        # read on the hot paths of the other parts; tests set them (tests/support/sim_thread.py)
        self.stalled = False          # market frames not written (the book keeps moving)
        self.malformed_left = 0       # market frames still to truncate
        self.response_delay_s = 0.0   # API answers and user events held this long
        self.silenced: list[int] = []  # perf_counter_ns of every silent_api injection

    def _book_chaos(self, book: Book) -> None:
        chaos = self.chaos
        resting = self.exchange.open[book.symbol]
        if resting and chaos.roll("partial_fill"):
            o = chaos.rng.choice(list(resting.values()))
            lots = (o.qty - o.filled) // book.lot
            if lots > 1:                    # part of it: at least one lot, never all
                self.exchange.taker_fill(o, chaos.rng.randint(1, lots - 1) * book.lot)
        if self.api_conns and chaos.roll("drop_api"):
            self.drop_connections("api")
        if self.api_conns and chaos.roll("silent_api"):
            self.silence_api()

    def drop_connections(self, kind: str = "all") -> int:
        """Abort connections (no close frame) of kind md | api | all. Returns how many."""
        if kind not in ("md", "api", "all"):
            raise ValueError(f"kind: expected md, api or all, got {kind!r}")
        conns = []
        if kind in ("md", "all"):
            conns += list(self.md_conns)
        if kind in ("api", "all"):
            conns += list(self.api_conns)
        for c in conns:
            self._abort(c)
        return len(conns)

    def silence_api(self) -> int:
        """Make every order API connection silent without closing it (frames read and
        dropped, nothing written: no answers, reports or pongs). Returns how many."""
        conns = [c for c in self.api_conns if not c.silent]
        for c in conns:
            c.silent = True
        if conns and len(self.silenced) < 10_000:
            self.silenced.append(perf_counter_ns())
        return len(conns)

    def mute_user_streams(self) -> int:
        """End every user-data subscription silently (answers still flow, reports do not: a
        user-data stream that died while its connection lives). Returns how many ended."""
        n = 0
        for c in self.api_conns:
            n += len(c.session.user_subs)
            c.session.user_subs.clear()
        return n

    def announce_shutdown(self) -> int:
        """Send serverShutdown on every order API connection (the venue does, before closing
        them); connections stay open. Returns how many were told."""
        frame = _encode({"event": {"e": "serverShutdown", "E": now_ms()}})
        conns = [c for c in self.api_conns if not c.closed]
        for c in conns:
            c.send(frame)
        return len(conns)
