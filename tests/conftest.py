"""Shared fixtures: a unique engine instance per test whose segments are always removed, and
the path of the shared corpus (../shared, read at test time, never copied)."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from engine.ring.segment import list_segments, unlink

_counter = itertools.count()
SHARED = Path(os.environ.get("MM_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
CORPUS = SHARED / "corpus"


def _cleanup(instance: str) -> None:
    for name in list_segments(instance):
        unlink(name)


@pytest.fixture
def instance():
    """A fresh instance name; every segment it created is unlinked, even if the test fails."""
    name = f"t{os.getpid()}x{next(_counter)}"
    _cleanup(name)
    yield name
    _cleanup(name)


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory):
    """Engine processes keep their tag and rate windows in MM_STATE_DIR: a temporary one for
    the whole run (subprocesses inherit it), never ./state."""
    os.environ["MM_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield


@pytest.fixture(scope="session", autouse=True)
def _no_segments_left_behind():
    yield
    for name in list_segments():
        if name.startswith(f"/mm.t{os.getpid()}x"):
            unlink(name)


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (set MM_SHARED_DIR)")
    return CORPUS
