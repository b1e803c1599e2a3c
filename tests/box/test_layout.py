"""Core layout from the machine's topology: `mm layout` on fake /sys trees of other boxes and on
this one. Every spinning stage must own an isolated physical core when the box has enough of
them; the feed sits on the remaining isolated core or a housekeeping core, never on or beside a
spinner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakebox import make_sys

from engine import config
from engine.box import topology
from engine.box.topology import Topology
from engine.box.core_layout import SPIN, apply_env, choose

ROOT = Path(__file__).resolve().parents[2]
VENUE = "[feed]\nurl = 'wss://md.example'\n[sender]\nurl = 'wss://api.example'\n"


def mm_layout(*args: str) -> dict:
    """`mm layout` as a user runs it; the parsed JSON."""
    out = subprocess.run([sys.executable, "-m", "engine.cli", "layout", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_sound(doc: dict, topo: Topology) -> None:
    """The done-when rule, checked on the printed layout."""
    roles = ("feed", "quoter", "sender")
    assert all(set(doc[r]) >= {"core", "idle"} for r in roles)
    assert isinstance(doc["warnings"], list)
    spinners = [r for r in roles if doc[r]["idle"] == SPIN]
    assert "sender" in spinners, doc                      # every box here has >= 2 cores
    feed_core = doc["feed"]["core"]                       # a feed spins alone on an isolated core
    assert (doc["feed"]["idle"] == SPIN) == (
        topo.threads(feed_core) <= topo.isolated and not any(
            doc[o]["core"] in topo.threads(feed_core) for o in doc
            if o in ("quoter", "sender", "sim"))), doc
    isolated_cores = topo.physical_cores(topo.isolated)
    for r in spinners:
        core = doc[r]["core"]
        assert core >= 0
        if len(isolated_cores) >= len(spinners):
            assert core in topo.isolated, (r, doc)
        neighbours = [o for o in doc if o in (*roles, "sim") and o != r
                      and doc[o]["core"] in topo.threads(core)]
        assert neighbours == [], (r, neighbours, doc)
    spin_threads = {s for r in spinners if r != "feed" for s in topo.threads(doc[r]["core"])}
    feed = doc["feed"]["core"]
    assert feed >= 0 and feed not in spin_threads, doc
    spare_isolated = [c for c in topo.isolated if c not in spin_threads
                      and not any(doc[r]["core"] == c for r in roles)]
    if spare_isolated and feed not in topo.isolated:
        pytest.fail(f"feed on housekeeping CPU {feed} while isolated {spare_isolated} is free")


def test_eight_cpus_isolcpus_2_4(tmp_path):
    root = make_sys(tmp_path, 8, isolated="2-4")
    doc = mm_layout("--sys-root", str(root))
    assert_sound(doc, topology.read(root))
    hot = {doc["sender"]["core"], doc["quoter"]["core"], doc["feed"]["core"]}
    assert hot == {2, 3, 4}                     # all three stages on the isolated cores
    assert doc["feed"]["idle"] == SPIN          # alone on isolated CPU 2: it polls its sockets
    assert doc["isolated"] == "2-4" and doc["housekeeping"] == "0-1,5-7"
    assert doc["sim"]["core"] in (0, 1)         # no venue configured: the simulator runs too


def test_sixteen_cpus_two_sockets_smt(tmp_path):
    # Socket 0: cores 0-3 (threads 0-3 and 8-11); socket 1: cores 4-7 (threads 4-7, 12-15).
    smt = [[c, c + 8] for c in range(8)]
    nodes = [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]]
    root = make_sys(tmp_path / "a", 16, isolated="2-3,10-11", siblings=smt, nodes=nodes)
    topo = topology.read(root)
    assert topo.threads(2) == {2, 10} and topo.node[12] == 1
    doc = mm_layout("--sys-root", str(root))
    assert_sound(doc, topo)
    assert {doc["sender"]["core"], doc["quoter"]["core"]} == {2, 3}   # first threads
    assert {doc["sender"]["siblings"][0], doc["quoter"]["siblings"][0]} == {10, 11}
    assert doc["feed"]["node"] == 0             # the rings stay on the spinners' socket
    assert doc["warnings"] == []                # siblings isolated and idle: nothing to say

    # The NIC on socket 1, whose cores are isolated: every stage moves there.
    root = make_sys(tmp_path / "b", 16, isolated="4-7,12-15", siblings=smt, nodes=nodes,
                    nics={"ens1f0": 1})
    doc = mm_layout("--sys-root", str(root), "--nic", "ens1f0", "--config",
                    str(_write(tmp_path, VENUE)))
    assert_sound(doc, topology.read(root))
    assert {doc[r]["node"] for r in ("feed", "quoter", "sender")} == {1}
    assert "sim" not in doc                     # a venue is configured: no simulator


def test_half_isolated_smt_core_is_warned(tmp_path):
    smt = [[c, c + 4] for c in range(4)]
    root = make_sys(tmp_path, 8, isolated="2-3", siblings=smt)
    lay = choose(config.load(env={}), with_sim=False, sys_root=str(root))
    assert lay.cores["sender"] in (2, 3) and lay.cores["quoter"] in (2, 3)
    assert any("SMT sibling CPU 6 is not isolated" in w or "SMT sibling CPU 7 is not isolated" in w
               for w in lay.warnings), lay.warnings
    assert lay.cores["feed"] not in (2, 3, 6, 7)


def test_four_cpus_one_to_three_isolated_never_spins_on_cpu0(tmp_path):
    root = make_sys(tmp_path, 4, isolated="1-3")
    doc = mm_layout("--sys-root", str(root))
    assert_sound(doc, topology.read(root))
    assert doc["quoter"]["idle"] == SPIN and doc["quoter"]["core"] != 0
    assert doc["sender"]["core"] != 0 and doc["feed"]["core"] != 0


def test_this_box(tmp_path):
    # deployed against a venue elsewhere (with the simulator beside it on two cores, nothing
    # spins: test_two_core_box_keeps_one_spinner)
    doc = mm_layout("--config", str(_write(tmp_path, VENUE)))
    assert_sound(doc, topology.read("/"))


def test_two_core_box_keeps_one_spinner(tmp_path):
    root = make_sys(tmp_path, 2)
    lay = choose(config.load(env={}), with_sim=False, sys_root=str(root))
    assert lay.idle == {"quoter": "park", "sender": SPIN, "feed": "epoll"}
    assert lay.cores == {"feed": 0, "quoter": 0, "sender": 1}
    # the embedded simulator goes beside the parked stages, never beside the spinner
    lay = choose(config.load(env={}), with_sim=True, sys_root=str(root))
    assert lay.idle == {"quoter": "park", "sender": SPIN, "feed": "epoll"}
    assert lay.cores == {"feed": 0, "quoter": 0, "sender": 1, "sim": 0}
    # beside a loopback venue (counted as taking a core) nothing spins; parked, the sender
    # still has a core of its own and the quoter shares the feed's
    lay = choose(config.load(env={}), with_sim=False, sys_root=str(root), venue_local=True)
    assert lay.idle["sender"] == "park"
    assert lay.cores == {"feed": 0, "quoter": 0, "sender": 1}


def test_explicit_isolated_core_outside_our_affinity_is_accepted(tmp_path):
    # Under isolcpus the kernel leaves isolated CPUs out of every default affinity: a core the
    # config names must be accepted when it is isolated, refused when it is neither.
    mine = sorted(os.sched_getaffinity(0))
    extra = max(mine) + 1
    topo = Topology(tuple(mine) + (extra,), frozenset({extra}))
    p = _write(tmp_path, f"[sender]\ncore = {extra}\nidle = 'busy-spin'\n")
    lay = choose(config.load(p, env={}), with_sim=False, topology=topo)
    assert lay.cores["sender"] == extra
    topo = Topology(tuple(mine) + (extra,), frozenset())
    with pytest.raises(ValueError, match=f"sender.core: CPU {extra} is neither isolated"):
        choose(config.load(p, env={}), with_sim=False, topology=topo)


def test_offline_core_names_the_field(tmp_path):
    root = make_sys(tmp_path, 4, isolated="1-3")
    p = _write(tmp_path, "[quoter]\ncore = 9\n")
    out = subprocess.run([sys.executable, "-m", "engine.cli", "layout", "--sys-root", str(root),
                          "--config", str(p)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "quoter.core: CPU 9 is not online here (online: 0-3)" in out.stderr


def test_cpu_lists_round_trip():
    assert topology.parse_cpu_list("0-2,5,8-9\n") == {0, 1, 2, 5, 8, 9}
    assert topology.format_cpu_list({9, 0, 1, 2, 5, 8}) == "0-2,5,8-9"
    assert topology.parse_cpu_list("(null)") == set()
    with pytest.raises(ValueError, match="not a CPU list"):
        topology.parse_cpu_list("2-x")


def test_drop_in_environment_sets_core_and_idle():
    cfg = config.load(env={})
    cfg = apply_env(cfg, "quoter", {"MM_CORE": "3", "MM_IDLE": "busy-spin"})
    assert (cfg.quoter.core, cfg.quoter.idle) == (3, SPIN)
    assert apply_env(cfg, "feed", {"MM_CORE": "2"}).feed.core == 2
    with pytest.raises(ValueError, match="MM_IDLE"):
        apply_env(cfg, "feed", {"MM_IDLE": "park"})
    assert apply_env(cfg, "feed", {"MM_IDLE": "busy-spin"}).feed.idle == SPIN
    with pytest.raises(ValueError, match="MM_CORE"):
        apply_env(cfg, "sender", {"MM_CORE": "two"})


def _write(tmp_path, text):
    p = tmp_path / "mm.toml"
    p.write_text(text)
    return p
