"""The server side of RFC 6455 that the bench's light venue needs, on plain non-blocking
sockets: the HTTP upgrade, parsing masked client frames, and server frame headers.

No extensions are accepted (permessage-deflate offers are ignored, so frames stay plain), no
subprotocols; fragmented client messages are joined. Contracts:
  - `handshake(buf)` -> (path, response bytes, bytes consumed) once a whole request is in
    `buf`, None before; ValueError for a request that is not a WebSocket upgrade.
  - `parse(buf)` -> list of (opcode, payload) for every whole frame at the start of `buf`, and
    the bytes consumed; a partial frame is left for the next call.
  - `header(n, opcode)` -> the server frame header (unmasked) for an n-byte payload.
"""
from __future__ import annotations

import base64
import hashlib

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_END = b"\r\n\r\n"
MAX_REQUEST = 64 * 1024        # an upgrade request longer than this is refused (URL of 200+ streams fits)


def handshake(buf: bytes | bytearray):
    end = buf.find(_END)
    if end < 0:
        if len(buf) > MAX_REQUEST:
            raise ValueError("upgrade request too long")
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    method, _, rest = head[0].partition(" ")
    path = rest.rpartition(" ")[0]
    key = ""
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    if method != "GET" or not key:
        raise ValueError(f"not a WebSocket upgrade: {head[0]!r}")
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
    response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    return path, response, end + len(_END)


def header(n: int, opcode: int = OP_TEXT) -> bytes:
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n))
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big")
    return bytes((first, 127)) + n.to_bytes(8, "big")


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    return header(len(payload), opcode) + payload


def _unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    # one big-integer XOR instead of a per-byte loop: ~1 us for an order frame
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class FrameReader:
    """Whole messages out of a client's byte stream (masked frames, fragments joined)."""

    __slots__ = ("_parts", "_opcode")

    def __init__(self):
        self._parts: list[bytes] = []
        self._opcode = 0

    def parse(self, buf: bytearray) -> tuple[list[tuple[int, bytes]], int]:
        out, pos, n = [], 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, at = b1 & 0x7F, pos + 2
            if length == 126:
                if n - at < 2:
                    break
                length, at = int.from_bytes(buf[at:at + 2], "big"), at + 2
            elif length == 127:
                if n - at < 8:
                    break
                length, at = int.from_bytes(buf[at:at + 8], "big"), at + 8
            masked = b1 & 0x80
            if n - at < length + (4 if masked else 0):
                break
            if masked:
                mask = bytes(buf[at:at + 4])
                at += 4
                payload = _unmask(bytes(buf[at:at + length]), mask)
            else:
                payload = bytes(buf[at:at + length])
            pos = at + length
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode >= OP_CLOSE:                      # control frames: never fragmented
                out.append((opcode, payload))
            elif not fin:
                if opcode != OP_CONT:
                    self._opcode = opcode
                self._parts.append(payload)
            elif opcode == OP_CONT:
                self._parts.append(payload)
                out.append((self._opcode, b"".join(self._parts)))
                self._parts = []
            else:
                out.append((opcode, payload))
        return out, pos
