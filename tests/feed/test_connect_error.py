"""Each cause of a failed market-data connection is told apart (engine/feed/connect_error.py),
from the exception a real picows ws_connect raises against a loopback server that fails that
way. DNS: a name under .invalid (RFC 6761), which never resolves."""
from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from picows import WSListener, ws_connect

from engine.feed import connect_error as ce


def _attempt(url: str, timeout_s: float = 3.0) -> BaseException:
    async def go():
        try:
            await asyncio.wait_for(
                ws_connect(WSListener, url, websocket_handshake_timeout=timeout_s), timeout_s)
        except BaseException as e:     # what the feed's ConnectionSlot._open catches
            return e
        raise AssertionError(f"{url} connected")
    return asyncio.run(go())


class _Server:
    """Loopback TCP: `reply` None accepts and stays silent; otherwise sends it and closes."""

    def __init__(self, reply: bytes | None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.stop = threading.Event()
        self.held = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        for _ in range(200):                  # bounded: 40 s at most
            if self.stop.is_set():
                return
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self.reply is None:
                self.held.append(conn)
                continue
            with conn:
                try:
                    conn.settimeout(2.0)
                    conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()


def test_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = _attempt(f"ws://127.0.0.1:{port}/")
    assert ce.classify(e) == (ce.REFUSED, 0), repr(e)
    assert ce.describe(ce.REFUSED) == "connection refused"


def test_http_status_of_the_upgrade():
    with _Server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") as srv:
        e = _attempt(f"ws://127.0.0.1:{srv.port}/")
    assert ce.classify(e) == (ce.HTTP_STATUS, 403), repr(e)
    assert ce.describe(*ce.classify(e)) == "the WebSocket upgrade was answered with HTTP 403"


def test_timed_out():
    with _Server(None) as srv:
        e = _attempt(f"ws://127.0.0.1:{srv.port}/", timeout_s=0.5)
    assert ce.classify(e) == (ce.TIMED_OUT, 0), repr(e)


def test_tls():
    with _Server(b"HTTP/1.1 400 Bad Request\r\n\r\nnot TLS at all") as srv:
        e = _attempt(f"wss://127.0.0.1:{srv.port}/")
    assert ce.classify(e) == (ce.TLS, 0), repr(e)


def test_dns():
    e = _attempt("ws://no-such-host.invalid/", timeout_s=10.0)
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        pytest.skip("the resolver did not answer in 10 s on this box")
    assert ce.classify(e) == (ce.DNS, 0), repr(e)
