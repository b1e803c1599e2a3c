"""The simulator's replay of a capture (SimConfig.replay_file) instead of the synthetic market.
A part of SimServer (engine/sim/server.py puts the parts together).

From the first market connection on (with replay_hold, from start_replay() on), every payload
of the capture goes verbatim to every market connection (subscriptions are ignored), at the
recorded pace divided by replay_speed, never closer than replay_min_gap_ms and, with
replay_quiet_ms, each once the order API has been quiet that long (lockstep with the engine:
every answer, and what it caused, before the next frame). Replayed bookTicker and trade frames
also move the book, so resting orders still match.
"""
from __future__ import annotations

import asyncio
import logging
from time import perf_counter_ns

import msgspec
from picows import WSMsgType

# The feed owns the capture format (MMCAP1); replay reads it with the feed's reader.
from engine.feed.capture import OPCODE_BINARY, read_capture
from engine.sim.market import parse_decimal

log = logging.getLogger("mm.sim")
_TEXT = WSMsgType.TEXT
_decode = msgspec.json.Decoder().decode


class Replay:
    """SimServer's replay part. Uses cfg, _loop, books, by_symbol, clock, exchange, md_conns,
    stats, the API's activity (api_last_active, api_delayed) and the stalled switch."""

    def _init_replay(self) -> None:
        self._replay_task: asyncio.Task | None = None
        self._replay_go: asyncio.Event | None = None
        if self.cfg.replay_file:
            for b in self.books:
                b.replayed = True

    def _arm_replay(self) -> None:
        """At start: check the file (bad magic raises now) and set the go signal."""
        next(iter(read_capture(self.cfg.replay_file, strict=False)), None)
        self._replay_go = asyncio.Event()
        if not self.cfg.replay_hold:
            self._replay_go.set()

    def start_replay(self) -> None:
        """Let a held replay (replay_hold) begin with the first market connection."""
        if self._replay_go is not None:
            self._replay_go.set()

    async def _replay(self) -> None:
        """Send the capture's payloads verbatim to every market connection."""
        cfg = self.cfg
        loop = self._loop
        speed = cfg.replay_speed
        try:
            await self._replay_go.wait()
            await self._replay_file(cfg, loop, speed)
        except asyncio.CancelledError:
            raise
        except Exception:               # a broken file ends the replay, not the server
            log.exception("replay of %s stopped", cfg.replay_file)

    async def _api_quiet(self, quiet_s: float) -> None:
        """Return once no API request came and no held answer left for `quiet_s`."""
        while True:
            idle = (perf_counter_ns() - self.api_last_active) / 1e9
            if self.api_delayed == 0 and idle >= quiet_s:
                return
            await asyncio.sleep(max(quiet_s - idle, 0.001))

    async def _replay_file(self, cfg, loop, speed: float) -> None:
        gap = cfg.replay_min_gap_ms / 1000.0
        quiet = cfg.replay_quiet_ms / 1000.0
        sent = 0.0
        while True:
            t0_wall = loop.time()
            t0_rec = None
            for n, (ts, opcode, payload) in enumerate(read_capture(cfg.replay_file, strict=False)):
                if t0_rec is None:
                    t0_rec = ts
                due = t0_wall + (ts - t0_rec) / 1e9 / speed if speed > 0 else 0.0
                if gap > 0:
                    due = max(due, sent + gap)
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif speed == 0 and n % 256 == 255:
                    await asyncio.sleep(0)
                if quiet > 0:
                    await self._api_quiet(quiet)
                self._replay_frame(opcode, payload)
                sent = loop.time()
            if not cfg.replay_loop:
                return

    def _replay_frame(self, opcode: int, payload: bytes) -> None:
        kind = WSMsgType.BINARY if opcode == OPCODE_BINARY else _TEXT
        if opcode != OPCODE_BINARY:
            self._replay_book(payload)
        if self.stalled:
            return
        for conn in self.md_conns:
            conn.t.send(kind, payload)
        self.stats["frames_sent"] += len(self.md_conns)
        self.stats["replay_frames"] += 1
        if self._user_events:
            self._flush_user_events()

    def _replay_book(self, payload: bytes) -> None:
        """Follow replayed bookTicker/trade frames so resting orders still match."""
        try:
            msg = _decode(payload)
        except msgspec.DecodeError:
            return
        if isinstance(msg, dict) and isinstance(msg.get("data"), dict):
            msg = msg["data"]
        if not isinstance(msg, dict):
            return
        book = self.by_symbol.get(msg.get("s"))
        if book is None:
            return
        if "u" in msg and "b" in msg and "a" in msg and "e" not in msg:
            try:
                bid = parse_decimal(msg["b"], book.pexp)
                ask = parse_decimal(msg["a"], book.pexp)
                bq = parse_decimal(msg["B"], book.qexp)
                aq = parse_decimal(msg["A"], book.qexp)
            except (KeyError, TypeError):
                return
            if None in (bid, ask, bq, aq):
                return
            book.bid, book.ask, book.bid_qty, book.ask_qty = bid[0], ask[0], bq[0], aq[0]
            book.update_id = int(msg["u"])
            self.clock.stamp(book.index, book.update_id, perf_counter_ns())
            self.exchange.on_book(book)
        elif msg.get("e") == "trade":
            price = parse_decimal(str(msg.get("p")), book.pexp)
            qty = parse_decimal(str(msg.get("q")), book.qexp)
            if price and qty:
                self.exchange.on_trade(book, not msg.get("m"), price[0], qty[0],
                                       int(msg.get("t", 0)))
