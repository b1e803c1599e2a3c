"""The sender under systemd: credentials from $CREDENTIALS_DIRECTORY (LoadCredential= of
deploy/mm-sender@.service), whose files systemd shares with the unit's user through an ACL
(the ACL mask shows as group bits in the mode)."""
import os

import pytest

from engine.sender import keys
from engine.sender.config import SenderConfig


def test_unit_credentials_are_found_and_their_acl_mode_accepted(tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    creds.mkdir()
    for name, text in (("mm_api_key", "KEY123\n"), ("mm_api_secret", "TOPSECRET\n")):
        (creds / name).write_text(text)
        os.chmod(creds / name, 0o440)          # r--r----- : owner + ACL mask, as systemd leaves it
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    env = {"CREDENTIALS_DIRECTORY": str(creds), "MM_API_KEY": "ignored"}
    c = keys.load(SenderConfig(auth="hmac"), "wss://x.example/ws", env=env)
    assert (c.api_key.reveal(), c.secret.reveal(), c.source) == ("KEY123", b"TOPSECRET", "files")

    # The same mode outside the credentials directory is still refused.
    other = tmp_path / "secret"
    other.write_text("S")
    os.chmod(other, 0o440)
    with pytest.raises(keys.CredentialError, match="0440"):
        keys.load(SenderConfig(auth="hmac", api_secret_file=str(other)), "wss://x.example/ws",
                  env={"MM_API_KEY": "K"})


def test_without_credentials_directory_nothing_changes():
    cfg = SenderConfig(auth="hmac")
    assert keys.with_systemd_credentials(cfg, {}) is cfg
