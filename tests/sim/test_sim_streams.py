"""Market streams over real WebSockets (websockets library and picows): frame shapes, combined
wrapping, SUBSCRIBE/UNSUBSCRIBE, pings, connection age, and the market-side fault switches."""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
import websockets
from picows import WSListener, WSMsgType, ws_connect

from tests.support.sim_thread import SimThread

BT_KEYS = {"u", "s", "b", "B", "a", "A"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def recv_json(ws, n: int, timeout: float = 5.0) -> list[dict]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(json.loads(await ws.recv()))
    return out


def check_book_ticker(d: dict, symbol: str) -> None:
    assert set(d) == BT_KEYS and d["s"] == symbol
    for k in ("b", "B", "a", "A"):
        assert isinstance(d[k], str) and len(d[k].split(".")[1]) == 8     # Binance: 8 decimals
    bid, ask = Decimal(d["b"]), Decimal(d["a"])
    assert bid < ask and bid % Decimal("0.01") == 0 and ask % Decimal("0.01") == 0
    assert Decimal(d["B"]) > 0 and Decimal(d["A"]) > 0


def test_raw_book_ticker_frames():
    async def go(sim):
        async with websockets.connect(sim.md_url + "/ws/btcusdt@bookTicker") as ws:
            frames = await recv_json(ws, 50)
        for d in frames:
            check_book_ticker(d, "BTCUSDT")
        us = [d["u"] for d in frames]
        assert all(b > a for a, b in zip(us, us[1:]))
        assert sim.update_id("BTCUSDT") >= us[-1]
    with SimThread(event_rate=500, seed=5) as sim:
        run(go(sim))


def test_combined_streams_trade_and_depth():
    async def go(sim):
        url = sim.md_url + "/stream?streams=ethusdt@bookTicker/ethusdt@trade/ethusdt@depth5@100ms"
        async with websockets.connect(url) as ws:
            seen = {}
            async with asyncio.timeout(5):
                while len(seen) < 3:
                    m = json.loads(await ws.recv())
                    assert set(m) == {"stream", "data"}
                    seen.setdefault(m["stream"], m["data"])
        check_book_ticker(seen["ethusdt@bookTicker"], "ETHUSDT")
        t = seen["ethusdt@trade"]
        assert t["e"] == "trade" and t["s"] == "ETHUSDT" and isinstance(t["m"], bool)
        assert set(t) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
        d = seen["ethusdt@depth5@100ms"]
        assert set(d) == {"lastUpdateId", "bids", "asks"}
        assert len(d["bids"]) == 5 and len(d["asks"]) == 5
        bids = [Decimal(p) for p, _ in d["bids"]]
        asks = [Decimal(p) for p, _ in d["asks"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    with SimThread(event_rate=400, trade_rate=100, seed=2) as sim:
        run(go(sim))


def test_subscribe_unsubscribe_list_and_property():
    async def go(sim):
        async with websockets.connect(sim.md_url + "/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"],
                                      "id": 1}))
            acks = []
            data = []
            async with asyncio.timeout(5):
                while not acks or len(data) < 3:
                    m = json.loads(await ws.recv())
                    (acks if "id" in m else data).append(m)
            assert acks[0] == {"result": None, "id": 1}
            check_book_ticker(data[0], "BTCUSDT")            # raw connection: not wrapped
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "list1"}))
            await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True],
                                      "id": 2}))
            await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["other", 1], "id": 3}))
            answers = {}
            wrapped = None
            async with asyncio.timeout(5):
                while len(answers) < 3 or wrapped is None:
                    m = json.loads(await ws.recv())
                    if "id" in m:
                        answers[m["id"]] = m
                    elif "stream" in m:
                        wrapped = m
            assert answers["list1"] == {"result": ["btcusdt@bookTicker"], "id": "list1"}
            assert answers[2] == {"result": None, "id": 2}
            assert answers[3]["code"] == 0 and answers[3]["msg"] == "Unknown property"
            assert wrapped["stream"] == "btcusdt@bookTicker"
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"],
                                      "id": 4}))
            async with asyncio.timeout(5):
                while True:
                    m = json.loads(await ws.recv())
                    if m.get("id") == 4:
                        assert m == {"result": None, "id": 4}
                        break
            # nothing more after the ack (give the loop a moment)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await ws.recv()
            await ws.send("{broken")
            m = json.loads(await ws.recv())
            assert m["code"] == 3
    with SimThread(event_rate=300) as sim:
        run(go(sim))


