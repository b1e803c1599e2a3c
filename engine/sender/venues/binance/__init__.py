"""Binance Spot WebSocket API: encoding.py (requests from byte templates, signed in C),
wire.py (answers and user-data events, the venue's codes), gateway.py (the hot path's hooks,
answers and executionReports -> order truth), reconcile.py (order.status, openOrders, the
safety net)."""
