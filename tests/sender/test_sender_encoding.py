"""The byte templates produce exactly Binance's field names and values, and the signature over
the payload a venue would rebuild from the JSON (checked with the simulator's verifier)."""
import json

from hypothesis import given, strategies as st

from engine import demo_keys
from engine.instruments import Instrument, format_fixed
from engine.records import SIDE_BUY, SIDE_SELL
from engine.sender.venues.binance import encoding as bn
from engine.sender.venues.binance import wire
from engine.sender.venues.binance.encoding import redact
from engine.sender.signing import Ed25519Signer, HmacSigner
from engine.sender.keys import demo_ed25519_key
from engine.sim import auth as sim_auth

INSTS = (Instrument(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size="0.01",
                    lot_size="0.00001"),
         Instrument(symbol="DOGEUSDT", base="DOGE", quote="USDT", tick_size="0.00001",
                    lot_size="1"),
         Instrument(symbol="BIGUSDT", tick_size="10", lot_size="100", price_exp=1, qty_exp=2))
HMAC = HmacSigner(demo_keys.DEMO_API_SECRET.encode())


def enc(auth=bn.AUTH_HMAC, **kw):
    ed = Ed25519Signer(demo_ed25519_key()) if auth == bn.AUTH_ED25519 else None
    return bn.BinanceEncoder(INSTS, demo_keys.DEMO_API_KEY, auth, HMAC, ed, **kw)


def verify_hmac(params: dict) -> bool:
    return sim_auth.verify_hmac(demo_keys.DEMO_API_SECRET, sim_auth.signature_payload(params),
                                params["signature"])


def test_place_limit_maker_fields_and_signature():
    frame = json.loads(enc().place(17, 0, SIDE_BUY, 1, b"mm-123-4", 6000012, 150, 1700000000123))
    assert frame["id"] == 17 and frame["method"] == "order.place"
    p = frame["params"]
    assert p == {"apiKey": demo_keys.DEMO_API_KEY, "newClientOrderId": "mm-123-4",
                 "newOrderRespType": "ACK", "price": "60000.12", "quantity": "0.00150",
                 "recvWindow": 5000, "side": "BUY", "symbol": "BTCUSDT",
                 "timestamp": 1700000000123, "type": "LIMIT_MAKER", "signature": p["signature"]}
    assert verify_hmac(p)


def test_place_limit_gtc_has_time_in_force():
    p = json.loads(enc().place(1, 0, SIDE_SELL, 0, b"mm-1-2", 1, 1, 5))["params"]
    assert (p["type"], p["timeInForce"], p["side"], p["price"], p["quantity"]) == \
        ("LIMIT", "GTC", "SELL", "0.01", "0.00001")
    assert verify_hmac(p)


def test_replace_cancel_and_status_frames():
    e = enc(replace_mode="STOP_ON_FAILURE")
    r = json.loads(e.replace(2, 1, SIDE_SELL, 1, b"mm-5-6", b"mm-7-8", 123456, 42, 99))
    assert r["method"] == "order.cancelReplace"
    p = r["params"]
    assert (p["cancelOrigClientOrderId"], p["newClientOrderId"], p["cancelReplaceMode"],
            p["symbol"], p["price"], p["quantity"]) == \
        ("mm-5-6", "mm-7-8", "STOP_ON_FAILURE", "DOGEUSDT", "1.23456", "42")
    assert verify_hmac(p)
    c = json.loads(e.cancel(3, 0, b"mm-9-10", 77))
    assert c["method"] == "order.cancel" and c["params"]["origClientOrderId"] == "mm-9-10"
    assert verify_hmac(c["params"])
    for frame, method in ((e.open_orders(4, 0, 5), "openOrders.status"),
                          (e.account(5, 6), "account.status")):
        d = json.loads(frame)
        assert d["method"] == method and verify_hmac(d["params"])


def test_session_mode_is_unsigned_but_timestamped():
    e = bn.BinanceEncoder(INSTS, demo_keys.DEMO_API_KEY, bn.AUTH_SESSION)
    p = json.loads(e.place(1, 0, SIDE_BUY, 1, b"mm-1-1", 100, 100, 1234))["params"]
    assert "apiKey" not in p and "signature" not in p and p["timestamp"] == 1234


def test_ed25519_per_request_signature_verifies():
    e = enc(bn.AUTH_ED25519)
    p = json.loads(e.place(1, 0, SIDE_BUY, 1, b"mm-1-1", 100, 100, 1234))["params"]
    pub = demo_ed25519_key().public_key()
    assert sim_auth.verify_ed25519(pub, sim_auth.signature_payload(p), p["signature"])


def test_positive_exponents_render_trailing_zeros():
    p = json.loads(enc().place(1, 2, SIDE_BUY, 1, b"x-1-1", 7, 3, 1))["params"]
    assert (p["price"], p["quantity"]) == ("70", "300")
    assert verify_hmac(p)


@given(st.integers(1, 10**15), st.integers(-10, 3))  # 0 is never a valid price or qty
def test_decimal_slot_matches_format_fixed(mantissa, exp):
    slot = bn.decimal_slot(exp)
    assert (slot.fmt % divmod(mantissa, bn.scale_of(exp))).decode() == format_fixed(mantissa, exp)
    assert wire.parse_fixed(format_fixed(mantissa, exp), exp) == mantissa


def test_parse_fixed_refuses_excess_precision():
    assert wire.parse_fixed("0.01000000", -5) == 1000
    assert wire.parse_fixed("60000.12000000", -2) == 6000012
    try:
        wire.parse_fixed("0.000001", -5)
    except ValueError:
        pass
    else:
        raise AssertionError("excess precision accepted")


def test_redact_hides_key_and_signature():
    frame = enc().place(1, 0, SIDE_BUY, 1, b"mm-1-1", 100, 100, 1234)
    out = redact(frame)
    assert demo_keys.DEMO_API_KEY.encode() not in out
    assert json.loads(out)["params"]["signature"] == "***"
    assert json.loads(out)["params"]["price"] == "1.00"


def test_execution_report_corpus_decodes(corpus):
    wrapped = json.loads((corpus / "binance/nautilus/ws_spot_execution_report_trade.json").read_bytes())
    er = wire.EXECUTION_REPORT.decode(json.dumps(wrapped["data"]).encode())
    assert (er.x, er.X, er.l, er.L, er.z, er.i) == \
        ("TRADE", "PARTIALLY_FILLED", "0.50000000", "2499.50000000", "0.50000000", 1234567890)
    frame = wire.FRAME.decode((corpus / "binance/nautilus/execution_report_wrapped.json").read_bytes())
    assert frame.subscriptionId == 0
    assert wire.EXECUTION_REPORT.decode(frame.event).c == "mUvoqJxFIILMdfAW5iGSOW"
    canceled = json.loads((corpus / "binance/nautilus/ws_spot_execution_report_canceled.json").read_bytes())
    assert wire.EXECUTION_REPORT.decode(json.dumps(canceled["data"]).encode()).x == "CANCELED"
