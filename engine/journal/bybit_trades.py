"""Nothing lost, on Bybit: the venue's execution list (REST `GET /v5/execution/list`) against the
journal's fills, as engine/journal/reconcile.py does with Binance's `myTrades`. Keyed by the
venue's execution id (execId, a string) with the venue's order id.

Bybit has no id to page from: a pass asks by time, from the oldest unconfirmed fill of the
symbol (else the newest confirmed one, else `lookback`) less OVERLAP_MS, to now, in windows of
at most 7 days (the venue's limit), newest first with its cursor. Only `execType` "Trade" rows
are fills.

The request (Bybit v5 REST authentication): headers X-BAPI-API-KEY, X-BAPI-TIMESTAMP (ms),
X-BAPI-RECV-WINDOW, X-BAPI-SIGN = hex HMAC-SHA256(secret, timestamp + api_key + recv_window +
query string); answer {"retCode": 0, "result": {"list": [...], "nextPageCursor": ...}}.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request

from engine.journal.reconcile import PAGES_MAX, UPSERT, VenueError

PAGE = 100                      # the venue's maximum
OVERLAP_MS = 60_000             # ask a minute before the starting fill: executions share times
WINDOW_MS = 7 * 86_400_000      # the widest window one request may ask for
# The REST host of each Bybit WebSocket host (mainnet, testnet, demo); others give
# journal.trades_url.
REST_HOSTS = {"stream.bybit.com": "https://api.bybit.com",
              "stream-testnet.bybit.com": "https://api-testnet.bybit.com",
              "stream-demo.bybit.com": "https://api-demo.bybit.com"}


def rest_base(ws_url: str, configured: str = "") -> str:
    """The REST base URL: `configured` (journal.trades_url), else the one of sender.url's host."""
    if configured:
        return configured.rstrip("/")
    host = urllib.parse.urlsplit(ws_url).hostname or ""
    if host in REST_HOSTS:
        return REST_HOSTS[host]
    raise VenueError(f"no REST URL known for {host or ws_url!r}: set journal.trades_url")


class BybitExecutions:
    """A small blocking client of the execution list. `fetch(symbol, start_ms, end_ms,
    cursor)` returns (rows, next cursor)."""

    def __init__(self, base: str, api_key: str, secret: bytes, category: str,
                 recv_window_ms: int = 5000, timeout_s: float = 5.0):
        self.base, self.api_key, self.secret = base, api_key, secret
        self.category, self.recv_window_ms, self.timeout_s = category, recv_window_ms, timeout_s

    @classmethod
    def from_config(cls, cfg) -> "BybitExecutions":
        from engine.sender import keys

        creds = keys.load(cfg.sender, cfg.sender.url or "ws://127.0.0.1/")
        if creds.secret is None:
            raise VenueError("no HMAC secret to sign Bybit's execution list with")
        return cls(rest_base(cfg.sender.url, cfg.journal.trades_url), creds.api_key.reveal(),
                   creds.secret.reveal(), cfg.sender.bybit_category, cfg.sender.recv_window_ms)

    def close(self) -> None:
        """Nothing held between requests (one HTTP request each)."""

    def fetch(self, symbol: str, start_ms: int, end_ms: int, cursor: str = ""
              ) -> tuple[list[dict], str]:
        params = {"category": self.category, "symbol": symbol, "startTime": start_ms,
                  "endTime": end_ms, "limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        query = urllib.parse.urlencode(params)
        ts = str(int(time.time() * 1000))
        recv = str(self.recv_window_ms)
        sign = hmac.new(self.secret, f"{ts}{self.api_key}{recv}{query}".encode(),
                        hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            f"{self.base}/v5/execution/list?{query}",
            headers={"X-BAPI-API-KEY": self.api_key, "X-BAPI-TIMESTAMP": ts,
                     "X-BAPI-RECV-WINDOW": recv, "X-BAPI-SIGN": sign})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                msg = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise VenueError(f"execution list {symbol}: HTTP {e.code}") from None
        except (OSError, ValueError) as e:
            raise VenueError(f"execution list {symbol}: {type(e).__name__}: {e}") from None
        if msg.get("retCode") != 0:
            raise VenueError(f"execution list {symbol}: retCode {msg.get('retCode')} "
                             f"{msg.get('retMsg')!r}")
        result = msg.get("result") or {}
        return result.get("list") or [], result.get("nextPageCursor") or ""


def start_ms(con, symbol: str, now_ms: int, lookback_ms: int) -> int:
    """Where a pass starts: the oldest unconfirmed fill, else the newest confirmed one, else
    the look-back; less OVERLAP_MS."""
    low = con.execute("SELECT min(ts_ns) FROM fills WHERE symbol=? AND confirmed=0",
                      (symbol,)).fetchone()[0]
    high = con.execute("SELECT max(ts_ns) FROM fills WHERE symbol=? AND confirmed=1",
                       (symbol,)).fetchone()[0]
    t = low if low is not None else high
    return (now_ms - lookback_ms) if t is None else t // 1_000_000 - OVERLAP_MS


def reconcile_symbol(con, venue, symbol: str, lookback_ms: int, now_ms: int | None = None
                     ) -> tuple[int, int]:
    """One pass for `symbol`: returns (venue executions seen, fills the journal lacked)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    seen = added = 0
    lo = start_ms(con, symbol, now_ms, lookback_ms)
    while lo < now_ms:
        hi = min(lo + WINDOW_MS, now_ms)
        cursor = ""
        for _ in range(PAGES_MAX):
            rows, cursor = venue.fetch(symbol, lo, hi, cursor)
            trades = [r for r in rows if r.get("execType", "Trade") == "Trade"]
            with con:
                for t in trades:
                    key = (symbol, t["execId"], int(t["orderId"]))
                    new = con.execute("SELECT 1 FROM fills WHERE symbol=? AND trade_id=? AND "
                                      "venue_order_id=?", key).fetchone() is None
                    price, qty = t["execPrice"], t["execQty"]
                    con.execute(UPSERT, (*key, t["side"].upper(), price, qty,
                                         t.get("execValue"), t.get("execFee"),
                                         t.get("feeCurrency") or None,
                                         int(bool(t.get("isMaker"))),
                                         int(t["execTime"]) * 1_000_000))
                    if new:
                        added += 1
                        con.execute("INSERT INTO decisions (ts_ns, kind, symbol, detail) "
                                    "VALUES (?, 'fill_from_venue', ?, ?)",
                                    (time.time_ns(), symbol,
                                     f"execution {t['execId']} order {t['orderId']}"))
            seen += len(trades)
            if not cursor or not rows:
                break
        lo = hi
    return seen, added
