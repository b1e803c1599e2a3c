"""Nothing lost: the venue's own trade list (Binance WS API `myTrades`) against the journal's
fills, so every fill of ours is in the journal exactly once, keyed by the venue's trade id.

Runs in the journal agent, on its own connection (never the sender's): at start, periodically,
and soon after the journal ring showed a gap. Per symbol it asks from the lowest trade id the
journal has not seen confirmed (or, for an empty journal, from `lookback`), pages by fromId,
and upserts: a fill the journal has from the execution report is marked confirmed (the venue's
figures win: commission, maker flag); one it lacks is added with source 'mytrades'.

The request (PROTOCOLS / Binance WS API): method "myTrades", params symbol, fromId | startTime,
limit (max 1000), apiKey, timestamp, recvWindow, signature (HMAC-SHA256 hex, or Ed25519 base64,
of the params sorted by name as a query string). Weight 20.
"""
from __future__ import annotations

import json
import time

PAGE = 1000
PAGES_MAX = 50              # per symbol per pass: a bounded pass, the next one goes on


class VenueError(RuntimeError):
    """The venue's trade list could not be read; the message says why."""


class BinanceTrades:
    """A small blocking client for the venue's trade list (the journal agent's own
    connection). `fetch(symbol, from_id=, start_ms=)` returns the venue's entries, oldest
    first."""

    def __init__(self, url: str, api_key: str, sign, recv_window_ms: int = 5000,
                 timeout_s: float = 5.0):
        self.url, self.api_key, self.sign = url, api_key, sign
        self.recv_window_ms, self.timeout_s = recv_window_ms, timeout_s
        self._ws = None             # picows transport
        self._loop = None
        self._frames: list[bytes] = []
        self._waiter = None
        self._rid = 0

    @classmethod
    def from_config(cls, cfg) -> "BinanceTrades":
        """Credentials as the sender loads them (HMAC secret, else Ed25519 per request)."""
        from engine.sender import keys
        from engine.sender.signing import Ed25519Signer, HmacSigner

        creds = keys.load(cfg.sender, cfg.sender.url or "ws://127.0.0.1/")
        if creds.secret is not None:
            signer = HmacSigner(creds.secret.reveal()).sign
        elif creds.ed25519_private is not None:
            signer = Ed25519Signer(creds.ed25519_private).sign
        else:
            raise VenueError("no HMAC secret or Ed25519 key to sign myTrades with")
        return cls(cfg.sender.url, creds.api_key.reveal(), signer, cfg.sender.recv_window_ms)

    def _connect(self):
        """The connection (picows, on this client's own event loop), opened when needed."""
        import asyncio

        from picows import WSListener, WSMsgType, ws_connect

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._ws is not None:
            return self._ws
        client = self

        class Listener(WSListener):
            def on_ws_frame(self, transport, frame):
                if frame.msg_type == WSMsgType.TEXT:
                    client._frames.append(frame.get_payload_as_bytes())
                    if client._waiter is not None and not client._waiter.done():
                        client._waiter.set_result(None)
                elif frame.msg_type == WSMsgType.CLOSE:
                    transport.disconnect()

            def on_ws_disconnected(self, transport):
                client._ws = None
                if client._waiter is not None and not client._waiter.done():
                    client._waiter.set_exception(ConnectionError("connection closed"))

        try:
            self._ws, _ = self._loop.run_until_complete(asyncio.wait_for(
                ws_connect(Listener, self.url, enable_auto_pong=True,
                           max_frame_size=1 << 24), self.timeout_s))
        except Exception as e:
            self._ws = None
            raise VenueError(f"connect {self.url}: {type(e).__name__}: {e}") from None
        return self._ws

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.send_close()
                self._ws.disconnect()
            except Exception:
                pass
            self._ws = None
        if self._loop is not None:
            self._loop.run_until_complete(asyncio_sleep0())
            self._loop.close()
            self._loop = None

    def _request(self, frame: bytes, rid: int) -> dict:
        import asyncio

        from picows import WSMsgType

        async def exchange():
            self._ws.send(WSMsgType.TEXT, frame)
            deadline = self._loop.time() + self.timeout_s
            while True:
                while self._frames:
                    msg = json.loads(self._frames.pop(0))
                    if msg.get("id") == rid:
                        return msg
                self._waiter = self._loop.create_future()
                await asyncio.wait_for(self._waiter, max(deadline - self._loop.time(), 0.001))

        return self._loop.run_until_complete(exchange())

    def fetch(self, symbol: str, from_id: int | None = None, start_ms: int | None = None,
              limit: int = PAGE) -> list[dict]:
        params: dict = {"symbol": symbol, "limit": limit, "apiKey": self.api_key,
                        "timestamp": int(time.time() * 1000), "recvWindow": self.recv_window_ms}
        if from_id is not None:
            params["fromId"] = from_id
        elif start_ms is not None:
            params["startTime"] = start_ms
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params)).encode()
        params["signature"] = self.sign(payload).decode()
        self._rid += 1
        frame = json.dumps({"id": self._rid, "method": "myTrades", "params": params}).encode()
        try:
            self._connect()
            msg = self._request(frame, self._rid)
        except VenueError:
            raise
        except Exception as e:
            self.close()
            raise VenueError(f"myTrades {symbol}: {type(e).__name__}: {e}") from None
        if msg.get("status") != 200:
            err = msg.get("error") or {}
            raise VenueError(f"myTrades {symbol}: status {msg.get('status')} code "
                             f"{err.get('code')} {err.get('msg')!r}")
        return msg["result"]


