"""Why a market-data connection attempt failed, as a small code a counter can carry.

The feed publishes the latest cause as two counters (`connect_error`, `connect_http_status`)
so that `mm run`'s last line and `mm status` can say *why* market data never arrived
(refused, timed out, DNS, TLS, the HTTP status of the upgrade), not just that it did not.
"""
from __future__ import annotations

import asyncio
import errno
import socket
import ssl

NONE, REFUSED, TIMED_OUT, DNS, TLS, HTTP_STATUS, RESET, OTHER = range(8)
TEXT = {NONE: "", REFUSED: "connection refused", TIMED_OUT: "timed out",
        DNS: "DNS lookup failed", TLS: "TLS handshake failed",
        HTTP_STATUS: "the WebSocket upgrade was answered with HTTP", RESET: "connection reset",
        OTHER: "connect failed"}


def classify(exc: BaseException) -> tuple[int, int]:
    """(cause code, HTTP status or 0) of a failed ws_connect. Never raises."""
    status = _http_status(exc)
    if status:
        return HTTP_STATUS, status
    if isinstance(exc, socket.gaierror):
        return DNS, 0
    if isinstance(exc, ssl.SSLError):
        return TLS, 0
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return TIMED_OUT, 0
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED, 0
    if isinstance(exc, OSError):
        # uvloop and multi-address connects raise plain OSError with the errno in the text
        if exc.errno == errno.ECONNREFUSED or "Connect call failed" in str(exc) \
                or "refused" in str(exc).lower():
            return REFUSED, 0
        if exc.errno in (errno.ETIMEDOUT,):
            return TIMED_OUT, 0
        if exc.errno in (errno.ECONNRESET, errno.EPIPE):
            return RESET, 0
    return OTHER, 0


def describe(code: int, status: int = 0) -> str:
    """One phrase for a cause code: 'connection refused', 'the WebSocket upgrade was
    answered with HTTP 404'."""
    text = TEXT.get(code, TEXT[OTHER])
    return f"{text} {status}" if code == HTTP_STATUS and status else text


def _http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)       # picows WSHandshakeError
    status = getattr(response, "status", None)
    try:
        status = int(status) if status is not None else 0
    except (TypeError, ValueError):
        status = 0
    return status if status and status != 101 else 0
