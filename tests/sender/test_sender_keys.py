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


# ---------------------------------------------------------------- the method: auto, forced, refused
REMOTE = "wss://ws-api.binance.com/ws-api/v3"


def _ed_pem(tmp_path, mode=0o600):
    from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                              PrivateFormat)
    pem = keys.demo_ed25519_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return write(tmp_path, "ed.pem", pem.decode(), mode)


def test_auto_picks_ed25519_when_a_key_is_configured(tmp_path):
    env = {"MM_API_KEY": "K", "MM_API_SECRET": "S", "MM_ED25519_KEY_FILE": _ed_pem(tmp_path)}
    c = keys.load(SenderConfig(), REMOTE, env=env)
    assert c.auth == "ed25519" and c.ed25519_private is not None
    assert "MM_ED25519_KEY_FILE" in c.auth_reason


def test_auto_picks_hmac_with_only_a_secret():
    c = keys.load(SenderConfig(), REMOTE, env={"MM_API_KEY": "K", "MM_API_SECRET": "S"})
    assert (c.auth, c.secret.reveal(), c.source) == ("hmac", b"S", "env")
    assert c.ed25519_private is None and "API secret" in c.auth_reason


def test_mm_auth_forces_the_method_over_the_config(tmp_path):
    env = {"MM_API_KEY": "K", "MM_API_SECRET": "S", "MM_ED25519_KEY_FILE": _ed_pem(tmp_path)}
    assert keys.load(SenderConfig(), REMOTE, env={**env, "MM_AUTH": "hmac"}).auth == "hmac"
    assert keys.load(SenderConfig(auth="hmac"), REMOTE,
                     env={**env, "MM_AUTH": "ed25519"}).auth == "ed25519"
    assert keys.load(SenderConfig(auth="ed25519"), REMOTE, env=env).auth == "ed25519"


def test_forced_ed25519_without_a_key_says_what_to_set():
    with pytest.raises(keys.CredentialError) as e:
        keys.load(SenderConfig(), REMOTE,
                  env={"MM_API_KEY": "K", "MM_API_SECRET": "S", "MM_AUTH": "ed25519"})
    msg = str(e.value)
    assert "auth=ed25519 (MM_AUTH) needs an Ed25519 key" in msg
    assert "MM_ED25519_KEY_FILE" in msg and "sender.ed25519_key_file" in msg
    assert "MM_AUTH=hmac with MM_API_SECRET" in msg


def test_forced_hmac_without_a_secret_says_what_to_set(tmp_path):
    with pytest.raises(keys.CredentialError, match=r"auth=hmac \(sender\.auth\) needs the API "
                                                   r"secret: set MM_API_SECRET or "
                                                   r"sender\.api_secret_file"):
        keys.load(SenderConfig(auth="hmac"), REMOTE,
                  env={"MM_API_KEY": "K", "MM_ED25519_KEY_FILE": _ed_pem(tmp_path)})


@pytest.mark.parametrize("env, needle", [
    ({"MM_API_KEY": "K"}, "neither an API secret"),              # key alone: which half is missing
    ({"MM_API_SECRET": "S"}, "set MM_API_KEY or sender.api_key_file"),
    ({"MM_API_KEY": "K", "MM_API_SECRET": "S", "MM_AUTH": "rsa"},
     "MM_AUTH: expected one of auto, hmac, ed25519"),
    ({}, "no API credentials"),                                  # remote venue: no demo keys
])
def test_refused_credentials_name_the_setting(env, needle):
    with pytest.raises(keys.CredentialError, match=needle):
        keys.load(SenderConfig(), REMOTE, env=env)


def test_group_readable_key_files_are_refused_before_reading(tmp_path):
    env = {"MM_API_KEY": "K", "MM_ED25519_KEY_FILE": _ed_pem(tmp_path, 0o640)}
    with pytest.raises(keys.CredentialError, match="MM_ED25519_KEY_FILE: .*mode 0640.*chmod 600"):
        keys.check(SenderConfig(), REMOTE, env=env)        # the supervisor's check, no read
    with pytest.raises(keys.CredentialError, match="mode 0640"):
        keys.load(SenderConfig(), REMOTE, env=env)


def test_bybit_is_always_hmac():
    c = keys.load(SenderConfig(venue="bybit"), "wss://stream.bybit.com/v5/trade",
                  env={"MM_API_KEY": "K", "MM_API_SECRET": "S"})
    assert c.auth == "hmac"
    with pytest.raises(keys.CredentialError, match="Bybit's trade API signs with HMAC only"):
        keys.load(SenderConfig(venue="bybit"), "wss://stream.bybit.com/v5/trade",
                  env={"MM_API_KEY": "K", "MM_API_SECRET": "S", "MM_AUTH": "ed25519"})


def test_demo_keys_on_loopback_keep_the_ed25519_session_unless_hmac_is_asked():
    assert keys.load(SenderConfig(), "ws://127.0.0.1:9/ws-api/v3", env={}).auth == "ed25519"
    c = keys.load(SenderConfig(), "ws://127.0.0.1:9/ws-api/v3", env={"MM_AUTH": "hmac"})
    assert (c.auth, c.source) == ("hmac", "demo")


def test_a_plan_prints_no_secret():
    p = keys.check(SenderConfig(), REMOTE,
                   env={"MM_API_KEY": "KEY123", "MM_API_SECRET": "TOPSECRET"})
    assert "TOPSECRET" not in repr(p) and "KEY123" not in repr(p)