class _Collector(WSListener):
    """picows client: collects text frames and ping frames (auto-pong off: answers itself)."""

    def __init__(self):
        self.frames: list[bytes] = []
        self.pings = 0
        self.closed = asyncio.Event()
        self.close_seen = False

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            self.frames.append(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.PING:
            self.pings += 1
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            self.close_seen = True
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport):
        self.closed.set()


def test_picows_client_server_pings_and_connection_age():
    async def go(sim):
        transport, client = await ws_connect(_Collector, sim.md_url + "/ws/btcusdt@bookTicker",
                                             enable_auto_pong=False)
        # the server pings every 0.2 s, and closes the connection at 1.5 s of age
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.close_seen
        assert client.pings >= 3
        assert len(client.frames) > 10
        for raw in client.frames:
            check_book_ticker(json.loads(raw), "BTCUSDT")
        # our own ping is answered
        async with websockets.connect(sim.md_url + "/ws/btcusdt@bookTicker") as ws:
            pong = await ws.ping(b"hello")
            await asyncio.wait_for(pong, 5)
    with SimThread(event_rate=100, ping_interval_s=0.2, max_connection_age_s=1.5) as sim:
        run(go(sim))


def test_market_fault_switches():
    async def go(sim):
        async with websockets.connect(sim.md_url + "/ws/btcusdt@bookTicker") as ws:
            first = (await recv_json(ws, 1))[0]
            sim.stall_streams(True)
            await asyncio.sleep(0.1)           # frames in flight before the stall
            while True:
                try:
                    async with asyncio.timeout(0.3):
                        await ws.recv()
                except TimeoutError:
                    break                       # silence while stalled
            sim.stall_streams(False)
            after = (await recv_json(ws, 1))[0]
            assert after["u"] > first["u"] + 1   # the book kept moving: a gap in u

            sim.send_malformed(2)
            raw = []
            async with asyncio.timeout(5):
                while len(raw) < 4:
                    raw.append(await ws.recv())
            bad = 0
            for r in raw:
                try:
                    json.loads(r)
                except ValueError:
                    bad += 1
            assert bad == 2
            assert sim.stats()["malformed_sent"] == 2

            sim.pause_market()
            u = sim.update_id("BTCUSDT")
            await asyncio.sleep(0.2)
            assert sim.update_id("BTCUSDT") == u
            sim.resume_market()
            sim.set_event_rate(1000)
            await recv_json(ws, 20)
            assert sim.update_id("BTCUSDT") > u

            assert sim.drop_connections("md") == 1
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
        assert sim.stats()["md_open"] == 0
    with SimThread(event_rate=200) as sim:
        run(go(sim))


def test_shutdown_is_announced_then_closed():
    async def go():
        sim = SimThread(event_rate=50).start()
        try:
            raw = await websockets.connect(sim.md_url + "/ws/btcusdt@bookTicker", max_queue=None)
            comb = await websockets.connect(sim.md_url + "/stream?streams=btcusdt@bookTicker",
                                            max_queue=None)
            await recv_json(raw, 1)
            await recv_json(comb, 1)
        finally:
            await asyncio.to_thread(sim.stop)
        for ws, wrap in ((raw, False), (comb, True)):
            last = None
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        last = json.loads(await ws.recv())
            if wrap:
                assert last["stream"] == "!serverShutdown"
                last = last["data"]
            assert last["e"] == "serverShutdown" and last["E"] > 0
            assert ws.close_code == 1001
    run(go())


def test_slow_consumer_is_dropped():
    """A client that never reads is disconnected once its backlog passes max_send_buffer_mb
    (the kernel's socket buffers fill first, a few MB on loopback)."""
    import socket
    import time

    from engine.instruments import DEFAULT_INSTRUMENTS
    with SimThread(instruments=DEFAULT_INSTRUMENTS[:1], event_rate=10000,
                   max_send_buffer_mb=0.1) as sim:
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: tiny window
            s.settimeout(5)
            s.connect(("127.0.0.1", sim.port))
            s.sendall(b"GET /ws/btcusdt@bookTicker HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: 6VfwA1bfeE27Y1QB3sQcsg==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            deadline = time.monotonic() + 20
            while sim.stats()["slow_consumers_dropped"] == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            st = sim.stats()
            assert st["slow_consumers_dropped"] == 1 and st["md_open"] == 0
            # a reading client is unaffected
            run(asyncio.wait_for(_read_some(sim.md_url + "/ws/btcusdt@bookTicker"), 10))
            assert sim.stats()["slow_consumers_dropped"] == 1
        finally:
            s.close()


async def _read_some(url: str) -> None:
    async with websockets.connect(url, max_queue=None) as ws:
        await recv_json(ws, 500)
