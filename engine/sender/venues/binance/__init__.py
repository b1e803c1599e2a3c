"""Binance Spot WebSocket API: encoding.py (requests from byte templates, signed in C),
wire.py (answers and user-data events, the venue's codes), gateway.py (the hot path's hooks,
answers and executionReports -> order truth), reconcile.py (order.status, openOrders, the
safety net)."""
from __future__ import annotations

from engine.sender.venues._base import OrderVenue

VENUE = OrderVenue(name="binance", title="Binance",
                   gateway="engine.sender.venues.binance.gateway:BinanceGateway",
                   auths=("hmac", "ed25519"))
