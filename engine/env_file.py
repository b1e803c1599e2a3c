"""The instance's env file (/etc/mm/<instance>.env), read as systemd's EnvironmentFile= reads it,
so `mm doctor` and `mm layout` judge the same settings the units start with.

Lines are KEY=VALUE; blank lines and lines starting with # or ; are skipped; one pair of
surrounding quotes is removed. The file is read, never sourced. Only MM_* keys are applied.
"""
from __future__ import annotations

import os
from pathlib import Path


def sibling(config: str | None) -> Path | None:
    """/etc/mm/blue.env for --config /etc/mm/blue.toml, when that file exists."""
    if not config:
        return None
    path = Path(config).with_suffix(".env")
    return path if path.is_file() else None


def parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


def apply(path: Path, environ=os.environ) -> list[str]:
    """Set the file's MM_* settings in `environ` (they win, as they do for the units); returns
    the names set. OSError when the file cannot be read."""
    values = {k: v for k, v in parse(Path(path).read_text()).items() if k.startswith("MM_")}
    environ.update(values)
    return sorted(values)
