"""The journal file: created in WAL mode with its schema version; a corrupt file, a file of
another schema version or a missing one is refused with its path named (by the agent's opener
and by `mm journal`)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from engine.journal.schema import VERSION, JournalError, open_journal


def test_a_new_journal_is_wal_with_its_schema_version(tmp_path):
    path = tmp_path / "j.sqlite"
    con = open_journal(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"requests", "events", "fills", "decisions", "meta"} <= tables
    con.close()
    assert (path.stat().st_mode & 0o777) == 0o600
    open_journal(path).close()                    # opened again: same version, accepted


def test_a_corrupt_journal_is_refused_with_its_path(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    with pytest.raises(JournalError, match=str(path)):
        open_journal(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match=str(junk)):
        open_journal(junk)


def test_a_journal_of_another_schema_version_is_refused_with_its_path(tmp_path):
    older = tmp_path / "older.sqlite"
    con = sqlite3.connect(older)
    con.execute("CREATE TABLE fills (trade_id INTEGER)")      # a version-0 file: no version
    con.commit()
    con.close()
    with pytest.raises(JournalError, match=f"{older}.*schema version 0"):
        open_journal(older)
    newer = tmp_path / "newer.sqlite"
    open_journal(newer).close()
    con = sqlite3.connect(newer)
    con.execute("UPDATE schema_version SET version = ?", (VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(JournalError, match=f"{newer}.*schema version {VERSION + 1}"):
        open_journal(newer)


def test_mm_journal_names_the_path_it_cannot_read(tmp_path):
    bad = tmp_path / "x.journal.sqlite"
    bad.write_bytes(b"garbage" * 1000)
    cfg = tmp_path / "mm.toml"
    cfg.write_text(f'[journal]\npath = "{bad}"\n')
    out = subprocess.run([sys.executable, "-m", "engine.cli", "journal", "fills", "--config",
                          str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and str(bad) in out.stderr, out.stderr
    missing = tmp_path / "none.sqlite"
    cfg.write_text(f'[journal]\npath = "{missing}"\n')
    out = subprocess.run([sys.executable, "-m", "engine.cli", "journal", "pnl", "--config",
                          str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and str(missing) in out.stderr, out.stderr


def test_mm_run_refuses_a_corrupt_journal_before_starting_anything(tmp_path, instance):
    bad = tmp_path / "x.journal.sqlite"
    bad.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    cfg = tmp_path / "mm.toml"
    cfg.write_text(f'[journal]\npath = "{bad}"\n')
    out = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg),
                          "--instance", instance, "--duration", "5", "--run-dir",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert str(bad) in out.stdout + out.stderr and "nothing was started" in out.stdout + out.stderr
