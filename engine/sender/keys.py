"""API credentials: loaded once at start, held only in this process's private memory.

Sources, first found wins: files named in [sender] (api_key_file, api_secret_file,
ed25519_key_file), then the unit's systemd credentials (with_systemd_credentials), then the
environment (MM_API_KEY, MM_API_SECRET, MM_ED25519_KEY_FILE), then
the public demo credentials of engine.demo_keys - and those only when the order URL points at
a loopback host (the local simulator). Credential files readable by group or others are refused.
Secrets are wrapped in `Secret`, whose repr and str are "***", so a stray log line, f-string or
traceback shows nothing; error messages name files and variables, never values.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from urllib.parse import urlsplit

from engine import demo_keys


class CredentialError(ValueError):
    """Credentials are missing or unsafe; the message names the source, never the value."""


class Secret:
    """A secret string: `reveal()` gives it to the signer; printing it shows ***."""
    __slots__ = ("_value",)

    def __init__(self, value: str | bytes):
        self._value = value

    def reveal(self):
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __reduce__(self):  # never pickled into another process or a file
        raise TypeError("Secret cannot be pickled")


class Credentials:
    """What the sender needs to authenticate. `api_key` is public-ish but still never logged."""
    __slots__ = ("api_key", "secret", "ed25519_private", "source")

    def __init__(self, api_key: Secret, secret: Secret | None, ed25519_private, source: str):
        self.api_key = api_key
        self.secret = secret                  # HMAC secret (bytes), or None
        self.ed25519_private = ed25519_private  # cryptography Ed25519PrivateKey, or None
        self.source = source                  # "files", "env", "demo" (for the start-up log)

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r}, api_key=***, secret=***)"


def is_loopback(url: str) -> bool:
    """True when the URL's host is 127.0.0.0/8, ::1 or localhost."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_secret_file(path: str, what: str) -> str:
    """The stripped content of a credential file that only its owner can read."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CredentialError(f"{what}: cannot read {path} ({e.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not is_systemd_credential(path):
        raise CredentialError(f"{what}: {path} is accessible by group or others "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
    with open(path, "rb") as f:
        text = f.read().decode().strip()
    if not text:
        raise CredentialError(f"{what}: {path} is empty")
    return text


def load_ed25519_key(path: str):
    """An Ed25519 private key from an unencrypted PEM file (owner-only)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = read_secret_file(path, "sender.ed25519_key_file").encode()
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CredentialError(f"sender.ed25519_key_file: {path} is not an unencrypted PEM "
                              f"private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CredentialError(f"sender.ed25519_key_file: {path} holds a "
                              f"{type(key).__name__}, not an Ed25519 key")
    return key


def demo_ed25519_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(demo_keys.DEMO_ED25519_SEED)


# systemd credentials of the sender's unit (deploy/mm-sender@.service:
# LoadCredential=mm:/etc/mm/credentials/<instance>), one file per config field.
SYSTEMD_CREDENTIALS = {"api_key_file": "mm_api_key", "api_secret_file": "mm_api_secret",
                       "ed25519_key_file": "mm_ed25519_key"}


def with_systemd_credentials(sender_cfg, env):
    """`sender_cfg` with its empty *_file fields pointed at the unit's systemd credentials
    ($CREDENTIALS_DIRECTORY/mm_api_key, mm_api_secret, mm_ed25519_key) that exist."""
    import msgspec

    where = env.get("CREDENTIALS_DIRECTORY", "")
    found = {f: os.path.join(where, name) for f, name in SYSTEMD_CREDENTIALS.items()
             if where and not getattr(sender_cfg, f) and os.path.isfile(os.path.join(where, name))}
    return msgspec.structs.replace(sender_cfg, **found) if found else sender_cfg


def is_systemd_credential(path: str) -> bool:
    """True for a file in this process's $CREDENTIALS_DIRECTORY: systemd makes those readable by
    the unit's user alone, with an ACL whose mask shows up as group bits in the mode."""
    where = os.environ.get("CREDENTIALS_DIRECTORY", "")
    return bool(where) and os.path.dirname(os.path.realpath(path)) == os.path.realpath(where)


def load(sender_cfg, url: str, env=None) -> Credentials:
    """Credentials for `sender_cfg.auth` against `url`; CredentialError when none or unsafe."""
    env = os.environ if env is None else env
    sender_cfg = with_systemd_credentials(sender_cfg, env)
    need_ed = sender_cfg.venue == "binance" and sender_cfg.auth == "ed25519"
    key = secret = None
    source = ""
    if sender_cfg.api_key_file:
        key = read_secret_file(sender_cfg.api_key_file, "sender.api_key_file")
        source = "files"
    elif env.get("MM_API_KEY"):
        key, source = env["MM_API_KEY"].strip(), "env"
    if sender_cfg.api_secret_file:
        secret = read_secret_file(sender_cfg.api_secret_file, "sender.api_secret_file")
    elif env.get("MM_API_SECRET"):
        secret = env["MM_API_SECRET"].strip()
    ed = None
    ed_file = sender_cfg.ed25519_key_file or env.get("MM_ED25519_KEY_FILE", "")
    if need_ed and ed_file:
        ed = load_ed25519_key(ed_file)
    have_all = key is not None and (ed is not None if need_ed else secret is not None)
    if not have_all:
        if key is not None or secret is not None or ed is not None:
            missing = ("an Ed25519 key (sender.ed25519_key_file or MM_ED25519_KEY_FILE)"
                       if need_ed and ed is None else
                       "the API key (sender.api_key_file or MM_API_KEY)" if key is None else
                       "the API secret (sender.api_secret_file or MM_API_SECRET)")
            raise CredentialError(f"sender credentials incomplete: missing {missing}")
        if not is_loopback(url):
            raise CredentialError(
                f"sender: no API credentials (set MM_API_KEY/MM_API_SECRET, or "
                f"sender.api_key_file/api_secret_file{', ed25519_key_file' if need_ed else ''}); "
                f"the demo keys are only used against a loopback simulator, not {urlsplit(url).hostname}")
        key, secret, source = demo_keys.DEMO_API_KEY, demo_keys.DEMO_API_SECRET, "demo"
        ed = demo_ed25519_key() if need_ed else None
    return Credentials(Secret(key), Secret(secret.encode()) if secret is not None else None, ed, source)
