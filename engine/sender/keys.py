"""API credentials: loaded once at start, held only in this process's private memory.

Sources, first found wins: files named in [sender] (api_key_file, api_secret_file,
ed25519_key_file), then the unit's systemd credentials (with_systemd_credentials), then the
environment (MM_API_KEY, MM_API_SECRET, MM_ED25519_KEY_FILE), then
the public demo credentials of engine.demo_keys - and those only when the order URL points at
a loopback host (the local simulator). Credential files readable by group or others are refused.
The method follows what the user holds (`plan`): sender.auth / MM_AUTH = auto picks an Ed25519
session when an Ed25519 key is configured, HMAC when an API secret is; every error names the
setting or variable to change.
Secrets are wrapped in `Secret`, whose repr and str are "***", so a stray log line, f-string or
traceback shows nothing; error messages name files and variables, never values.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from typing import NamedTuple
from urllib.parse import urlsplit

from engine import demo_keys
from engine.sender.config import AUTHS
from engine.sender.venues import venue


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
    """What the sender needs to authenticate. `api_key` is public-ish but still never logged.
    `auth` is the resolved method ("hmac" or "ed25519"), `auth_reason` why it was chosen."""
    __slots__ = ("api_key", "secret", "ed25519_private", "source", "auth", "auth_reason")

    def __init__(self, api_key: Secret, secret: Secret | None, ed25519_private, source: str,
                 auth: str = "hmac", auth_reason: str = ""):
        self.api_key = api_key
        self.secret = secret                  # HMAC secret (bytes), or None
        self.ed25519_private = ed25519_private  # cryptography Ed25519PrivateKey, or None
        self.source = source                  # "files", "env", "demo" (for the start-up log)
        self.auth = auth                      # "hmac" | "ed25519" (what the gateway speaks)
        self.auth_reason = auth_reason        # e.g. "auto: an Ed25519 key is configured"

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r}, auth={self.auth!r}, api_key=***, secret=***)"


def is_loopback(url: str) -> bool:
    """True when the URL's host is 127.0.0.0/8, ::1 or localhost."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_secret_file(path: str, what: str) -> None:
    """Refuse a credential file that is missing or that group or others may access."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CredentialError(f"{what}: cannot read {path} ({e.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not is_systemd_credential(path):
        raise CredentialError(f"{what}: {path} is accessible by group or others "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")


def read_secret_file(path: str, what: str) -> str:
    """The stripped content of a credential file that only its owner can read."""
    _check_secret_file(path, what)
    with open(path, "rb") as f:
        text = f.read().decode().strip()
    if not text:
        raise CredentialError(f"{what}: {path} is empty")
    return text


def load_ed25519_key(path: str, what: str = "sender.ed25519_key_file"):
    """An Ed25519 private key from an unencrypted PEM file (owner-only); `what` names the
    setting or variable that gave the path, for the error messages."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = read_secret_file(path, what).encode()
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CredentialError(f"{what}: {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CredentialError(f"{what}: {path} holds a {type(key).__name__}, not an Ed25519 key")
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


_FIX_HMAC = "set MM_API_SECRET or sender.api_secret_file"
_FIX_ED = "set MM_ED25519_KEY_FILE or sender.ed25519_key_file"


class Source(NamedTuple):
    """Where one credential comes from: a file (`path`, named by the `setting`) or an
    environment variable (`setting` is its name). Never the secret itself, so a Plan can be
    printed."""
    setting: str
    path: str = ""


class Plan(NamedTuple):
    """The credentials a sender will load, decided without reading any secret."""
    auth: str                     # "hmac" | "ed25519"
    reason: str                   # why, for the start-up log
    key: Source | None            # None with `demo`
    secret: Source | None
    ed25519: Source | None
    demo: bool                    # the simulator's public demo keys (loopback only)


def _source(file_setting: str, path: str, env, var: str, var_is_path: bool = False):
    if path:
        return Source(file_setting, path=path)
    if env.get(var, "").strip():
        return Source(var, path=env[var].strip() if var_is_path else "")
    return None


def plan(sender_cfg, url: str, env=None) -> Plan:
    """Decide the authentication method and the source of every credential.

    `sender.auth` (or MM_AUTH, which overrides it) is "auto" by default: an Ed25519 session when
    an Ed25519 key is configured, HMAC-signed requests when an API secret is; a venue that
    takes HMAC only (its OrderVenue.auths, engine/sender/venues: Bybit) always HMAC.
    With nothing configured and a loopback order URL, the simulator's demo keys. Raises
    CredentialError naming the setting or variable to change; no secret is read here.
    """
    env = os.environ if env is None else env
    sender_cfg = with_systemd_credentials(sender_cfg, env)
    asked, asked_by = sender_cfg.auth, "sender.auth"
    if env.get("MM_AUTH", "").strip():
        asked, asked_by = env["MM_AUTH"].strip().lower(), "MM_AUTH"
    if asked not in AUTHS:
        raise CredentialError(f"{asked_by}: expected one of {', '.join(AUTHS)}, "
                              f"got {asked!r}")
    key = _source("sender.api_key_file", sender_cfg.api_key_file, env, "MM_API_KEY")
    secret = _source("sender.api_secret_file", sender_cfg.api_secret_file, env, "MM_API_SECRET")
    ed = _source("sender.ed25519_key_file", sender_cfg.ed25519_key_file, env,
                 "MM_ED25519_KEY_FILE", var_is_path=True)
    where = venue(sender_cfg.venue)
    hmac_only = "ed25519" not in where.auths
    if hmac_only:
        if asked == "ed25519":
            raise CredentialError(f"auth=ed25519 ({asked_by}): {where.title}'s trade API signs "
                                  f"with HMAC only; use MM_AUTH=hmac (or auto) with "
                                  f"MM_API_SECRET")
        ed = None                 # never loaded: the venue has no use for it
    if key is None and secret is None and ed is None:
        if not is_loopback(url):
            raise CredentialError(
                f"sender: no API credentials for {urlsplit(url).hostname}: set MM_API_KEY with "
                f"MM_API_SECRET (HMAC) or with MM_ED25519_KEY_FILE (Ed25519 session), or the "
                f"sender.api_key_file / api_secret_file / ed25519_key_file settings; the demo "
                f"keys are only used against a loopback simulator")
        auth = "hmac" if hmac_only or asked == "hmac" else "ed25519"
        return Plan(auth, f"{asked}: no credentials configured, the simulator's demo keys",
                    None, None, None, demo=True)
    if key is None:
        raise CredentialError("sender credentials incomplete: missing the API key: set "
                              "MM_API_KEY or sender.api_key_file")
    if hmac_only:
        auth, reason = "hmac", f"{where.title} signs with HMAC"
    elif asked == "auto":
        if ed is not None:
            auth, reason = "ed25519", f"auto: an Ed25519 key is configured ({ed.setting})"
        elif secret is not None:
            auth, reason = "hmac", f"auto: an API secret ({secret.setting}) and no Ed25519 key"
        else:
            raise CredentialError(
                f"sender credentials incomplete: {key.setting} is set but there is neither an "
                f"API secret (for HMAC: {_FIX_HMAC}) nor an Ed25519 key (for an Ed25519 "
                f"session: {_FIX_ED})")
    else:
        auth, reason = asked, f"{asked_by}={asked}"
    if auth == "ed25519" and ed is None:
        raise CredentialError(f"auth=ed25519 ({asked_by}) needs an Ed25519 key: {_FIX_ED}, or "
                              f"use MM_AUTH=hmac with MM_API_SECRET")
    if auth == "hmac" and secret is None:
        raise CredentialError(f"auth=hmac ({where.title if hmac_only else asked_by}) needs "
                              f"the API secret: {_FIX_HMAC}"
                              + ("" if hmac_only else ", or use MM_AUTH=ed25519 with "
                                 "MM_ED25519_KEY_FILE"))
    return Plan(auth, reason, key, secret, ed, demo=False)


def check(sender_cfg, url: str, env=None) -> Plan:
    """`plan`, plus the file checks `load` will make (present, owner-only), without reading
    any secret: what the supervisor runs before it starts anything."""
    p = plan(sender_cfg, url, env)
    for src in (p.key, p.secret, p.ed25519):
        if src is not None and src.path:
            _check_secret_file(src.path, src.setting)
    return p


def _read(src: Source, env) -> str:
    return read_secret_file(src.path, src.setting) if src.path else env[src.setting].strip()


def load(sender_cfg, url: str, env=None) -> Credentials:
    """Credentials for `sender_cfg` against `url` (see `plan`); CredentialError when none or
    unsafe. The resolved method is `Credentials.auth`."""
    env = os.environ if env is None else env
    p = plan(sender_cfg, url, env)
    if p.demo:
        ed = demo_ed25519_key() if p.auth == "ed25519" else None
        return Credentials(Secret(demo_keys.DEMO_API_KEY),
                           Secret(demo_keys.DEMO_API_SECRET.encode()), ed, "demo",
                           p.auth, p.reason)
    key = _read(p.key, env)
    secret = _read(p.secret, env) if p.secret is not None else None
    ed = load_ed25519_key(p.ed25519.path, p.ed25519.setting) if p.ed25519 is not None else None
    from_files = any(s is not None and s.setting.startswith("sender.")
                     for s in (p.key, p.secret, p.ed25519))
    from_env = any(s is not None and s.setting.startswith("MM_")
                   for s in (p.key, p.secret, p.ed25519))
    source = "files and env" if from_files and from_env else "files" if from_files else "env"
    return Credentials(Secret(key), Secret(secret.encode()) if secret is not None else None, ed,
                       source, p.auth, p.reason)
