"""Parameters of WS API requests (engine/sim/api.py): the venue's errors for a missing or
malformed one, the symbol's book, decimals, client ids and the order a request names."""
from __future__ import annotations

import re
import time

from engine.sim.exchange import ApiError, Order
from engine.sim.market import DECIMAL_RANGE, Book, parse_decimal

_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
CLIENT_ID_RANGE = "^[a-zA-Z0-9-_]{1,36}$"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                f"or malformed.")


def illegal(name: str, legal: str) -> ApiError:
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range "
                                f"is '{legal}'.")


def _int_param(params: dict, name: str, default):
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None


class Params:
    """Request parameters read against the account (a part of Api: self.ex is its Exchange)."""

    def _book(self, params: dict) -> Book:
        symbol = params.get("symbol")
        if not symbol or not isinstance(symbol, str):
            raise mandatory("symbol")
        book = self.ex.by_symbol.get(symbol)
        if book is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return book

    @staticmethod
    def _decimal(params: dict, name: str, exp: int) -> tuple[int, bool]:
        raw = params.get(name)
        if raw is None or raw == "":
            raise mandatory(name)
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise illegal(name, DECIMAL_RANGE)
        parsed = parse_decimal(str(raw), exp)
        if parsed is None:
            raise illegal(name, DECIMAL_RANGE)
        return parsed

    @staticmethod
    def _client_id(params: dict, name: str) -> str | None:
        cid = params.get(name)
        if cid is None:
            return None
        if not isinstance(cid, str) or not _CLIENT_ID_RE.match(cid):
            raise illegal(name, CLIENT_ID_RANGE)
        return cid

    def _locate(self, book: Book, params: dict, id_name: str, cid_name: str,
                finished_too: bool = False) -> Order:
        """The order the request names by venue id or client id: an open one (cancels), or
        with `finished_too` any order the venue keeps (order.status)."""
        order_id = params.get(id_name)
        client_id = params.get(cid_name)
        if order_id is None and client_id is None:
            raise mandatory(f"{id_name}' or '{cid_name}")
        if order_id is not None:
            try:
                order_id = int(order_id)
            except (TypeError, ValueError):
                raise illegal(id_name, "^[0-9]{1,20}$") from None
        if finished_too:
            return self.ex.lookup(book, order_id, client_id)
        return self.ex.find(book, order_id, client_id)
