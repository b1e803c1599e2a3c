"""Binance Spot WebSocket API, outgoing: request encoding from pre-built byte templates
(../shared/PROTOCOLS.md sections 3-4; what comes back is wire.py's).

Encoding. Every request kind an order can need (place, cancelReplace, cancel per instrument,
side and post-only flag) is rendered once at start into two %-format byte strings: the signed
payload (parameters sorted by name, `name=value` joined by `&`, as the venue documents) and the
JSON text frame (parameters in the same order, so both take the same arguments). Constant values
are baked in; variable ones are %-slots: client ids as bytes (%b), prices and quantities as the
two integers of `divmod(mantissa, 10**-exp)` ("%d.%08d"), timestamps as %d. The same pieces are
compiled once into a C template (engine._order): per order the hot path (`place_into`,
`replace_into`, `cancel_into`) renders, HMAC-signs (key and constant head absorbed at start) and
frames the request in one C call, no dict, no json.dumps. The %-strings serve the dry run, the
tests and per-request Ed25519 (`place`, `replace`, `cancel`).

Auth modes: "hmac" signs each request; "session" (after an Ed25519 session.logon) sends requests
with `timestamp` but without apiKey and signature; "ed25519" signs each request with Ed25519
(slow, ~28 us: measured in the benchmark only).
"""
from __future__ import annotations

import re

import msgspec

from engine import _order
from engine._order import render as _render
from engine.instruments import Instrument
from engine.records import SIDE_BUY
from engine.sender.decimals import Slot, decimal_slot, scale_of
from engine.sender.signing import Ed25519Signer, HmacSigner, sign_tail

AUTH_HMAC, AUTH_SESSION, AUTH_ED25519 = "hmac", "session", "ed25519"
_REDACT = re.compile(rb'"(apiKey|signature|sign)":"[^"]*"')   # what a logged frame hides

BYTES = Slot(b"%b", True)        # client order ids
INT = Slot(b"%d", False)         # timestamps, venue order ids


# What each variable parameter is to the C renderer (engine._order), by parameter name.
_PIECE_OF = {"newClientOrderId": _order.P_CID, "cancelOrigClientOrderId": _order.P_ORIG_CID,
             "origClientOrderId": _order.P_ORIG_CID, "price": _order.P_PRICE,
             "quantity": _order.P_QTY, "timestamp": _order.P_TS, "orderId": _order.P_VID}


