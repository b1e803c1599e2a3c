"""Request signatures: HMAC-SHA256 (hex) and Ed25519 (base64), as the venues document them.

HMAC cost is dominated by key set-up and hashing the constant head of each payload, so both are
done once: `HmacSigner.keyed(prefix)` returns an HMAC state that has absorbed the key and a
template's constant prefix; per order the hot path copies that state and hashes only the
variable tail (`sign_tail`). Ed25519 costs ~28 us per signature here: use it for session.logon
only, after which Binance takes requests unsigned.
"""
from __future__ import annotations

import base64
import hmac
from hashlib import sha256

try:  # OpenSSL's HMAC object: copy() is one C call (hmac.HMAC.copy is Python code)
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # pragma: no cover - CPython builds without OpenSSL
    _hmac_new = None


class HmacSigner:
    """HMAC-SHA256 with hex output, keyed once."""
    __slots__ = ("_base", "_secret")

    def __init__(self, secret: bytes):
        self._secret = secret
        self._base = (_hmac_new(secret, digestmod="sha256") if _hmac_new is not None
                      else hmac.new(secret, digestmod=sha256))

    def key(self) -> bytes:
        """The secret, for the C signer (engine._order keeps only the keyed midstates)."""
        return self._secret

    def __repr__(self) -> str:
        return "HmacSigner(***)"

    def keyed(self, prefix: bytes = b""):
        """An HMAC state that has absorbed the key and `prefix` (copy it, never update it)."""
        mac = self._base.copy()
        mac.update(prefix)
        return mac

    def sign(self, payload: bytes) -> bytes:
        """Hex signature of a whole payload (set-up path)."""
        mac = self._base.copy()
        mac.update(payload)
        return mac.hexdigest().encode()


def sign_tail(keyed, tail: bytes) -> bytes:
    """Hex HMAC of keyed-prefix + tail (hot path: one copy, one update, one digest)."""
    mac = keyed.copy()
    mac.update(tail)
    return mac.hexdigest().encode()


class Ed25519Signer:
    """Ed25519 with base64 output (Binance's encoding)."""
    __slots__ = ("_key",)

    def __init__(self, private_key):
        self._key = private_key

    def sign(self, payload: bytes) -> bytes:
        return base64.b64encode(self._key.sign(payload))

    def public_bytes(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
