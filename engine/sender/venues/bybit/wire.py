"""Bybit v5 trade WebSocket, incoming: the msgspec schema of its answers (named after the
venue's JSON keys) and the codes they carry (PROTOCOLS.md section 5).
"""
from __future__ import annotations

import msgspec

# our request kinds (what an answer answers: engine/sender/inflight.py tracks them)
REQ_CREATE, REQ_AMEND, REQ_CANCEL = 1, 2, 3
ORDER_NOT_FOUND = 110001        # "order not exists or too late to cancel"
SERVICE_UNKNOWN = (10016, 10019)  # internal error / service restarting: outcome unknown
# auth refusals retrying cannot fix (Bybit v5 error codes)
AUTH_REFUSALS = {10003: "the API key is invalid: check MM_API_KEY / sender.api_key_file",
                 10004: "the signature is refused: check MM_API_SECRET / sender.api_secret_file "
                        "belongs to MM_API_KEY",
                 10005: "the key lacks the trade permission: enable it for this key",
                 10010: "this IP is not whitelisted for the key"}


class Response(msgspec.Struct):
    """Any /v5/trade answer (order ops, auth, pong)."""
    op: str = ""
    reqId: str = ""
    retCode: int = 0
    retMsg: str = ""
    data: msgspec.Raw = msgspec.Raw()
    header: dict[str, str] | None = None   # X-Bapi-Limit, X-Bapi-Limit-Status, Timenow, ...


class OrderData(msgspec.Struct):
    orderId: str = ""
    orderLinkId: str = ""


RESPONSE = msgspec.json.Decoder(Response)
ORDER_DATA = msgspec.json.Decoder(OrderData)


def venue_id_of(raw: msgspec.Raw) -> int:
    """The venue's order id in an order op's answer data (0: none, or not a number)."""
    if not raw:
        return 0
    oid = ORDER_DATA.decode(raw).orderId
    return int(oid) if oid.isdigit() else 0