class Template:
    """One request kind: constant parameters pre-rendered, variable ones as %-slots.

    `tail % args` is the part of the signed payload after `head` (the constant text up to the
    first slot); `frame % (request_id, *args[, signature])` is the JSON text frame. Arguments go
    in the order of the slots' parameter names sorted alphabetically. The same pieces, compiled
    once into `native` (engine._order; None for per-request Ed25519), let the hot path render,
    sign and frame a request in one C call (engine._order.render, BinanceEncoder.*_into).
    """
    __slots__ = ("method", "head", "tail", "frame", "mac", "auth", "_ed", "native")

    def __init__(self, method: str, params: dict, auth: str, api_key: str | None = None,
                 hmac_signer: HmacSigner | None = None, ed_signer: Ed25519Signer | None = None,
                 pexp: int = 0, qexp: int = 0):
        self.method = method
        self.auth = auth
        self._ed = ed_signer
        params = dict(params)
        if auth in (AUTH_HMAC, AUTH_ED25519):
            if api_key is None:
                raise ValueError(f"{method}: a signed template needs the API key")
            params["apiKey"] = api_key
        head, tail, body = b"", b"", []
        tail_pieces: list = []          # (kind, literal) for the C renderer
        frame_pieces: list = [(_order.P_LIT, b'{"id":'), (_order.P_RID, b""),
                              (_order.P_LIT, b',"method":"' + method.encode() + b'","params":{')]
        in_tail = False
        for i, name in enumerate(sorted(params)):
            value = params[name]
            sep = b"&" if i else b""
            comma = b"," if i else b""
            if isinstance(value, Slot):
                piece = name.encode() + b"=" + value.fmt
                body.append(b'"' + name.encode() + b'":'
                            + (b'"' + value.fmt + b'"' if value.quoted else value.fmt))
                kind = _PIECE_OF[name]
                quote = b'"' if value.quoted else b""
                frame_pieces += [(_order.P_LIT, comma + b'"' + name.encode() + b'":' + quote),
                                 (kind, b""), (_order.P_LIT, quote)]
                if not in_tail:
                    head += sep + name.encode() + b"="
                    tail = value.fmt
                    tail_pieces.append((kind, b""))
                    in_tail = True
                    continue
                tail_pieces += [(_order.P_LIT, sep + name.encode() + b"="), (kind, b"")]
            else:
                text = ("true" if value is True else "false" if value is False else str(value))
                raw = name.encode() + b"=" + text.encode()
                piece = raw.replace(b"%", b"%%")
                literal = msgspec.json.encode(value)
                body.append(b'"' + name.encode() + b'":' + literal.replace(b"%", b"%%"))
                frame_pieces.append((_order.P_LIT, comma + b'"' + name.encode() + b'":' + literal))
                if in_tail:
                    tail_pieces.append((_order.P_LIT, sep + raw))
            if in_tail:
                tail += sep + piece
            else:
                head += sep + raw
        if not in_tail:  # no variable parameter: everything is the head
            tail = b""
        sig = b',"signature":"%b"' if auth in (AUTH_HMAC, AUTH_ED25519) else b""
        self.frame = (b'{"id":%d,"method":"' + method.encode() + b'","params":{'
                      + b",".join(body) + sig + b"}}")
        self.head = head
        self.tail = tail
        self.mac = hmac_signer.keyed(head) if (auth == AUTH_HMAC and hmac_signer) else None
        self.native = None
        if auth != AUTH_ED25519 and in_tail:    # per-request Ed25519: the slow path only
            if auth == AUTH_HMAC:
                frame_pieces += [(_order.P_LIT, b',"signature":"'), (_order.P_SIG, b""),
                                 (_order.P_LIT, b'"')]
            frame_pieces.append((_order.P_LIT, b"}}"))
            key = hmac_signer.key() if auth == AUTH_HMAC else None
            self.native = _order.template(_merged(tail_pieces), _merged(frame_pieces), pexp,
                                          qexp, key, head)

    def payload(self, args: tuple = ()) -> bytes:
        """The full signed payload (set-up path, tests)."""
        return self.head + (self.tail % args if args else self.tail.replace(b"%%", b"%"))

    def render(self, request_id: int, args: tuple = ()) -> bytes:
        """The JSON frame, signed as the template's auth mode asks (set-up path)."""
        if self.auth == AUTH_HMAC:
            tail = self.tail % args if args else self.tail.replace(b"%%", b"%")
            return self.frame % (request_id, *args, sign_tail(self.mac, tail))
        if self.auth == AUTH_ED25519:
            return self.frame % (request_id, *args, self._ed.sign(self.payload(args)))
        return self.frame % (request_id, *args)


def _merged(pieces: list) -> list:
    """Adjacent literals joined (fewer pieces to walk per order)."""
    out: list = []
    for kind, lit in pieces:
        if kind == _order.P_LIT and out and out[-1][0] == _order.P_LIT:
            out[-1] = (kind, out[-1][1] + lit)
        else:
            out.append((kind, lit))
    return out


