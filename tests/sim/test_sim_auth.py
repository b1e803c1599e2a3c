"""Signature verification against Binance's published examples (PROTOCOLS.md §3)."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from engine.demo_keys import DEMO_API_KEY, DEMO_API_SECRET
from engine.sim import auth

K = DEMO_API_KEY
# (payload exactly as published, expected hex signature) — rows 1..7 of PROTOCOLS.md §3.
DOC_VECTORS = [
    (f"apiKey={K}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT"
     f"&timeInForce=GTC&timestamp=1645423376532&type=LIMIT",
     "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"),
    (f"apiKey={K}&price=0.10000000&quantity=1.00000000&recvWindow=5000&side=BUY"
     f"&symbol=１２３４５６&timeInForce=GTC&timestamp=1645423376532&type=LIMIT",
     "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"),
    (f"apiKey={K}&price=23416.10000000&quantity=0.00847000&side=SELL&symbol=BTCUSDT"
     f"&timeInForce=GTC&timestamp=1660801715431&type=LIMIT",
     "15af09e41c36f3cc61378c2fbe2c33719a03dd5eba8d0f9206fbda44de717c88"),
    (f"apiKey={K}&origClientOrderId=4d96324ff9d44481926157&symbol=BTCUSDT"
     f"&timestamp=1660801715830",
     "33d5b721f278ae17a52f004a82a6f68a70c68e7dd6776ed0be77a455ab855282"),
    (f"apiKey={K}&cancelOrigClientOrderId=4d96324ff9d44481926157&cancelReplaceMode=ALLOW_FAILURE"
     f"&price=23416.10000000&quantity=0.00847000&side=SELL&symbol=BTCUSDT&timeInForce=GTC"
     f"&timestamp=1660813156900&type=LIMIT",
     "7028fdc187868754d25e42c37ccfa5ba2bab1d180ad55d4c3a7e2de643943dc5"),
    (f"apiKey={K}&symbol=BTCUSDT&timestamp=1660805557200",
     "773f01b6e3c2c9e0c1d217bc043ce383c1ddd6f0e25f8d6070f2b66a6ceaf3a5"),
    (f"apiKey={K}&timestamp=1649729878532",
     "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"),
]


def _params(payload: str) -> dict:
    """Turn a published payload back into request params, shuffled (order must not matter)."""
    pairs = [kv.split("=", 1) for kv in payload.split("&")]
    return dict(reversed(pairs))


@pytest.mark.parametrize("payload,expected", DOC_VECTORS)
def test_docs_vectors_verify(payload, expected):
    params = _params(payload)
    params["signature"] = expected
    built = auth.signature_payload(params)
    assert built == payload.encode()                  # sorted, signature excluded, UTF-8
    creds = auth.Credentials.from_env({})
    assert creds.check_hmac(built, expected)
    assert creds.check_hmac(built, expected.upper())  # hex is case-insensitive


def test_wrong_secret_or_tampered_payload_refused():
    payload, expected = DOC_VECTORS[0]
    creds = auth.Credentials("k", "another-secret", [])
    assert not creds.check_hmac(payload.encode(), expected)
    demo = auth.Credentials.from_env({})
    assert not demo.check_hmac(payload.replace("52000.00", "52000.01").encode(), expected)
    assert not demo.check_hmac(payload.encode(), expected[:-1] + "0")
    assert not demo.check_hmac(payload.encode(), None)


def test_bool_params_are_spelled_as_json():
    assert auth.signature_payload({"b": True, "a": False, "c": 5}) == b"a=false&b=true&c=5"


def test_env_credentials_override_demo(tmp_path):
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "pub.pem"
    pem.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    creds = auth.Credentials.from_env({"MM_API_KEY": "mykey", "MM_API_SECRET": "s3cret",
                                       "MM_ED25519_PUBLIC_KEY_FILE": str(pem)})
    assert creds.api_key == "mykey"
    payload = b"apiKey=mykey&timestamp=1"
    assert creds.check_hmac(payload, auth.hmac_hex("s3cret", payload))
    assert not creds.check_hmac(payload, auth.hmac_hex(DEMO_API_SECRET, payload))
    assert creds.check_ed25519(payload, auth.sign_ed25519(key, payload))
    assert "s3cret" not in repr(creds) and "mykey" not in repr(creds)


def test_ed25519_demo_key_and_refusal():
    creds = auth.Credentials.from_env({})
    payload = f"apiKey={K}&timestamp=1649729878532".encode()
    good = auth.sign_ed25519(auth.demo_ed25519_private_key(), payload)
    assert creds.check_ed25519(payload, good)
    other = auth.sign_ed25519(Ed25519PrivateKey.generate(), payload)
    assert not creds.check_ed25519(payload, other)
    assert not creds.check_ed25519(payload + b"0", good)
    assert not creds.check_ed25519(payload, "not base64!")
