"""Binance Spot WebSocket API: encoding.py (requests from byte templates, signed in C),
wire.py (answers and user-data events, the venue's codes), gateway.py (the hot path's hooks,
answers and executionReports -> order truth), reconcile.py (order.status, openOrders, the
safety net)."""
from __future__ import annotations

from engine.sender.venues._base import OrderVenue
from engine.sender.venues.binance.instruments import list_instruments

VENUE = OrderVenue(
    name="binance", title="Binance",
    gateway="engine.sender.venues.binance.gateway:BinanceGateway",
    auths=("hmac", "ed25519"),
    list_instruments=list_instruments,
    instrument_keys={"base": "baseAsset", "quote": "quoteAsset", "tick_size": "tickSize",
                     "lot_size": "stepSize", "min_notional": "minNotional"},
    trading="TRADING",
    trade_list="engine.journal.reconcile:BinanceTrades")
