"""Credential loading: sources, permission check, loopback-only demo keys, nothing printable."""
import os

import pytest

from engine import demo_keys
from engine.sender import keys
from engine.sender.config import SenderConfig


def write(tmp_path, name, text, mode=0o600):
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, mode)
    return str(p)


def test_files_are_read_and_secrets_never_print(tmp_path):
    cfg = SenderConfig(auth="hmac", api_key_file=write(tmp_path, "k", "KEY123\n"),
                       api_secret_file=write(tmp_path, "s", "TOPSECRET\n"))
    c = keys.load(cfg, "wss://ws-api.binance.com/ws-api/v3", env={})
    assert c.api_key.reveal() == "KEY123" and c.secret.reveal() == b"TOPSECRET"
    assert c.source == "files"
    for text in (repr(c), str(c.secret), repr(c.secret), f"{c.api_key}"):
        assert "TOPSECRET" not in text and "KEY123" not in text


def test_group_readable_file_is_refused_without_leaking(tmp_path):
    cfg = SenderConfig(auth="hmac", api_key_file=write(tmp_path, "k", "KEY123"),
                       api_secret_file=write(tmp_path, "s", "TOPSECRET", 0o640))
    with pytest.raises(keys.CredentialError) as e:
        keys.load(cfg, "wss://x.example/ws", env={})
    assert "api_secret_file" in str(e.value) and "0640" in str(e.value)
    assert "TOPSECRET" not in str(e.value)


def test_env_credentials(tmp_path):
    c = keys.load(SenderConfig(auth="hmac"), "wss://x.example/ws",
                  env={"MM_API_KEY": "K", "MM_API_SECRET": "S"})
    assert (c.api_key.reveal(), c.secret.reveal(), c.source) == ("K", b"S", "env")


def test_demo_keys_only_on_loopback():
    c = keys.load(SenderConfig(), "ws://127.0.0.1:9000/ws-api/v3", env={})
    assert c.source == "demo" and c.api_key.reveal() == demo_keys.DEMO_API_KEY
    assert c.ed25519_private is not None
    with pytest.raises(keys.CredentialError, match="loopback"):
        keys.load(SenderConfig(), "wss://ws-api.binance.com/ws-api/v3", env={})


def test_incomplete_credentials_name_what_is_missing():
    with pytest.raises(keys.CredentialError, match="Ed25519"):
        keys.load(SenderConfig(auth="ed25519"), "wss://x.example/ws",
                  env={"MM_API_KEY": "K", "MM_API_SECRET": "S"})


def test_ed25519_pem_file(tmp_path):
    from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                              PrivateFormat)
    pem = keys.demo_ed25519_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = write(tmp_path, "ed.pem", pem.decode())
    c = keys.load(SenderConfig(ed25519_key_file=path), "wss://x.example/ws",
                  env={"MM_API_KEY": "K"})
    assert c.ed25519_private.public_key().public_bytes_raw() == \
        keys.demo_ed25519_key().public_key().public_bytes_raw()


def test_config_validation_names_the_field():
    from engine.config import EngineConfig
    for bad, field in ((dict(auth="rsa"), "sender.auth"), (dict(recv_window_ms=0), "sender.recv_window_ms"),
                       (dict(idle="yield"), "sender.idle"), (dict(url="http://x"), "sender.url"),
                       (dict(reconnect_cap_s=0.01), "sender.reconnect_cap_s")):
        with pytest.raises(ValueError, match=field):
            SenderConfig(**bad).validate(EngineConfig())
