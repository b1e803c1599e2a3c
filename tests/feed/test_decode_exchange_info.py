"""Instrument table from Binance exchangeInfo: filters to tick/lot/min-notional and exponents."""
from __future__ import annotations

import json

import pytest

from engine.sender.venues.binance.instruments import instruments_from_exchange_info, load_exchange_info
from engine.feed.venues import make_adapter
from decode_support import ListSink

# Shape of GET /api/v3/exchangeInfo (web-socket-api / rest docs), trimmed to what is used.
DOC = {
    "timezone": "UTC", "serverTime": 1565246363776, "rateLimits": [],
    "symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
         "baseAssetPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER"],
         "filters": [
             {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
              "tickSize": "0.01000000"},
             {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
              "stepSize": "0.00001000"},
             {"filterType": "ICEBERG_PARTS", "limit": 10},
             {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
              "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
         ]},
        {"symbol": "SHIBUSDT", "status": "TRADING", "baseAsset": "SHIB", "quoteAsset": "USDT",
         "filters": [
             {"filterType": "PRICE_FILTER", "tickSize": "0.00000001"},
             {"filterType": "LOT_SIZE", "stepSize": "1.00000000"},
             {"filterType": "MIN_NOTIONAL", "minNotional": "10.00000000"},
         ]},
        {"symbol": "OLDUSDT", "status": "BREAK", "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.10000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.10000000"}]},
    ],
}


def test_filters_become_instruments():
    btc, shib = instruments_from_exchange_info(json.dumps(DOC).encode(), ["btcusdt", "SHIBUSDT"])
    assert (btc.symbol, btc.base, btc.quote) == ("BTCUSDT", "BTC", "USDT")
    assert (btc.tick_size, btc.lot_size, btc.min_notional) == ("0.01", "0.00001", "5")
    assert (btc.pexp, btc.qexp, btc.tick, btc.lot) == (-2, -5, 1, 1)
    assert (shib.tick_size, shib.lot_size, shib.min_notional) == ("0.00000001", "1", "10")
    assert (shib.pexp, shib.qexp) == (-8, 0)


def test_the_table_drives_the_decoder(tmp_path):
    path = tmp_path / "exchangeInfo.json"
    path.write_text(json.dumps(DOC))
    ins = load_exchange_info(path, ["SHIBUSDT"])
    a = make_adapter("binance", ins, ["bookTicker"], log_skipped=False)
    sink = ListSink()
    frame = (b'{"stream":"shibusdt@bookTicker","data":{"u":7,"s":"SHIBUSDT","b":"0.00001234",'
             b'"B":"1500.00","a":"0.00001235","A":"20"}}')
    a.decode(memoryview(frame), False, sink)
    assert sink.events[0][3:7] == (1234, 1500, 1235, 20)


def test_all_symbols_and_trading_only():
    assert [i.symbol for i in instruments_from_exchange_info(DOC)] == ["BTCUSDT", "SHIBUSDT", "OLDUSDT"]
    assert len(instruments_from_exchange_info(DOC, trading_only=True)) == 2
    with pytest.raises(ValueError, match="OLDUSDT"):
        instruments_from_exchange_info(DOC, ["OLDUSDT"], trading_only=True)


@pytest.mark.parametrize("change,match", [
    (lambda s: s["filters"].pop(0), "PRICE_FILTER.tickSize missing"),
    (lambda s: s["filters"][1].update(stepSize="abc"), "LOT_SIZE.stepSize is not a decimal"),
    (lambda s: s["filters"][0].update(tickSize="0.00000000"), "tick_size must be > 0"),
    (lambda s: s["filters"][0].update(tickSize="-1"), "must be a finite value"),
])
def test_bad_filters_name_the_symbol_and_field(change, match):
    doc = json.loads(json.dumps(DOC))
    change(doc["symbols"][0])
    with pytest.raises(ValueError, match=f"BTCUSDT.*{match}|{match}"):
        instruments_from_exchange_info(doc, ["BTCUSDT"])


def test_missing_symbols_and_bad_documents():
    with pytest.raises(ValueError, match=r"not found.*\['XYZUSDT'\]"):
        instruments_from_exchange_info(DOC, ["BTCUSDT", "XYZUSDT"])
    with pytest.raises(ValueError, match="exchangeInfo"):
        instruments_from_exchange_info(b'{"symbols": 5}')
    with pytest.raises(ValueError, match="exchangeInfo"):
        instruments_from_exchange_info(b"not json")