async def asyncio_sleep0() -> None:
    import asyncio

    await asyncio.sleep(0)


UPSERT = """
INSERT INTO fills (symbol, trade_id, venue_order_id, side, price, qty, quote_qty, commission,
                   commission_asset, is_maker, ts_ns, source, confirmed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'mytrades', 1)
ON CONFLICT (symbol, trade_id, venue_order_id) DO UPDATE SET
    confirmed = 1, side = excluded.side, price = excluded.price, qty = excluded.qty,
    quote_qty = excluded.quote_qty, commission = excluded.commission,
    commission_asset = excluded.commission_asset, is_maker = excluded.is_maker,
    ts_ns = excluded.ts_ns
"""


def start_point(con, symbol: str) -> int | None:
    """The trade id to ask from: the lowest unconfirmed fill's, else the newest confirmed one
    (asked again: a self-trade shares its id), else None (an empty journal: ask by time)."""
    low = con.execute("SELECT min(trade_id) FROM fills WHERE symbol=? AND confirmed=0",
                      (symbol,)).fetchone()[0]
    high = con.execute("SELECT max(trade_id) FROM fills WHERE symbol=? AND confirmed=1",
                       (symbol,)).fetchone()[0]
    if low is not None and high is not None:
        return min(low, high)
    return low if low is not None else high


def reconcile_symbol(con, venue, symbol: str, lookback_ms: int, now_ms: int | None = None
                     ) -> tuple[int, int]:
    """One pass for `symbol`: returns (venue trades seen, fills the journal lacked). Commits."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    from_id = start_point(con, symbol)
    seen = added = 0
    for _ in range(PAGES_MAX):
        page = (venue.fetch(symbol, from_id=from_id) if from_id is not None
                else venue.fetch(symbol, start_ms=now_ms - lookback_ms))
        if not page:
            break
        with con:
            for t in page:
                new = con.execute("SELECT 1 FROM fills WHERE symbol=? AND trade_id=? AND "
                                  "venue_order_id=?", (symbol, t["id"], t["orderId"])
                                  ).fetchone() is None
                con.execute(UPSERT, (symbol, t["id"], t["orderId"],
                                     "BUY" if t["isBuyer"] else "SELL", t["price"], t["qty"],
                                     t.get("quoteQty"), t.get("commission"),
                                     t.get("commissionAsset"), int(bool(t.get("isMaker"))),
                                     int(t["time"]) * 1_000_000))
                if new:
                    added += 1
                    con.execute("INSERT INTO decisions (ts_ns, kind, symbol, detail) "
                                "VALUES (?, 'fill_from_venue', ?, ?)",
                                (time.time_ns(), symbol, f"trade {t['id']} order "
                                                         f"{t['orderId']}"))
        seen += len(page)
        last = page[-1]["id"]
        if len(page) < PAGE or last == from_id:
            break
        from_id = last        # again from the last id: a self-trade's second row shares it
    return seen, added
