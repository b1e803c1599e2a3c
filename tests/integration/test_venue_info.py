"""Instruments from the venue: the filters come from exchange information at start, a written
value the venue contradicts is refused naming both, an unknown symbol is refused; Bybit's
instruments-info is parsed from the documented response shape and fetched over HTTP."""
from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse

import msgspec
import pytest

from engine import config
from engine import venue_info as vi
from engine.sender.venues.bybit.instruments import bybit_instrument_of, decode_bybit_instruments
from engine.instruments import Instrument
from tests.support.sim_thread import SimThread

COARSE_BTC = Instrument(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size="0.10",
                        lot_size="0.001", min_notional="10")
SOL = Instrument(symbol="SOLUSDT", base="SOL", quote="USDT", tick_size="0.01",
                 lot_size="0.001", min_notional="5")


def _cfg(tmp_path, url: str, toml: str = "", symbols: str = "BTCUSDT", **env):
    p = tmp_path / "mm.toml"
    p.write_text(toml)
    return config.load_with_sources(p, env={"MM_ORDER_URL": url, "MM_SYMBOL": symbols, **env})


@pytest.fixture(scope="module")
def venue():
    """A venue whose BTCUSDT filters differ from the built-in defaults, listing SOLUSDT too."""
    with SimThread(instruments=(COARSE_BTC, SOL)) as sim:
        yield sim


def test_filters_not_written_come_from_the_venue(tmp_path, venue):
    cfg, configured = _cfg(tmp_path, venue.api_url, symbols="BTCUSDT,SOLUSDT",
                           toml='[quoter]\norder_size = "0.002"\n')
    notes = []
    new = vi.instruments_from_venue(cfg, configured, notes.append)
    btc, sol = new.instruments
    assert (btc.tick_size, btc.lot_size, btc.min_notional) == ("0.1", "0.001", "10")
    assert (sol.tick_size, sol.lot_size, sol.base, sol.quote) == ("0.01", "0.001", "SOL", "USDT")
    assert any("BTCUSDT tick_size 0.1 from the venue (built-in default 0.01)" in n for n in notes)


def test_a_written_filter_that_disagrees_is_refused_naming_both(tmp_path, venue):
    cfg, configured = _cfg(tmp_path, venue.api_url,
                           toml="[[instruments]]\nsymbol = 'BTCUSDT'\ntick_size = '0.01'\n")
    with pytest.raises(vi.VenueRefused) as e:
        vi.instruments_from_venue(cfg, configured, lambda m: None)
    assert str(e.value) == "instruments[0].tick_size: config 0.01, venue BTCUSDT tickSize 0.1"


def test_a_written_filter_that_agrees_is_kept(tmp_path, venue):
    cfg, configured = _cfg(tmp_path, venue.api_url, toml=(
        "[[instruments]]\nsymbol = 'BTCUSDT'\ntick_size = '0.100'\nlot_size = '0.001'\n"
        "[quoter]\norder_size = '0.002'\n"))
    new = vi.instruments_from_venue(cfg, configured, lambda m: None)
    assert new.instruments[0].tick_size == "0.100" and new.instruments[0].tick == 1


def test_unknown_symbol_is_refused_naming_it(tmp_path, venue):
    cfg, configured = _cfg(tmp_path, venue.api_url, symbols="BTCUSDT,DOGEUSDT")
    with pytest.raises(vi.VenueRefused, match=r"instruments\[1\]: DOGEUSDT is not listed by the "
                                              r"venue"):
        vi.instruments_from_venue(cfg, configured, lambda m: None)


def test_order_size_is_checked_against_the_venues_lot(tmp_path, venue):
    cfg, configured = _cfg(tmp_path, venue.api_url, toml='[quoter]\norder_size = "0.0025"\n')
    with pytest.raises(vi.VenueRefused, match=r"quoter\.order_size: 0\.0025 BTCUSDT is not a "
                                              r"whole number of lots \(0\.001\)"):
        vi.instruments_from_venue(cfg, configured, lambda m: None)


def test_unreachable_venue_gives_up_at_the_deadline(tmp_path):
    cfg, configured = _cfg(tmp_path, "ws://127.0.0.1:1/ws-api/v3")
    lines: list[str] = []
    t0 = time.monotonic()
    assert vi.instruments_from_venue(cfg, configured, lines.append,
                                     deadline=time.monotonic() + 1.5) is None
    assert time.monotonic() - t0 < 3.0
    assert "(attempt 1)" in lines[0] and "gave up after" in lines[-1]


