"""Opening a journal file: create it (WAL), check its schema version, migrate an older one or
refuse it, refuse a corrupt one; every refusal names the path (JournalError)."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

VERSION = 1
SCHEMA = (Path(__file__).with_name("schema.sql")).read_text()
# version -> SQL that lifts a file from that version to the next (none yet: version 0 is a
# file with tables but no schema_version row, which is refused)
MIGRATIONS: dict[int, str] = {}


class JournalError(RuntimeError):
    """The journal file cannot be used; the message names it and says what to do."""


def journal_path(cfg, env=None) -> Path:
    """journal.path, else <state_dir>/<instance>.journal.sqlite."""
    from engine.state_dir import state_dir

    if cfg.journal.path:
        return Path(cfg.journal.path)
    return state_dir(cfg, env) / f"{cfg.instance}.journal.sqlite"


def open_journal(path: Path, create: bool = True, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the journal at `path`, schema checked (and created when `create` and the
    file is new). WAL mode; synchronous=NORMAL (a committed batch survives a process crash;
    the venue's trade list covers a power loss). JournalError: corrupt, not a journal, a
    version this build does not know, or missing while not `create`."""
    path = Path(path)
    if not path.exists() and (not create or readonly):
        raise JournalError(f"no journal at {path} (is the instance name right? the journal "
                           f"agent creates it on its first run)")
    if create and not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if readonly:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        else:
            con = sqlite3.connect(path, timeout=5.0)
            path.chmod(0o600)
        con.execute("PRAGMA busy_timeout=5000")
        ok = con.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise JournalError(f"journal {path} is corrupt ({ok}); move it aside (the venue's "
                               f"trade list refills its fills at the next start)")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as e:
        raise JournalError(f"journal {path} is corrupt or not a journal ({e}); move it aside "
                           f"(the venue's trade list refills its fills at the next start)") from None
    if not tables:
        if readonly:
            raise JournalError(f"journal {path} is empty")
        _create(con)
    else:
        version = _version(con, path, tables)
        if version != VERSION:
            if readonly or version > VERSION or version not in MIGRATIONS:
                raise JournalError(
                    f"journal {path} has schema version {version}, this build reads "
                    f"{VERSION}{' and cannot migrate it' if version not in MIGRATIONS else ''}; "
                    f"move it aside or use the engine version that wrote it")
            _migrate(con, version)
    if not readonly:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
    return con


def _version(con, path, tables) -> int:
    if "schema_version" not in tables:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    if row is None or row[0] is None:
        return 0
    return int(row[0])


def _create(con: sqlite3.Connection) -> None:
    with con:
        con.executescript(SCHEMA)
        con.execute("INSERT INTO schema_version VALUES (?, ?)", (VERSION, time.time_ns()))


def _migrate(con: sqlite3.Connection, version: int) -> None:
    with con:
        while version < VERSION:
            con.executescript(MIGRATIONS[version])
            version += 1
        con.execute("DELETE FROM schema_version")
        con.execute("INSERT INTO schema_version VALUES (?, ?)", (VERSION, time.time_ns()))
