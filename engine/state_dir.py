"""What an instance keeps across restarts, in its state directory (set-up code only).

  <state_dir>/<instance>.tag    the instance's client-order-id tag, chosen once at random, so two
                                instances trading one account never take each other's orders
                                for their own, and a restarted instance still knows its own
  <state_dir>/<instance>.rate   the quoter's order-rate windows (engine/quoter/rate.py): the
                                venue's counters do not reset when we restart, so ours must not
  <state_dir>/<instance>.anchor the quoter's position references and drawdown peak and PnL
                                (engine/quoter/state.py): a restart must not re-centre its limits;
                                delete it (instance stopped) to take the venue's holdings afresh.
                                mm run deletes it when it starts the embedded simulator: that is
                                a new venue every run (a fresh account, a market from its start
                                price), so an earlier run's references and drawdown mean nothing

The directory is `state_dir` in the config, else $MM_STATE_DIR, else $STATE_DIRECTORY (set by
systemd's StateDirectory=), else ./state. Files are created mode 0600.
"""
from __future__ import annotations

import mmap
import os
import secrets
import string
from pathlib import Path

import numpy as np

TAG_CHARS = string.ascii_lowercase + string.digits
TAG_LEN = 6


def state_dir(cfg, env=None) -> Path:
    env = os.environ if env is None else env
    d = (getattr(cfg, "state_dir", "") or env.get("MM_STATE_DIR")
         or (env.get("STATE_DIRECTORY", "").split(":")[0]) or "state")
    return Path(d)


def anchor_path(cfg, env=None) -> Path:
    return state_dir(cfg, env) / f"{cfg.instance}.anchor"


def forget_anchor(cfg, env=None) -> bool:
    """Delete the instance's anchor (instance stopped); True when there was one."""
    try:
        anchor_path(cfg, env).unlink()
    except FileNotFoundError:
        return False
    return True


def resolve_tag(cfg, env=None) -> str:
    """The configured tag, or the instance's persisted random one (created on first use)."""
    if cfg.tag:
        return cfg.tag
    path = state_dir(cfg, env) / f"{cfg.instance}.tag"
    try:
        tag = path.read_text().strip()
        if tag and len(tag) <= 8 and tag.isalnum():
            return tag
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = "m" + "".join(secrets.choice(TAG_CHARS) for _ in range(TAG_LEN - 1))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, tag.encode() + b"\n")
    except Exception:
        os.close(fd)
        raise
    os.close(fd)
    return tag


class PersistentWords:
    """An int64 array backed by a file (mmap, MAP_SHARED): what the hot path writes survives
    the process. The file is created zeroed, mode 0600; `fresh` says it was just created (or
    had another size, and was reset)."""

    def __init__(self, path: Path, words: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        size = words * 8
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self.fresh = os.fstat(fd).st_size != size
            if self.fresh:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.array = np.frombuffer(self._map, np.int64)
        self.path = path

    def close(self) -> None:
        self.array = None
        try:
            self._map.close()
        except BufferError:      # a numpy view still refers to it; the OS unmaps at exit
            pass