# ---------------------------------------------------------------------- Binance: -1121
def test_binance_unknown_symbol_error_is_asked_one_by_one(tmp_path):
    """A real venue answers -1121 for the whole request; each symbol is then asked alone."""
    known = {"BTCUSDT": {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC",
                         "quoteAsset": "USDT", "filters": [
                             {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                             {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                             {"filterType": "NOTIONAL", "minNotional": "5.00000000"}]}}

    def answer(query):
        wanted = json.loads(query["symbols"][0])
        if any(s not in known for s in wanted):
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        return 200, {"timezone": "UTC", "symbols": [known[s] for s in wanted]}
    with _http_venue("/api/v3/exchangeInfo", answer) as base:
        cfg, configured = _cfg(tmp_path, "ws://unused", symbols="BTCUSDT,NOPEUSDT",
                               toml=f"instruments_url = '{base}'\n")
        listing = vi.fetch(cfg, base)
        assert set(listing.symbols) == {"BTCUSDT"}
        with pytest.raises(vi.VenueRefused, match="NOPEUSDT is not listed"):
            vi.resolve(cfg, configured, listing)


# ---------------------------------------------------------------------- Bybit
# The documented response of GET /v5/market/instruments-info?category=spot&symbol=BTCUSDT
# (bybit-exchange/docs, v5/market/instrument, "Response Example", Spot).
BYBIT_SPOT = {
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "spot", "list": [{
        "symbolId": 9, "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT",
        "innovation": "0", "status": "Trading", "marginTrading": "utaOnly", "stTag": "0",
        "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.0000001",
                          "minOrderQty": "0.000011", "maxOrderQty": "83", "minOrderAmt": "5",
                          "maxOrderAmt": "8000000", "maxLimitOrderQty": "83",
                          "maxMarketOrderQty": "41.5", "postOnlyMaxLimitOrderSize": "60000"},
        "priceFilter": {"tickSize": "0.1"},
        "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
        "symbolType": ""}]},
    "retExtInfo": {}, "time": 1760027412300}
# ... and the linear one (category=linear), trimmed to the fields that matter here.
BYBIT_LINEAR = {
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "linear", "list": [{
        "symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": "BTC", "quoteCoin": "USDT", "priceScale": "2",
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                          "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000",
                          "minNotionalValue": "5"}}], "nextPageCursor": ""},
    "retExtInfo": {}, "time": 1735809771618}


def test_bybit_spot_and_linear_entries_parse():
    spot = bybit_instrument_of(decode_bybit_instruments(json.dumps(BYBIT_SPOT)).result.entries[0])
    assert (spot.tick_size, spot.lot_size, spot.min_notional, spot.base, spot.quote) == \
        ("0.1", "0.000001", "5", "BTC", "USDT")
    assert (spot.pexp, spot.qexp) == (-1, -6)
    lin = bybit_instrument_of(decode_bybit_instruments(BYBIT_LINEAR).result.entries[0])
    assert (lin.tick_size, lin.lot_size, lin.min_notional) == ("0.1", "0.001", "5")


def test_bybit_over_rest_resolves_and_refuses_unknown(tmp_path):
    def answer(query):
        if query["symbol"][0] == "BTCUSDT" and query["category"][0] == "spot":
            return 200, BYBIT_SPOT
        return 200, {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}}
    with _http_venue("/v5/market/instruments-info", answer) as base:
        toml = (f"instruments_url = '{base}'\n[sender]\nvenue = 'bybit'\n"
                f"[feed]\nvenue = 'bybit'\n[quoter]\norder_size = '0.002'\n")
        cfg, configured = _cfg(tmp_path, "ws://127.0.0.1:9/v5/trade", toml=toml)
        new = vi.instruments_from_venue(cfg, configured, lambda m: None)
        assert new.instruments[0].lot_size == "0.000001"
        cfg, configured = _cfg(tmp_path, "ws://127.0.0.1:9/v5/trade", toml=toml,
                               symbols="BTCUSDT,NOPEUSDT")
        with pytest.raises(vi.VenueRefused, match="NOPEUSDT is not listed"):
            vi.instruments_from_venue(cfg, configured, lambda m: None)


def test_bybit_without_a_rest_url_is_skipped_with_a_reason(tmp_path):
    cfg, configured = _cfg(tmp_path, "wss://stream.bybit.com/v5/trade",
                           toml="[sender]\nvenue = 'bybit'\n[feed]\nvenue = 'bybit'\n")
    lines: list[str] = []
    assert vi.instruments_from_venue(cfg, configured, lines.append) is cfg
    assert "instruments_url" in lines[0] and "using the configured filters" in lines[0]


class _http_venue:
    """A loopback HTTP server answering `path` with answer(query) -> (status, json)."""

    def __init__(self, path, answer):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                status, body = (outer.answer(urllib.parse.parse_qs(url.query))
                                if url.path == path else (404, {"msg": "no such path"}))
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass
        self.answer = answer
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_instrument_errors_keep_the_struct_valid():
    """resolve() returns Instruments a process can use: exponents follow the venue's filters."""
    listing = vi.Listing("binance", "ws://x", {"BTCUSDT": (COARSE_BTC, "TRADING")})
    cfg = msgspec.structs.replace(config.EngineConfig(), instruments=(
        Instrument(symbol="BTCUSDT"),))
    new, _ = vi.resolve(cfg, {}, listing)
    assert (new.instruments[0].pexp, new.instruments[0].qexp) == (-1, -3)
    listing = vi.Listing("binance", "ws://x", {"BTCUSDT": (COARSE_BTC, "BREAK")})
    with pytest.raises(vi.VenueRefused, match="not trading at the venue \\(status BREAK\\)"):
        vi.resolve(cfg, {}, listing)
