"""Request signatures, verified exactly as Binance Spot does, and the keys the simulator trusts.

Payload: every request parameter except `signature` (apiKey included), sorted by name, joined as
`name=value` with `&`, UTF-8, no percent-encoding. HMAC-SHA256 signatures are hex (any case);
Ed25519 signatures (session.logon) are base64 of the signature over the same payload.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from engine import demo_keys


def param_text(value) -> str:
    """How a JSON parameter value appears in the signed payload (bools as JSON spells them)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def signature_payload(params: dict) -> bytes:
    """The byte string the client signs: params (minus `signature`) sorted by name."""
    return "&".join(f"{k}={param_text(params[k])}" for k in sorted(params)
                    if k != "signature").encode()


def hmac_hex(secret: str, payload: bytes) -> str:
    """Hex HMAC-SHA256 of `payload` keyed by `secret` (what a client sends as `signature`)."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def verify_hmac(secret: str, payload: bytes, signature: str) -> bool:
    """True when `signature` (hex, any case) is the HMAC-SHA256 of `payload`; constant time."""
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(hmac_hex(secret, payload), signature.lower())


def verify_ed25519(public_key: Ed25519PublicKey, payload: bytes, signature: str) -> bool:
    """True when `signature` (base64) is an Ed25519 signature of `payload` by `public_key`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, payload)
        return True
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False


def sign_ed25519(private_key: Ed25519PrivateKey, payload: bytes) -> str:
    """Base64 Ed25519 signature (client side; used by tests and the demo)."""
    return base64.b64encode(private_key.sign(payload)).decode()


def demo_ed25519_private_key() -> Ed25519PrivateKey:
    """The demo Ed25519 key (public seed engine.demo_keys.DEMO_ED25519_SEED)."""
    return Ed25519PrivateKey.from_private_bytes(demo_keys.DEMO_ED25519_SEED)


class Credentials:
    """The one account the simulator serves: its API key, HMAC secret and Ed25519 public keys.

    From the environment (MM_API_KEY / MM_API_SECRET, MM_ED25519_PUBLIC_KEY_FILE) or the demo
    pair. The secret is kept in a private attribute and never appears in a repr.
    """

    __slots__ = ("api_key", "_secret", "ed25519_keys")

    def __init__(self, api_key: str, secret: str, ed25519_keys: list[Ed25519PublicKey]):
        self.api_key = api_key
        self._secret = secret
        self.ed25519_keys = ed25519_keys

    @classmethod
    def from_env(cls, env=None) -> "Credentials":
        env = os.environ if env is None else env
        api_key = env.get("MM_API_KEY") or demo_keys.DEMO_API_KEY
        secret = env.get("MM_API_SECRET") or demo_keys.DEMO_API_SECRET
        keys = [demo_ed25519_private_key().public_key()]
        pem = env.get("MM_ED25519_PUBLIC_KEY_FILE")
        if pem:
            key = load_pem_public_key(Path(pem).read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"MM_ED25519_PUBLIC_KEY_FILE {pem}: not an Ed25519 public key")
            keys.insert(0, key)
        return cls(api_key, secret, keys)

    def check_hmac(self, payload: bytes, signature) -> bool:
        return verify_hmac(self._secret, payload, signature)

    def check_ed25519(self, payload: bytes, signature) -> bool:
        return any(verify_ed25519(k, payload, signature) for k in self.ed25519_keys)

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"
