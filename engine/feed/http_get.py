"""A small asynchronous HTTP GET over asyncio streams (http and https), for the feed's REST
snapshots: the feed's loop keeps serving every other connection while one snapshot is on the
way. One request per connection (Connection: close); bodies by Content-Length, chunks or EOF.
"""
from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

MAX_BODY = 64 << 20       # a 5000-level Binance snapshot is ~250 kB


class HttpError(Exception):
    """The request failed (connection, timeout, malformed answer): the message says how."""


async def http_get(url: str, timeout_s: float) -> tuple[int, bytes]:
    """GET `url`; returns (status, body). Raises HttpError on anything but an HTTP answer."""
    try:
        return await asyncio.wait_for(_get(url), timeout_s)
    except asyncio.TimeoutError:
        raise HttpError(f"GET {url}: no answer within {timeout_s} s") from None
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        raise HttpError(f"GET {url}: {type(e).__name__}: {e}") from None


async def _get(url: str) -> tuple[int, bytes]:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    tls = u.scheme == "https"
    port = u.port or (443 if tls else 80)
    reader, writer = await asyncio.open_connection(
        u.hostname, port, ssl=ssl.create_default_context() if tls else None)
    try:
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\nAccept: application/json\r\n"
                     f"Connection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _chunks(reader)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if not 0 <= n <= MAX_BODY:
                raise ValueError(f"Content-Length {n}")
            body = await reader.readexactly(n)
        else:
            body = await reader.read(MAX_BODY)
        return int(parts[1]), body
    finally:
        writer.close()


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        if len(out) + size > MAX_BODY:
            raise ValueError("body too large")
        out += await reader.readexactly(size)
        await reader.readexactly(2)
