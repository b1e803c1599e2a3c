"""Arrival stamps come from the kernel's receive time (engine/feed/stamps.py): a frame that waits in
the socket while the feed's loop is busy is stamped when it arrived, not when the feed got to it.

A real WebSocket server on loopback (picows, in its own thread and loop) writes bookTicker
frames when told and reports the perf_counter_ns() taken just before each write; the feed runs a
real StreamGroup publishing into a real md ring. The test blocks the feed's loop on purpose
(time.sleep inside the driving coroutine) while frames arrive, so the expectations are exact
bounds taken from the test's own clock readings, not timing guesses:

  stamp >= the send of every frame it is given to (frames read together share the newest
          data's stamp: a stamp never precedes a send)
  stamp <= the moment the blocked loop was known to hold the frame (the wait counts)
  ts_decoded - stamp >= the time the loop stayed blocked after that moment

ws:// connections are read by the stamping reader itself (recvmsg); wss:// ones are peeked
before the TLS transport reads (engine/feed/stamps.py): both are run.
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import time
from time import perf_counter_ns

import numpy as np
from picows import WSListener, WSMsgType, ws_create_server

from engine.config import EngineConfig
from engine.feed.config import FeedConfig
from engine.feed.connection import StreamGroup
from engine.feed.process import adapter_factory
from engine.feed.publish import HISTOGRAMS, RingSink
from engine.latency.histogram import HistogramSet
from engine.records import MD_DTYPE, VENUE_BINANCE
from engine.ring import Ring

BLOCK_S = 0.05
RUN_TIMEOUT_S = 30


def book_ticker(u: int) -> bytes:
    return (b'{"stream":"btcusdt@bookTicker","data":{"u":%d,"s":"BTCUSDT","b":"61837.63000000",'
            b'"B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}' % u)


class _Peer(WSListener):
    def __init__(self, server: "FrameServer"):
        super().__init__()
        self.server = server

    def on_ws_connected(self, transport) -> None:
        self.server.transports.append(transport)
        self.server.connected.set()


class FrameServer:
    """A WebSocket server on 127.0.0.1 in a thread; `send(payload)` writes one text frame to every
    client from the server's loop and returns the perf_counter_ns() taken just before."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.ssl_context = ssl_context
        self.transports: list = []
        self.connected = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-server", daemon=True)

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        kw = {"ssl": self.ssl_context} if self.ssl_context else {}
        server = loop.run_until_complete(ws_create_server(lambda _req: _Peer(self), "127.0.0.1", 0,
                                                          **kw))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    def __enter__(self) -> "FrameServer":
        self._thread.start()
        assert self._ready.wait(10), "frame server did not start"
        return self

    def __exit__(self, *exc) -> None:
        def stop():
            for t in self.transports:
                t.disconnect(graceful=False)
            self._loop.stop()
        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)

    def close_clients(self) -> None:
        """Close every client connection (a WebSocket close, then the socket)."""
        done = threading.Event()

        def close():
            for t in self.transports:
                t.send_close()
                t.disconnect()
            self.transports.clear()
            done.set()
        self._loop.call_soon_threadsafe(close)
        assert done.wait(10), "frame server did not close"

    def send(self, payload: bytes) -> int:
        return self.send_burst([payload])[0]

    def send_burst(self, payloads: list[bytes]) -> list[int]:
        """Write the frames back to back (one loop callback); their send stamps."""
        done = threading.Event()
        sent = []

        def write():
            for p in payloads:
                sent.append(perf_counter_ns())
                for t in self.transports:
                    t.send(WSMsgType.TEXT, p)
            done.set()
        self._loop.call_soon_threadsafe(write)
        assert done.wait(10), "frame server did not send"
        return sent


def run_feed(instance: str, url: str, script):
    """Run one connection against `url` while `script(group, sink)` drives; return the md
    records and the group's counters."""
    cfg = EngineConfig(instance=instance, feed=FeedConfig(
        url=url, streams=("bookTicker",), connections=1, stale_after_ms=10_000))
    producer = Ring.create(instance, "md", MD_DTYPE, 1 << 12, "drop", role="producer")
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    hists = HistogramSet.create(instance, "feed", list(HISTOGRAMS))
    try:
        sink = RingSink(producer, hists, len(cfg.instruments), VENUE_BINANCE)

        async def main():
            group = StreamGroup(url, adapter_factory(cfg), sink, cfg.feed)
            await group.start()
            try:
                await script(group, sink)
            finally:
                await group.stop()
            return group.counters()

        counters = asyncio.run(asyncio.wait_for(main(), RUN_TIMEOUT_S))
        return consumer.pop_many().copy(), counters
    finally:
        consumer.close()
        producer.close()
        hists.close()


