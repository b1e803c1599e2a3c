"""Binance Spot WebSocket API, incoming: the msgspec schema of its answers and user-data
events (named after the venue's JSON keys), the codes they carry and what each means to us,
and its decimal strings read as mantissas (../shared/PROTOCOLS.md sections 3-4).
"""
from __future__ import annotations

import msgspec

from engine.sender.order_state import CANCELED, FILLED, NO_STATUS, OPEN, REJECTED

# our request kinds (what an answer answers: engine/sender/inflight.py tracks them)
REQ_PLACE, REQ_REPLACE, REQ_CANCEL, REQ_CANCEL_ALL = 1, 2, 3, 4
UNKNOWN_ORDER, NO_SUCH_ORDER, STATUS_UNKNOWN = -2011, -2013, -1007
TOO_MANY_ORDERS = -1015       # a 429 for the ORDERS windows: new orders wait, nothing else
GONE_CODES = (UNKNOWN_ORDER, NO_SUCH_ORDER)
# Refusals retrying cannot fix: key, key format, signature (at once); unknown symbol, filter
# failure, illegal characters (when every order of a streak gets them).
AUTH_CODES = {-2015: "the API key is refused (wrong key, IP not whitelisted, or no trading "
                     "permission): check MM_API_KEY / sender.api_key_file and the key's settings",
              -2014: "the API key has a bad format: check MM_API_KEY / sender.api_key_file",
              -1022: "the signature is refused: check MM_API_SECRET / sender.api_secret_file "
                     "(or the Ed25519 key) belongs to MM_API_KEY"}
ORDER_CODES = {-1013: "every order fails the venue's filters (tick, lot, minimum notional): "
                      "check instruments[].tick_size/lot_size and quoter.order_size",
               -1121: "the venue does not know the symbol: check MM_SYMBOL / instruments",
               -1100: "the venue refuses characters in our requests: check the tag and symbol"}
INTERVAL_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
# The venue's order status words (`status`, executionReport `X`) as our states (order_state.py)
STATE_OF = {"NEW": OPEN, "PARTIALLY_FILLED": OPEN, "PENDING_NEW": OPEN, "PENDING_CANCEL": OPEN,
            "CANCELED": CANCELED, "EXPIRED": CANCELED, "EXPIRED_IN_MATCH": CANCELED,
            "REJECTED": REJECTED, "FILLED": FILLED}


def state_of(status: str) -> int:
    """The venue's status word as our state (NO_STATUS: a word that says none of them)."""
    return STATE_OF.get(status, NO_STATUS)


class ErrorData(msgspec.Struct):
    retryAfter: int = 0            # 429/418: epoch ms when requests may resume
    serverTime: int = 0
    cancelResult: str = ""         # cancelReplace failures: SUCCESS | FAILURE
    newOrderResult: str = ""       # SUCCESS | FAILURE | NOT_ATTEMPTED
    cancelResponse: msgspec.Raw = msgspec.Raw()
    newOrderResponse: msgspec.Raw = msgspec.Raw()


class ApiError(msgspec.Struct):
    code: int = 0                  # venue error code (-2010, -2011, ...)
    msg: str = ""
    data: ErrorData | None = None


class RateLimit(msgspec.Struct):
    rateLimitType: str = ""        # REQUEST_WEIGHT | ORDERS
    interval: str = ""             # SECOND | MINUTE | HOUR | DAY
    intervalNum: int = 1
    limit: int = 0
    count: int = 0


class Frame(msgspec.Struct):
    """Any text frame on the WS API connection: a response (id, status) or a user-data event."""
    id: int | str | None = None
    status: int = 0                # 200 ok; 400 failed; 409 partial; 418 banned; 429 limited
    result: msgspec.Raw = msgspec.Raw()
    error: ApiError | None = None
    rateLimits: list[RateLimit] | None = None
    subscriptionId: int | None = None
    event: msgspec.Raw = msgspec.Raw()


class OrderResult(msgspec.Struct):
    """order.place / order.cancel / order.status / openOrders.* result entries."""
    symbol: str = ""
    orderId: int = 0
    clientOrderId: str = ""        # for cancels: the cancel's own id
    origClientOrderId: str = ""    # for cancels: the canceled order's id
    transactTime: int = 0
    price: str = ""
    origQty: str = ""
    executedQty: str = ""
    status: str = ""               # NEW | PARTIALLY_FILLED | FILLED | CANCELED | ...
    side: str = ""
    updateTime: int = 0
    cummulativeQuoteQty: str = ""


class ReplaceResult(msgspec.Struct):
    cancelResult: str = ""
    newOrderResult: str = ""
    cancelResponse: OrderResult | None = None
    newOrderResponse: OrderResult | None = None


class Balance(msgspec.Struct):
    asset: str
    free: str
    locked: str


class Account(msgspec.Struct):
    balances: list[Balance] = []


class ServerTime(msgspec.Struct):
    serverTime: int = 0


class EventKind(msgspec.Struct):
    e: str = ""


class ExecutionReport(msgspec.Struct):
    """executionReport (keys are case-sensitive: c/C, l/L, z/Z)."""
    s: str                         # symbol
    c: str                         # client order id
    S: str                         # side BUY | SELL
    q: str                         # order quantity
    p: str                         # order price
    x: str                         # execution type NEW | CANCELED | REPLACED | REJECTED | TRADE | EXPIRED | TRADE_PREVENTION
    X: str                         # order status
    i: int = 0                     # venue order id
    l: str = "0"                   # noqa: E741 - last fill qty
    z: str = "0"                   # cumulative filled qty
    L: str = "0"                   # last fill price
    C: str = ""                    # original client id (of a canceled order)
    r: str = "NONE"                # reject reason
    T: int = 0                     # transaction time, ms
    E: int = 0                     # event time, ms
    n: str = "0"                   # commission of this fill
    N: str | None = None           # commission asset (None: no fill)
    t: int = -1                    # trade id (-1: no fill)
    m: bool = False                # the fill was a maker fill


FRAME = msgspec.json.Decoder(Frame)
ORDER_RESULT = msgspec.json.Decoder(OrderResult)
API_ERROR = msgspec.json.Decoder(ApiError)
ORDER_RESULTS = msgspec.json.Decoder(list[OrderResult])
REPLACE_RESULT = msgspec.json.Decoder(ReplaceResult)
ACCOUNT = msgspec.json.Decoder(Account)
SERVER_TIME = msgspec.json.Decoder(ServerTime)
EVENT_KIND = msgspec.json.Decoder(EventKind)
EXECUTION_REPORT = msgspec.json.Decoder(ExecutionReport)


def parse_fixed(text: str, exp: int) -> int:
    """'0.01000000', -5 -> 1000: a decimal string as a mantissa at `exp`. Digits beyond the
    exponent must be zero (ValueError otherwise: the venue sent more precision than ours)."""
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    whole, _, frac = text.partition(".")
    if exp >= 0:
        if frac.strip("0"):
            raise ValueError(f"{text!r} has more precision than 10^{exp}")
        v = int(whole or "0")
        if exp and v % 10 ** exp:
            raise ValueError(f"{text!r} is not a multiple of 10^{exp}")
        v //= 10 ** exp
    else:
        d = -exp
        if frac[d:].strip("0"):
            raise ValueError(f"{text!r} has more precision than 10^{exp}")
        v = int(whole or "0") * 10 ** d + int(frac[:d].ljust(d, "0") or "0")
    return -v if neg else v


def error_text(r) -> str:
    """A refused answer, for messages: its status, code and text."""
    e = r.error
    return f"status {r.status} code {e.code} {e.msg!r}" if e is not None else f"status {r.status}"