class BinanceEncoder:
    """Byte templates for every request the sender makes, built once per session (auth mode).

    `place_into`, `replace_into` and `cancel_into` are the hot path: they take integers and
    bytes and append the masked WebSocket frame to the sender's buffer. `place`, `replace`,
    `cancel` and the rest return the request's JSON text (dry run, tests, set-up and safety net).
    """

    def __init__(self, instruments: tuple[Instrument, ...], api_key: str, auth: str,
                 hmac_signer: HmacSigner | None = None, ed_signer: Ed25519Signer | None = None,
                 recv_window_ms: int | None = 5000, resp_type: str | None = "ACK",
                 replace_mode: str = "STOP_ON_FAILURE"):
        if auth == AUTH_HMAC and hmac_signer is None:
            raise ValueError("auth hmac needs an HMAC signer")
        if auth == AUTH_ED25519 and ed_signer is None:
            raise ValueError("auth ed25519 needs an Ed25519 signer")
        self.auth = auth
        self.instruments = instruments
        self._hmac = auth == AUTH_HMAC
        self._session = auth == AUTH_SESSION
        self._ed = ed_signer
        kw = dict(auth=auth, api_key=api_key, hmac_signer=hmac_signer, ed_signer=ed_signer)
        common = {"timestamp": INT}
        if recv_window_ms:
            common["recvWindow"] = recv_window_ms
        self.pscale = [scale_of(i.pexp) for i in instruments]
        self.qscale = [scale_of(i.qexp) for i in instruments]
        # index: instrument * 4 + (side == SELL) * 2 + post_only
        self._place: list[Template] = []
        self._replace: list[Template] = []
        self._cancel: list[Template] = []
        self._cancel_by_id: list[Template] = []
        self._cancel_all: list[Template] = []
        self._open_orders: list[Template] = []
        self._status: list[Template] = []
        for inst in instruments:
            px, qty = decimal_slot(inst.pexp), decimal_slot(inst.qexp)
            kw.update(pexp=inst.pexp, qexp=inst.qexp)
            for side in ("BUY", "SELL"):
                for post_only in (0, 1):
                    order = {"symbol": inst.symbol, "side": side, "price": px, "quantity": qty,
                             "newClientOrderId": BYTES, **common}
                    if post_only:
                        order["type"] = "LIMIT_MAKER"
                    else:
                        order["type"] = "LIMIT"
                        order["timeInForce"] = "GTC"
                    if resp_type:
                        order["newOrderRespType"] = resp_type
                    self._place.append(Template("order.place", order, **kw))
                    self._replace.append(Template(
                        "order.cancelReplace", {**order, "cancelReplaceMode": replace_mode,
                                                "cancelOrigClientOrderId": BYTES}, **kw))
            self._cancel.append(Template("order.cancel", {"symbol": inst.symbol,
                                                          "origClientOrderId": BYTES, **common}, **kw))
            # "Performance ... is always better when only orderId is sent" (the venue's docs)
            self._cancel_by_id.append(Template("order.cancel", {"symbol": inst.symbol,
                                                                "orderId": INT, **common}, **kw))
            self._status.append(Template("order.status", {"symbol": inst.symbol,
                                                          "origClientOrderId": BYTES, **common}, **kw))
            self._cancel_all.append(Template("openOrders.cancelAll",
                                             {"symbol": inst.symbol, **common}, **kw))
            self._open_orders.append(Template("openOrders.status",
                                              {"symbol": inst.symbol, **common}, **kw))
        kw.update(pexp=0, qexp=0)
        self._account = Template("account.status", common, **kw)

    # ---------------------------------------------------------------- hot path (C)
    # Each appends one complete, masked WebSocket frame to `out` at `off` and returns the new
    # end: render, sign and frame in one C call (engine._order). Per-request Ed25519 (auth
    # "ed25519", benchmarks only) has no C path: use place()/replace() and frame().
    def place_into(self, out: bytearray, off: int, rid: int, inst: int, side: int,
                   post_only: int, cid: bytes, price: int, qty: int, ts_ms: int) -> int:
        t = self._place[inst * 4 + (side != SIDE_BUY) * 2 + post_only].native
        return _render(t, out, off, rid, cid, None, price, qty, ts_ms, 0)

    def replace_into(self, out: bytearray, off: int, rid: int, inst: int, side: int,
                     post_only: int, orig_cid: bytes, cid: bytes, price: int, qty: int,
                     ts_ms: int) -> int:
        t = self._replace[inst * 4 + (side != SIDE_BUY) * 2 + post_only].native
        return _render(t, out, off, rid, cid, orig_cid, price, qty, ts_ms, 0)

    def cancel_into(self, out: bytearray, off: int, rid: int, inst: int, orig_cid: bytes,
                    venue_order_id: int, ts_ms: int) -> int:
        """By the venue's order id when known (its fastest lookup), else by client id."""
        if venue_order_id:
            return _render(self._cancel_by_id[inst].native, out, off, rid, b"", None, 0, 0,
                           ts_ms, venue_order_id)
        return _render(self._cancel[inst].native, out, off, rid, b"", orig_cid, 0, 0, ts_ms, 0)

    # ---------------------------------------------------------------- the same in Python
    # (dry run, tests, per-request Ed25519): the JSON text of the request, unframed
    def place(self, rid: int, inst: int, side: int, post_only: int, cid: bytes, price: int,
              qty: int, ts_ms: int) -> bytes:
        """order.place request (JSON text) for a LIMIT (GTC) or LIMIT_MAKER order."""
        t = self._place[inst * 4 + (side != SIDE_BUY) * 2 + post_only]
        pi, pf = divmod(price, self.pscale[inst])
        qi, qf = divmod(qty, self.qscale[inst])
        if self._session:
            return t.frame % (rid, cid, pi, pf, qi, qf, ts_ms)
        if self._hmac:
            mac = t.mac.copy()            # key + constant head already absorbed
            mac.update(t.tail % (cid, pi, pf, qi, qf, ts_ms))
            return t.frame % (rid, cid, pi, pf, qi, qf, ts_ms, mac.hexdigest().encode())
        return t.frame % (rid, cid, pi, pf, qi, qf, ts_ms,
                          self._ed.sign(t.head + t.tail % (cid, pi, pf, qi, qf, ts_ms)))

    def replace(self, rid: int, inst: int, side: int, post_only: int, orig_cid: bytes,
                cid: bytes, price: int, qty: int, ts_ms: int) -> bytes:
        """order.cancelReplace request: cancel `orig_cid`, place `cid` (replace_mode decides
        whether the new order is attempted when the cancel fails)."""
        t = self._replace[inst * 4 + (side != SIDE_BUY) * 2 + post_only]
        pi, pf = divmod(price, self.pscale[inst])
        qi, qf = divmod(qty, self.qscale[inst])
        if self._session:
            return t.frame % (rid, orig_cid, cid, pi, pf, qi, qf, ts_ms)
        if self._hmac:
            mac = t.mac.copy()
            mac.update(t.tail % (orig_cid, cid, pi, pf, qi, qf, ts_ms))
            return t.frame % (rid, orig_cid, cid, pi, pf, qi, qf, ts_ms, mac.hexdigest().encode())
        return t.frame % (rid, orig_cid, cid, pi, pf, qi, qf, ts_ms, self._ed.sign(
            t.head + t.tail % (orig_cid, cid, pi, pf, qi, qf, ts_ms)))

    def cancel(self, rid: int, inst: int, orig_cid: bytes, ts_ms: int) -> bytes:
        """order.cancel request by client order id."""
        return self._cancel[inst].render(rid, (orig_cid, ts_ms))

    def cancel_by_id(self, rid: int, inst: int, venue_order_id: int, ts_ms: int) -> bytes:
        """order.cancel request by the venue's order id (the venue's fastest lookup)."""
        return self._cancel_by_id[inst].render(rid, (venue_order_id, ts_ms))

    def status(self, rid: int, inst: int, cid: bytes, ts_ms: int) -> bytes:
        """order.status request by client order id: what became of an order, open or not."""
        return self._status[inst].render(rid, (cid, ts_ms))

    # ---------------------------------------------------------------- set-up / safety net
    def cancel_all(self, rid: int, inst: int, ts_ms: int) -> bytes:
        return self._cancel_all[inst].render(rid, (ts_ms,))

    def open_orders(self, rid: int, inst: int, ts_ms: int) -> bytes:
        return self._open_orders[inst].render(rid, (ts_ms,))

    def account(self, rid: int, ts_ms: int) -> bytes:
        return self._account.render(rid, (ts_ms,))


