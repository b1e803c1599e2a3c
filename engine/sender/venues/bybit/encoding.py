"""Bybit v5 trade WebSocket, outgoing: byte templates for the order ops and the connection's
`op: auth` frame (PROTOCOLS.md section 5).
"""
from __future__ import annotations

import hmac
import re
from hashlib import sha256

import msgspec

from engine.records import SIDE_BUY
from engine.sender.decimals import decimal_slot, scale_of

_REDACT_ARGS = re.compile(rb'"args":\["[^"]*",(\d+),"[^"]*"\]')   # op auth: key, expires, sign


class BybitEncoder:
    """Byte templates for the three order ops, per instrument x side x post-only."""

    def __init__(self, instruments, recv_window_ms: int, category: str = "spot"):
        head = (b'{"reqId":"%d","header":{"X-BAPI-TIMESTAMP":"%d","X-BAPI-RECV-WINDOW":"'
                + str(recv_window_ms).encode() + b'"},"op":')
        self.pscale = [scale_of(i.pexp) for i in instruments]
        self.qscale = [scale_of(i.qexp) for i in instruments]
        self._create, self._amend, self._cancel = [], [], []
        for i in instruments:
            sym = b'"category":"' + category.encode() + b'","symbol":"' + i.symbol.encode() + b'"'
            px, qty = decimal_slot(i.pexp).fmt, decimal_slot(i.qexp).fmt
            for side in (b"Buy", b"Sell"):
                for tif in (b"GTC", b"PostOnly"):
                    self._create.append(
                        head + b'"order.create","args":[{' + sym + b',"side":"' + side
                        + b'","orderType":"Limit","timeInForce":"' + tif + b'","qty":"' + qty
                        + b'","price":"' + px + b'","orderLinkId":"%b"}]}')
            self._amend.append(head + b'"order.amend","args":[{' + sym
                               + b',"orderLinkId":"%b","qty":"' + qty + b'","price":"' + px
                               + b'"}]}')
            self._cancel.append(head + b'"order.cancel","args":[{' + sym
                                + b',"orderLinkId":"%b"}]}')

    def create(self, rid, inst, side, post_only, link, price, qty, ts_ms) -> bytes:
        pi, pf = divmod(price, self.pscale[inst])
        qi, qf = divmod(qty, self.qscale[inst])
        return self._create[inst * 4 + (side != SIDE_BUY) * 2 + post_only] % (
            rid, ts_ms, qi, qf, pi, pf, link)

    def amend(self, rid, inst, link, price, qty, ts_ms) -> bytes:
        pi, pf = divmod(price, self.pscale[inst])
        qi, qf = divmod(qty, self.qscale[inst])
        return self._amend[inst] % (rid, ts_ms, link, qi, qf, pi, pf)

    def cancel(self, rid, inst, link, ts_ms) -> bytes:
        return self._cancel[inst] % (rid, ts_ms, link)


def auth_frame(api_key: str, secret: bytes, expires_ms: int) -> bytes:
    """`op: auth` with hex(HMAC_SHA256(secret, "GET/realtime" + expires))."""
    return msgspec.json.encode({"reqId": "auth", "op": "auth", "args": [
        api_key, expires_ms, bybit_auth_signature(secret, expires_ms)]})


def bybit_auth_signature(secret: bytes, expires_ms: int) -> str:
    """Bybit v5 WebSocket auth: hex(HMAC_SHA256(secret, "GET/realtime" + expires))."""
    return hmac.new(secret, b"GET/realtime" + str(expires_ms).encode(), sha256).hexdigest()


def redact(frame: bytes) -> bytes:
    """The frame with the auth key and signature replaced by *** (the dry run's log)."""
    return _REDACT_ARGS.sub(rb'"args":["***",\1,"***"]', frame)
