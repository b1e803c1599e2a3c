"""Nothing lost on Bybit: the journal against the venue's execution list (GET /v5/execution/list),
served by a loopback HTTP fixture written here that checks Bybit's v5 REST signature
(X-BAPI-SIGN = HMAC-SHA256(timestamp + api_key + recv_window + query)) and pages newest first
with a cursor, as documented. A stand-in for the venue, not for any of our code."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest

from engine import demo_keys
from engine.config import EngineConfig
from engine.journal.agent import trade_list
from engine.journal.bybit_trades import (OVERLAP_MS, BybitExecutions, reconcile_symbol,
                                         rest_base)
from engine.journal.reconcile import VenueError
from engine.journal.schema import open_journal

T0 = 1_700_000_000_000           # ms
KEY, SECRET = demo_keys.DEMO_API_KEY, demo_keys.DEMO_API_SECRET.encode()


def _exec(n: int, order: int, side="Buy", t=T0, kind="Trade") -> dict:
    return {"symbol": "BTCUSDT", "orderId": str(1_900_000_000_000_000_000 + order),
            "orderLinkId": f"tg-0-{order}", "side": side, "execPrice": "60000.1",
            "execQty": "0.001", "execValue": "60.0001", "execFee": "0.06",
            "feeCurrency": "USDT", "execId": f"e{n:04d}-5c2a-4b1e", "execTime": str(t + n),
            "isMaker": True, "execType": kind}


class ExecutionList:
    """Bybit's /v5/execution/list on 127.0.0.1: checks the signature, pages newest first."""

    def __init__(self, rows):
        self.rows = rows
        self.asks: list[dict] = []
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fixture.answer(self)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        path, _, query = h.path.partition("?")
        q = dict(urllib.parse.parse_qsl(query))
        ts, recv = h.headers["X-BAPI-TIMESTAMP"], h.headers["X-BAPI-RECV-WINDOW"]
        want = hmac.new(SECRET, f"{ts}{h.headers['X-BAPI-API-KEY']}{recv}{query}".encode(),
                        hashlib.sha256).hexdigest()
        if path != "/v5/execution/list" or h.headers["X-BAPI-API-KEY"] != KEY:
            body = {"retCode": 10003, "retMsg": "API key is invalid."}
        elif h.headers["X-BAPI-SIGN"] != want:
            body = {"retCode": 10004, "retMsg": "error sign!"}
        else:
            self.asks.append(q)
            lo, hi = int(q["startTime"]), int(q["endTime"])
            rows = sorted((r for r in self.rows if lo <= int(r["execTime"]) <= hi
                           and r["symbol"] == q["symbol"]),
                          key=lambda r: -int(r["execTime"]))
            at, n = int(q.get("cursor") or 0), int(q["limit"])
            page = rows[at:at + n]
            body = {"retCode": 0, "retMsg": "OK",
                    "result": {"category": q["category"], "list": page,
                               "nextPageCursor": str(at + n) if at + n < len(rows) else ""}}
        data = json.dumps(body).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def venue_of():
    made = []

    def make(rows):
        v = ExecutionList(rows)
        made.append(v)
        return v, BybitExecutions(v.url, KEY, SECRET, "spot")
    yield make
    for v in made:
        v.close()


def _fills(con):
    return con.execute("SELECT trade_id, venue_order_id, side, source, confirmed, commission, "
                       "commission_asset FROM fills ORDER BY trade_id").fetchall()


def test_the_execution_list_adds_what_is_missing_once_and_confirms_the_rest(tmp_path, venue_of):
    con = open_journal(tmp_path / "j.sqlite")
    # the journal holds e0001 (from a report, unconfirmed); the venue also has e0002, e0003 and
    # a funding row, which is not a fill
    con.execute("INSERT INTO fills (symbol, trade_id, venue_order_id, side, price, qty, ts_ns, "
                "source) VALUES ('BTCUSDT', 'e0001-5c2a-4b1e', ?, 'BUY', '60000.1', '0.001', ?, "
                "'report')", (1_900_000_000_000_000_001, (T0 + 1) * 1_000_000))
    con.commit()
    fixture, client = venue_of([_exec(1, 1), _exec(2, 2, "Sell"), _exec(3, 2, "Sell"),
                                _exec(4, 0, kind="Funding")])
    assert reconcile_symbol(con, client, "BTCUSDT", 3_600_000, now_ms=T0 + 10_000) == (3, 2)
    assert _fills(con) == [
        ("e0001-5c2a-4b1e", 1_900_000_000_000_000_001, "BUY", "report", 1, "0.06", "USDT"),
        ("e0002-5c2a-4b1e", 1_900_000_000_000_000_002, "SELL", "mytrades", 1, "0.06", "USDT"),
        ("e0003-5c2a-4b1e", 1_900_000_000_000_000_002, "SELL", "mytrades", 1, "0.06", "USDT")]
    ask = fixture.asks[0]                          # from the unconfirmed fill, a minute before
    assert (ask["category"], int(ask["startTime"])) == ("spot", T0 + 1 - OVERLAP_MS)
    # again: nothing new, each once
    assert reconcile_symbol(con, client, "BTCUSDT", 3_600_000, now_ms=T0 + 20_000) == (3, 0)
    assert len(_fills(con)) == 3
    assert con.execute("SELECT count(*) FROM decisions WHERE kind='fill_from_venue'"
                       ).fetchone()[0] == 2


def test_pages_follow_the_cursor_and_an_empty_journal_asks_by_time(tmp_path, venue_of):
    con = open_journal(tmp_path / "j.sqlite")
    fixture, client = venue_of([_exec(n, n) for n in range(1, 251)])
    assert reconcile_symbol(con, client, "BTCUSDT", 3_600_000, now_ms=T0 + 1_000) == (250, 250)
    assert [int(a.get("cursor") or 0) for a in fixture.asks] == [0, 100, 200]
    assert int(fixture.asks[0]["startTime"]) == T0 + 1_000 - 3_600_000
    assert len({r[0] for r in _fills(con)}) == 250


def test_a_wrong_secret_or_an_unknown_host_is_a_clear_error(tmp_path, venue_of):
    fixture, _ = venue_of([_exec(1, 1)])
    bad = BybitExecutions(fixture.url, KEY, b"not the secret", "spot")
    with pytest.raises(VenueError, match="retCode 10004"):
        bad.fetch("BTCUSDT", T0, T0 + 1)
    assert rest_base("wss://stream.bybit.com/v5/trade") == "https://api.bybit.com"
    assert rest_base("wss://stream-testnet.bybit.com/v5/trade") == "https://api-testnet.bybit.com"
    assert rest_base("ws://127.0.0.1:9/v5/trade", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    with pytest.raises(VenueError, match="journal.trades_url"):
        rest_base("wss://bybit.example/v5/trade")


def test_the_agent_reads_the_trade_list_of_its_venue(venue_of):
    fixture, _ = venue_of([])
    cfg = EngineConfig()
    cfg = msgspec.structs.replace(
        cfg, sender=msgspec.structs.replace(cfg.sender, venue="bybit",
                                            url="ws://127.0.0.1:9/v5/trade"),
        journal=msgspec.structs.replace(cfg.journal, trades_url=fixture.url))
    client_cls, _ = trade_list("bybit")
    client = client_cls.from_config(cfg)         # the loopback URL: the demo credentials
    assert isinstance(client, BybitExecutions) and client.base == fixture.url
    assert client.fetch("BTCUSDT", T0, T0 + 1) == ([], "")
    assert trade_list("binance")[0].__name__ == "BinanceTrades"
