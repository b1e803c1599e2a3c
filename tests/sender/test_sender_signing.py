"""Signatures against the venue documentation's published examples (PROTOCOLS.md section 3),
built with the sender's own templates from the order fields."""
import base64
import json

import pytest

from engine import demo_keys
from engine.instruments import Instrument
from engine.sender.venues.binance import encoding as bn
from engine.sender.keys import demo_ed25519_key
from engine.sender.signing import Ed25519Signer, HmacSigner, sign_tail
from engine.sender.venues.bybit.encoding import bybit_auth_signature
from engine.sim import auth as sim_auth

KEY = demo_keys.DEMO_API_KEY          # the docs' example apiKey
SECRET = demo_keys.DEMO_API_SECRET    # the docs' example secretKey
HMAC = HmacSigner(SECRET.encode())


def tpl(method, params):
    return bn.Template(method, params, bn.AUTH_HMAC, KEY, hmac_signer=HMAC)


def px(value: int, exp: int) -> tuple:
    return divmod(value, bn.scale_of(exp))


ORDER_ROWS = [
    # row, symbol, side, price mantissa/exp, qty mantissa/exp, recvWindow, timestamp, signature
    (1, "BTCUSDT", "SELL", 5200000, -2, 1000000, -8, 100, 1645423376532,
     "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"),
    (2, "１２３４５６", "BUY", 10000000, -8, 100000000, -8, 5000, 1645423376532,
     "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"),
    (3, "BTCUSDT", "SELL", 2341610000000, -8, 847000, -8, None, 1660801715431,
     "15af09e41c36f3cc61378c2fbe2c33719a03dd5eba8d0f9206fbda44de717c88"),
]


@pytest.mark.parametrize("row", ORDER_ROWS, ids=[f"row{r[0]}" for r in ORDER_ROWS])
def test_order_place_signature_matches_docs(row):
    _, symbol, side, price, pexp, qty, qexp, recv, ts, expected = row
    params = {"symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": "GTC",
              "price": bn.decimal_slot(pexp), "quantity": bn.decimal_slot(qexp),
              "timestamp": bn.INT}
    if recv is not None:
        params["recvWindow"] = recv
    t = tpl("order.place", params)
    args = (*px(price, pexp), *px(qty, qexp), ts)
    frame = json.loads(t.render(1, args))
    assert frame["params"]["signature"] == expected
    assert HMAC.sign(t.payload(args)).decode() == expected


def test_cancel_and_cancel_all_through_the_encoder_match_docs():
    inst = (Instrument(symbol="BTCUSDT", tick_size="0.01", lot_size="0.00001"),)
    enc = bn.BinanceEncoder(inst, KEY, bn.AUTH_HMAC, HMAC, recv_window_ms=None)
    cancel = json.loads(enc.cancel(5, 0, b"4d96324ff9d44481926157", 1660801715830))
    assert cancel["params"]["signature"] == \
        "33d5b721f278ae17a52f004a82a6f68a70c68e7dd6776ed0be77a455ab855282"      # row 4
    cancel_all = json.loads(enc.cancel_all(6, 0, 1660805557200))
    assert cancel_all["params"]["signature"] == \
        "773f01b6e3c2c9e0c1d217bc043ce383c1ddd6f0e25f8d6070f2b66a6ceaf3a5"      # row 6
    assert cancel_all["method"] == "openOrders.cancelAll" and cancel_all["id"] == 6


def test_cancel_replace_and_logon_signatures_match_docs():
    t = tpl("order.cancelReplace", {
        "symbol": "BTCUSDT", "cancelReplaceMode": "ALLOW_FAILURE",
        "cancelOrigClientOrderId": bn.BYTES, "side": "SELL", "type": "LIMIT",
        "timeInForce": "GTC", "price": bn.decimal_slot(-8), "quantity": bn.decimal_slot(-8),
        "timestamp": bn.INT})
    args = (b"4d96324ff9d44481926157", *px(2341610000000, -8), *px(847000, -8), 1660813156900)
    assert json.loads(t.render(2, args))["params"]["signature"] == \
        "7028fdc187868754d25e42c37ccfa5ba2bab1d180ad55d4c3a7e2de643943dc5"      # row 5
    logon = tpl("session.logon", {"timestamp": bn.INT})
    assert json.loads(logon.render(3, (1649729878532,)))["params"]["signature"] == \
        "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"      # row 7


def test_keyed_prefix_equals_whole_payload_hmac():
    mac = HMAC.keyed(b"apiKey=abc&")
    assert sign_tail(mac, b"symbol=X") == HMAC.sign(b"apiKey=abc&symbol=X")
    assert sign_tail(mac, b"symbol=Y") != sign_tail(mac, b"symbol=X")   # the copy is fresh


DEMO_LOGON_PAYLOAD = f"apiKey={KEY}&timestamp=1649729878532".encode()
# Computed once with `cryptography` from the demo seed (Ed25519 signatures are deterministic).
DEMO_LOGON_ED25519 = ("OIe2IwMR3NP+oRgf/Hbo4Wf1DQyOmGvT5NrO+vm69t5WJn7jxvFQvS6nRtYpyFgebeGilE89v0r"
                      "BSxL5N7EhCA==")


def test_ed25519_signature_is_stable_and_verifies():
    signer = Ed25519Signer(demo_ed25519_key())
    sig = signer.sign(DEMO_LOGON_PAYLOAD)
    assert sig.decode() == DEMO_LOGON_ED25519
    assert len(base64.b64decode(sig)) == 64
    pub = demo_ed25519_key().public_key()
    assert sim_auth.verify_ed25519(pub, DEMO_LOGON_PAYLOAD, sig.decode())
    assert not sim_auth.verify_ed25519(pub, DEMO_LOGON_PAYLOAD + b"1", sig.decode())


def test_logon_frame_is_ed25519_signed_over_sorted_params():
    signer = Ed25519Signer(demo_ed25519_key())
    frame = json.loads(bn.logon_frame(9, KEY, signer, 1649729878532))
    assert frame["method"] == "session.logon"
    assert frame["params"]["signature"] == DEMO_LOGON_ED25519
    payload = sim_auth.signature_payload(frame["params"])
    assert payload == DEMO_LOGON_PAYLOAD


def test_bybit_auth_signature_is_hmac_of_get_realtime_expires():
    import hashlib
    import hmac
    want = hmac.new(b"s3cr3t", b"GET/realtime1711010121452", hashlib.sha256).hexdigest()
    assert bybit_auth_signature(b"s3cr3t", 1711010121452) == want
