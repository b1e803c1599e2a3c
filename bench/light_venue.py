"""The light bench venue: a Binance-protocol exchange that takes little of the box, so the end-to-
end bench measures the contenders and not the venue beside them.

One process, one thread, one epoll loop over plain non-blocking sockets (bench/light_ws.py for
the WebSocket framing), serving on one port:
  /ws/<stream>[/<stream>...]      raw market streams
  /stream?streams=<a>/<b>...      combined streams ({"stream": ..., "data": ...})
  /ws-api/v3[?returnRateLimits=false]   the order API (bench/light_api.py: answers from byte
                                  templates, no signature checks, no matching: see there)
Only `<symbol>@bookTicker` streams carry data (others are accepted and stay silent).

Economy, what keeps it light:
  - every bookTicker frame is encoded before streaming starts (a cyclic price path per symbol,
    raw and combined variants, WebSocket header included); sending one patches the update id
    into its fixed-width slot (12 digits) and writes the same bytes to each subscriber;
  - pacing by a timerfd (bench/timerfd.py), symbols taken in turn, nothing busy-waits: the
    timer fires once per event, or every `batch_us` when events come faster than that; each
    wake-up writes every event due by then (at most MAX_BURST, the rest counted in `behind`),
    in one write per connection. On this 2-core KVM box a wake-up costs ~25 us of CPU and a
    loopback write ~15 us (both mostly kernel), so one wake-up and two writes per event would
    take ~28% of a core at 5,000 events/s before any order is answered; batch_us = 500 (the
    default) halves that at 5,000/s and changes nothing at 2,000/s and below. Every frame of a
    write is stamped with that write's time, so wire-to-wire stays what the contender adds;
    `--batch-us 0` gives one wake-up per event;
  - the order connection is read with recvmsg and SO_TIMESTAMPNS: each order's arrival is the
    kernel's receive stamp, not the loop's pick-up time.

Wire-to-wire (the venue's clock, CLOCK_REALTIME on both ends): the wall time just before the
first copy of a book frame is written -> the kernel receive stamp of the order frame whose
client order id is `<tag>-<u>-<n>`, u that frame's update id; one sample per u (the first order
carrying it). Update ids are global across symbols, so u alone names the frame.

Run as a child of the bench (bench/venue.py's Venue with module="bench.light_venue"; the same
stdin/stdout protocol as the simulator child: rate / mark / stop), or alone:
    python -m bench.light_venue --rate 5000 --symbols BTCUSDT --standalone
`--rate` is the TOTAL book events per second over all symbols (with one symbol, the same as the
simulator's per-symbol rate). Any symbol may be named: unknown ones are made up with BTCUSDT's
filters and base asset <symbol minus USDT> (the instruments bench streams S001USDT...).
"""
from __future__ import annotations

import json
import random
import resource
import select
import socket
import struct
import sys
import time
from urllib.parse import parse_qs, urlsplit

from bench import light_ws as ws
from bench.light_api import LightApi, Session
from bench.light_book import (  # noqa: F401 - re-exported: the bench and tests use them
    U_DIGITS, _Frames, book_payloads, exchange_info_entry, instruments_for,
)
from bench.timerfd import Timer

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # == SCM_TIMESTAMPNS (Linux)
MAX_BURST = 64                 # events sent per timer wake-up at most (the rest: `behind`)
BATCH_US = 500                 # wake-ups at most this often; events due meanwhile share a write
MAX_BACKLOG = 16 << 20         # a market client this far behind is dropped (slow consumer)
U_START = 10 ** 11             # update ids keep 12 digits for the next 9 * 10**11 events
_SLOTS = 1 << 16               # update ids remembered for matching (13 s at 5,000/s)
_MASK = _SLOTS - 1
PATH_FRAMES = 8192             # pre-encoded frames over all symbols (at least 64 per symbol)
_CMSG = socket.CMSG_SPACE(16)