def logon_frame(rid: int, api_key: str, ed_signer: Ed25519Signer, ts_ms: int,
                recv_window_ms: int | None = None) -> bytes:
    """session.logon signed with Ed25519 (after it, requests go unsigned)."""
    params: dict = {"timestamp": INT}
    if recv_window_ms:
        params["recvWindow"] = recv_window_ms
    return Template("session.logon", params, AUTH_ED25519, api_key,
                    ed_signer=ed_signer).render(rid, (ts_ms,))


def user_stream_frame(rid: int, auth: str, api_key: str, hmac_signer: HmacSigner | None,
                      ts_ms: int) -> bytes:
    """Subscribe this connection to the account's user data (executionReport): plain after an
    Ed25519 logon, `.signature` variant with an HMAC signature otherwise."""
    if auth == AUTH_SESSION:
        return Template("userDataStream.subscribe", {}, AUTH_SESSION).render(rid)
    return Template("userDataStream.subscribe.signature", {"timestamp": INT}, AUTH_HMAC, api_key,
                    hmac_signer=hmac_signer).render(rid, (ts_ms,))


def time_frame(rid: int) -> bytes:
    return b'{"id":%d,"method":"time"}' % rid


def redact(frame: bytes) -> bytes:
    """The frame with every key and signature value replaced by *** (the dry run's log)."""
    return _REDACT.sub(rb'"\1":"***"', frame)