async def until(cond, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def stamped(group) -> bool:
    conns = group.connections()
    return bool(conns) and all(c.reader is not None for c in conns)


def by_id(records) -> dict[int, np.void]:
    return {int(r["update_id"]): r for r in records}


def blocked_loop_script(server: FrameServer, marks: dict):
    """Frame 1 warms up; frame 2 is written while the feed's loop sleeps BLOCK_S; frames 3 and
    4 are written 20 ms apart during a second block (one pick-up reads both)."""
    async def script(group, sink):
        await until(lambda: stamped(group), "a kernel-stamped connection")
        marks["reads_itself"] = [c.reader.reads_itself for c in group.connections()]
        server.send(book_ticker(1))
        await until(lambda: sink.published >= 1, "frame 1")
        # The loop is blocked from here: frame 2 waits in the socket's receive queue.
        marks["sent2"] = server.send(book_ticker(2))
        marks["held2"] = perf_counter_ns()       # frame 2 is in the kernel by now
        time.sleep(BLOCK_S)
        marks["freed2"] = perf_counter_ns()
        await until(lambda: sink.published >= 2, "frame 2")
        marks["sent3"] = server.send(book_ticker(3))
        time.sleep(0.02)
        marks["sent4"] = server.send(book_ticker(4))
        marks["held4"] = perf_counter_ns()
        time.sleep(BLOCK_S)
        await until(lambda: sink.published >= 4, "frames 3 and 4")
    return script


def check_blocked_frames(records, marks: dict) -> None:
    r = by_id(records)
    assert sorted(r) == [1, 2, 3, 4]
    two = r[2]
    # Stamped when it reached the socket, not when the blocked loop got to it.
    assert marks["sent2"] <= two["ts_arrival"] <= marks["held2"]
    assert two["ts_decoded"] >= marks["freed2"]
    assert two["ts_decoded"] - two["ts_arrival"] >= BLOCK_S * 1e9
    # One pick-up read frames 3 and 4: they share the stamp of the newest data, 4's.
    three, four = r[3], r[4]
    assert three["ts_arrival"] == four["ts_arrival"]
    assert marks["sent4"] <= four["ts_arrival"] <= marks["held4"]
    assert four["ts_decoded"] - four["ts_arrival"] >= BLOCK_S * 1e9
    assert three["ts_decoded"] - marks["sent3"] >= (BLOCK_S + 0.02) * 1e9
    # Stamps never run backwards, and never come after decoding.
    a = records["ts_arrival"]
    assert np.all(np.diff(a) >= 0) and np.all(a <= records["ts_decoded"])


def test_a_frame_that_waited_in_the_kernel_is_stamped_when_it_arrived(instance):
    marks: dict = {}
    with FrameServer() as server:
        records, counters = run_feed(instance, f"ws://127.0.0.1:{server.port}",
                                     blocked_loop_script(server, marks))
    check_blocked_frames(records, marks)
    assert marks["reads_itself"] == [True]
    assert counters["unstamped_connections"] == 0
    assert 0 < counters["reads_kernel_stamped"] <= counters["reads"]


def test_stamps_never_precede_the_send(instance):
    """A steady stream, sometimes faster than the feed picks up: every frame's stamp lies
    between its send and its decode, and stamps never run backwards."""
    sent: dict[int, int] = {}

    async def script(group, sink):
        await until(lambda: stamped(group), "a kernel-stamped connection")
        u = 1
        while u <= 200:            # singles and bursts of three, written back to back
            burst = list(range(u, min(u + 1 + 2 * (u % 2), 201)))
            stamps = await asyncio.to_thread(server.send_burst, [book_ticker(k) for k in burst])
            sent.update(zip(burst, stamps))
            u += len(burst)
            await asyncio.sleep(0.0005)
        await until(lambda: sink.published >= 200, "200 frames")

    with FrameServer() as server:
        records, counters = run_feed(instance, f"ws://127.0.0.1:{server.port}", script)
    assert len(records) == 200
    a = records["ts_arrival"]
    send = np.array([sent[int(u)] for u in records["update_id"]])
    assert np.all(a >= send)
    assert np.all(np.diff(a) >= 0) and np.all(a <= records["ts_decoded"])
    assert counters["reads_kernel_stamped"] > 0


def test_the_reading_reader_passes_big_frames_and_the_close_on(instance):
    """In read mode the stamping reader reads for the transport: a frame larger than the read
    buffer arrives whole over several pick-ups, and a server close reaches the transport (the
    connection comes back and delivers again)."""
    big = b'{"stream":"btcusdt@depth5","data":{"pad":"' + b"x" * 200_000 + b'"}}'

    async def script(group, sink):
        await until(lambda: stamped(group), "a kernel-stamped connection")
        server.send_burst([big, book_ticker(1)])
        await until(lambda: sink.published >= 1, "the frame after the big one")
        await asyncio.to_thread(server.close_clients)
        await until(lambda: group.counters()["reconnects"] >= 1 and stamped(group), "a reconnect")
        await until(lambda: len(server.transports) == 1, "the client back")
        server.send(book_ticker(2))
        await until(lambda: sink.published >= 2, "a frame on the new connection")

    with FrameServer() as server:
        records, counters = run_feed(instance, f"ws://127.0.0.1:{server.port}", script)
    assert [int(u) for u in records["update_id"]] == [1, 2]
    assert counters["malformed"] + counters["unknown"] == 1 and counters["decode_errors"] == 0
    assert counters["reads"] > 2


def _self_signed(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and the CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, str(cert_path)


def test_tls_frames_are_stamped_from_the_kernel_too(instance, tmp_path, monkeypatch):
    """wss:// (the real venues): the stamp is the encrypted packet's receive time."""
    server_ctx, ca_file = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)     # the feed's default context trusts it
    marks: dict = {}
    with FrameServer(server_ctx) as server:
        records, counters = run_feed(instance, f"wss://127.0.0.1:{server.port}",
                                     blocked_loop_script(server, marks))
    check_blocked_frames(records, marks)
    assert marks["reads_itself"] == [False]            # peeked: the TLS transport reads
    assert counters["unstamped_connections"] == 0 and counters["reads_kernel_stamped"] > 0