# ---------------------------------------------------------------- instruments and frames
class _Conn:
    __slots__ = ("sock", "fd", "buf", "out", "kind", "reader", "session", "combined",
                 "symbols", "closing")

    def __init__(self, sock: socket.socket):
        self.sock, self.fd = sock, sock.fileno()
        self.buf = bytearray()
        self.out = bytearray()           # bytes the kernel did not take yet
        self.kind = ""                   # "" until upgraded, then "md" or "api"
        self.reader = ws.FrameReader()
        self.session: Session | None = None
        self.combined = False
        self.symbols: list[int] = []
        self.closing = False


class LightVenue:
    """The server; `run()` loops until `stop()` (or the control input's EOF in a child)."""

    def __init__(self, symbols: list[str], rate: float = 0.0, seed: int = 1,
                 host: str = "127.0.0.1", port: int = 0, batch_us: float = BATCH_US):
        rng = random.Random(seed)
        self.batch_ns = int(batch_us * 1000)
        self.instruments = instruments_for(symbols)
        per = max(64, PATH_FRAMES // len(symbols))
        self.frames = [_Frames(i, per, random.Random(rng.random())) for i in self.instruments]
        self.index = {i.symbol.lower(): n for n, i in enumerate(self.instruments)}
        balances = {"USDT": "1000000.00000000"}
        for i in self.instruments:
            balances[i.base] = "10.00000000"
        self.api = LightApi([exchange_info_entry(i) for i in self.instruments], balances,
                            self._on_order)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.md_url = f"ws://{host}:{self.port}"
        self.api_url = f"ws://{host}:{self.port}/ws-api/v3"
        self.ep = select.epoll()
        self.ep.register(self.listener.fileno(), select.EPOLLIN)
        self.timer = Timer()
        self.ep.register(self.timer.fd, select.EPOLLIN)
        self.conns: dict[int, _Conn] = {}
        self.subs: list[list[_Conn]] = [[] for _ in self.instruments]
        self.readers: dict[int, object] = {}             # extra fds -> callback (control)
        self.u = U_START
        self.turn = 0                                     # next symbol to send
        self._ring_u = [-1] * _SLOTS
        self._ring_t = [0] * _SLOTS
        self.samples: list[int] = []
        self.running = False
        self.stats = {"book_events": 0, "frames_sent": 0, "behind": 0,
                      "slow_consumers_dropped": 0, "md_connections": 0, "api_connections": 0,
                      "orders_stamped": 0, "orders_unstamped": 0}
        self.set_rate(rate)

    # -- control --
    def set_rate(self, per_s: float) -> None:
        """Total book events per second over all symbols (0: silent), from now on."""
        self.rate = max(float(per_s), 0.0)
        self.t0, self.due = time.perf_counter_ns(), 0      # events are due at t0 + k / rate
        period = int(1e9 / self.rate) if self.rate > 0 else 0
        self.timer.set_period_ns(max(period, self.batch_ns) if period else 0)

    def take_samples(self) -> list[int]:
        out, self.samples = self.samples, []
        return out

    def all_stats(self) -> dict:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return {**self.stats, **self.api.stats, "cpu_s": r.ru_utime + r.ru_stime}

    def add_reader(self, fd: int, callback) -> None:
        self.readers[fd] = callback
        self.ep.register(fd, select.EPOLLIN)

    def stop(self) -> None:
        self.running = False

    def close(self) -> None:
        for c in list(self.conns.values()):
            self._drop(c)
        self.timer.close()
        self.ep.close()
        self.listener.close()

    # -- the loop --
    def run(self) -> None:
        self.running = True
        timer_fd, listen_fd = self.timer.fd, self.listener.fileno()
        conns, poll = self.conns, self.ep.poll
        while self.running:
            for fd, mask in poll():
                if fd == timer_fd:
                    self._tick()
                elif fd in conns:
                    c = conns[fd]
                    if mask & select.EPOLLOUT:
                        self._flush(c)
                    if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                        self._read(c)
                elif fd == listen_fd:
                    self._accept()
                elif fd in self.readers:
                    self.readers[fd]()

    # -- market --
    def _tick(self) -> None:
        self.timer.expirations()
        due = int((time.perf_counter_ns() - self.t0) * self.rate / 1e9)
        n, self.due = due - self.due, due
        if n > MAX_BURST:
            self.stats["behind"] += n - MAX_BURST
            n = MAX_BURST
        if n == 1:
            self._emit_one()
        elif n > 1:
            self._emit_many(n)

    def _next_frame(self):
        """(frames of the next symbol's next step, symbol index, update id)."""
        i = self.turn
        self.turn = i + 1 if i + 1 < len(self.frames) else 0
        f = self.frames[i]
        k = f.next
        f.next = k + 1 if k + 1 < f.n else 0
        u = self.u = self.u + 1
        slot = u & _MASK
        self._ring_u[slot] = u
        return f, k, i, u, slot

    def _emit_one(self) -> None:
        f, k, i, u, slot = self._next_frame()
        digits = b"%d" % u
        raw = comb = None
        subs = self.subs[i]
        self._ring_t[slot] = time.time_ns()          # just before the first copy is written
        for c in subs:
            if c.combined:
                if comb is None:
                    comb, at = f.combined[k]
                    comb[at:at + U_DIGITS] = digits
                self._send(c, comb)
            else:
                if raw is None:
                    raw, at = f.raw[k]
                    raw[at:at + U_DIGITS] = digits
                self._send(c, raw)
        self.stats["book_events"] += 1
        self.stats["frames_sent"] += len(subs)

    def _emit_many(self, n: int) -> None:
        """n events due at once: every connection gets its frames of them in one write."""
        out: dict[_Conn, list[bytes]] = {}
        slots = []
        for _ in range(n):
            f, k, i, u, slot = self._next_frame()
            slots.append(slot)
            digits = b"%d" % u
            for c in self.subs[i]:
                frame, at = f.combined[k] if c.combined else f.raw[k]
                frame[at:at + U_DIGITS] = digits
                out.setdefault(c, []).append(bytes(frame))
                self.stats["frames_sent"] += 1
        t = time.time_ns()                           # just before the first write
        for slot in slots:
            self._ring_t[slot] = t
        for c, frames in out.items():
            self._send(c, b"".join(frames))
        self.stats["book_events"] += n

    def _on_order(self, t_ns: int, cid: str) -> None:
        parts = cid.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return
        u = int(parts[1])
        slot = u & _MASK
        if self._ring_u[slot] == u:
            self._ring_u[slot] = -2                  # consumed: one sample per update id
            self.samples.append(t_ns - self._ring_t[slot])

    # -- sockets --
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            c = _Conn(sock)
            self.conns[c.fd] = c
            self.ep.register(c.fd, select.EPOLLIN)

    def _send(self, c: _Conn, data) -> None:
        if c.out:
            c.out += data
            if len(c.out) > MAX_BACKLOG:
                self.stats["slow_consumers_dropped"] += 1
                self._drop(c)
            return
        try:
            n = c.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._drop(c)
            return
        if n < len(data):
            c.out += data[n:]
            self.ep.modify(c.fd, select.EPOLLIN | select.EPOLLOUT)

    def _flush(self, c: _Conn) -> None:
        try:
            n = c.sock.send(c.out)
        except BlockingIOError:
            return
        except OSError:
            self._drop(c)
            return
        del c.out[:n]
        if not c.out:
            if c.closing:
                self._drop(c)
            elif c.fd in self.conns:
                self.ep.modify(c.fd, select.EPOLLIN)

    def _read(self, c: _Conn) -> None:
        try:
            data, anc, _, _ = c.sock.recvmsg(262144, _CMSG)
        except BlockingIOError:
            return
        except OSError:
            self._drop(c)
            return
        if not data:
            self._drop(c)
            return
        t_ns = 0
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = struct.unpack_from("qq", raw)
                t_ns = sec * 1_000_000_000 + nsec
        c.buf += data
        if not c.kind:
            self._upgrade(c)
            if not c.kind:
                return
        messages, used = c.reader.parse(c.buf)
        if used:
            del c.buf[:used]
        answers = []                 # requests read together are answered in one write
        for opcode, payload in messages:
            if opcode == ws.OP_TEXT or opcode == ws.OP_BINARY:
                if c.kind == "api":
                    if t_ns:
                        self.stats["orders_stamped"] += 1
                    else:
                        self.stats["orders_unstamped"] += 1
                    answers.append(ws.frame(self.api.handle(c.session, t_ns or time.time_ns(),
                                                            payload)))
                    if c.session.events:     # its executionReports follow the answer
                        answers += [ws.frame(e) for e in c.session.events]
                        c.session.events.clear()
                else:
                    self._md_control(c, payload)
            elif opcode == ws.OP_PING:
                answers.append(ws.frame(payload, ws.OP_PONG))
            elif opcode == ws.OP_CLOSE:
                answers.append(ws.frame(payload[:2], ws.OP_CLOSE))
                self._send(c, b"".join(answers))
                c.closing = True
                if not c.out:
                    self._drop(c)
                return
        if answers:
            self._send(c, answers[0] if len(answers) == 1 else b"".join(answers))

    def _upgrade(self, c: _Conn) -> None:
        try:
            got = ws.handshake(c.buf)
        except ValueError:
            self._drop(c)
            return
        if got is None:
            return
        path, response, used = got
        del c.buf[:used]
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        if parts.path.rstrip("/") == "/ws-api/v3":
            c.kind = "api"
            c.session = Session(query.get("returnRateLimits", ["true"])[0] != "false")
            self.stats["api_connections"] += 1
        elif parts.path == "/stream" or parts.path.startswith("/ws"):
            c.kind = "md"
            c.combined = parts.path == "/stream"
            names = (query.get("streams", [""])[0] if c.combined
                     else parts.path[3:].lstrip("/")).split("/")
            self._subscribe(c, names)
            self.stats["md_connections"] += 1
        else:
            self._send(c, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            c.closing = True
            return
        self._send(c, response)

    def _subscribe(self, c: _Conn, names: list[str]) -> None:
        for name in names:
            symbol, _, stream = name.partition("@")
            i = self.index.get(symbol.lower())
            if i is not None and stream == "bookTicker" and i not in c.symbols:
                c.symbols.append(i)
                self.subs[i].append(c)

    def _md_control(self, c: _Conn, payload: bytes) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market connection."""
        try:
            req = json.loads(payload)
            method, rid = req.get("method"), req.get("id")
        except (ValueError, AttributeError):
            return
        result = None
        if method == "SUBSCRIBE":
            self._subscribe(c, list(req.get("params") or []))
        elif method == "UNSUBSCRIBE":
            for name in req.get("params") or []:
                i = self.index.get(name.partition("@")[0].lower())
                if i is not None and i in c.symbols:
                    c.symbols.remove(i)
                    self.subs[i].remove(c)
        elif method == "LIST_SUBSCRIPTIONS":
            result = [f"{self.instruments[i].symbol.lower()}@bookTicker" for i in c.symbols]
        self._send(c, ws.frame(json.dumps({"result": result, "id": rid}).encode()))

    def _drop(self, c: _Conn) -> None:
        if self.conns.pop(c.fd, None) is None:
            return
        for i in c.symbols:
            if c in self.subs[i]:
                self.subs[i].remove(c)
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        c.sock.close()


if __name__ == "__main__":
    from bench.light_child import main
    sys.exit(main(sys.argv[1:]))
