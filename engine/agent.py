"""One process life for every role, in the style of Agrona's Agent and AgentRunner.

An agent (the feed, the quoter, the sender, the journal agent) supplies its duty cycle; `run(make_agent, cfg)`
does everything around it, the same way for each:

  check     make_agent(cfg) checks the configuration: ValueError or OSError there exits
            EXIT_CONFIG with nothing registered (restarting will not help)
  signals   SIGTERM/SIGINT call agent.request_stop (main thread only: run() inside a thread of
            a larger program leaves the host's handlers alone); the old handlers come back
  register  the role's control slot: pid, core, the idle word (the strategy the agent really
            runs, engine/ring/idle.py IDLE_WORDS); a transient kill left by a previous life is
            cleared; counters zeroed
  pin       agent.core
  open      agent.histograms and agent.rings, every ring from the ring table
  start     agent.on_start(life): what it opens it hands to life.closing
  duty      agent.run(): a blocking call (the quoter's compiled loop; WorkAgent's plain loop over
            do_work(), the journal agent) or a coroutine on a fresh event loop (uvloop when
            installed: the feed, the sender) -> the exit status
  close     agent.on_close(), then everything above in reverse (one contextlib.ExitStack, so a
            failed start closes what was opened), the gc freeze undone, and the role's final
            state published from the exit status through FINAL_STATE, the one map

The agent calls life.running() once its hot path is warm (the heap frozen: no gc pause on the
hot path; RUNNING published), life.beat() from its own timer (the quoter beats from numba at
control.heartbeat_addr), and watches the kill switch itself: what a stop means is its own.
Nothing here runs per record or per loop turn.
"""
from __future__ import annotations

import asyncio
import gc
import inspect
import signal
import threading
import time
import traceback
from contextlib import ExitStack
from typing import Callable, NamedTuple, Sequence

from engine import proc
from engine.control import (KILL_REASONS, STATE_FAILED, STATE_RUNNING, STATE_STOPPED,
                            STATE_STOPPING, Control)
from engine.exit_codes import (EXIT_CONFIG, EXIT_ERROR, EXIT_KILLED, EXIT_OK, EXIT_ORDERS_LEFT,
                               EXIT_PEER_LOST)
from engine.latency.histogram import HistogramSet
from engine.ring.idle import IDLE_WORDS
from engine.ring.ring import Ring
from engine.ring.table import RingSpec

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# The state a role's slot is left in, from its exit status (engine/exit_codes.py): an orderly
# stop (asked for, the kill switch, a lost peer: every order known gone) is STOPPED; anything
# a person must look at (an error, a refused configuration, orders that may rest) is FAILED.
FINAL_STATE = {EXIT_OK: STATE_STOPPED, EXIT_KILLED: STATE_STOPPED, EXIT_PEER_LOST: STATE_STOPPED,
               EXIT_ERROR: STATE_FAILED, EXIT_CONFIG: STATE_FAILED,
               EXIT_ORDERS_LEFT: STATE_FAILED}


def final_state(status: int) -> int:
    """The control state a process that exits with `status` leaves behind."""
    return FINAL_STATE.get(status, STATE_FAILED)


class RingEnd(NamedTuple):
    """One end of a ring an agent uses: its row in the ring table and its side."""
    spec: RingSpec
    side: str                 # "producer" | "consumer"
    spins: bool = False       # a consumer that never parks (Ring.open: no fence for its producer)
    keep_unread: bool = False  # a consumer of history: read what a previous life left unread


class Agent:
    """What a role supplies to the runner. Set the attributes (class or instance) in __init__,
    which also checks the configuration (raise ValueError or OSError to refuse it)."""
    role = ""                              # its control slot (engine.control.ROLES)
    idle = "park"                          # how it waits: a key of IDLE_WORDS, the truth
    core = -1                              # pinned to it (-1: not pinned)
    histograms: Sequence[str] = ()
    rings: Sequence[RingEnd] = ()
    counters: Sequence[str] = ()           # their names, read after on_start (the sender's
                                           # depend on its venue's gateway)
    collects_garbage = False               # True: automatic gc stays on after the freeze (an
                                           # agent off the hot path that allocates per turn)

    def on_start(self, life: "Life") -> None:
        """Open what the duty cycle needs (hand each close to life.closing), warm up."""

    def run(self) -> int:                  # or `async def run(self) -> int`
        """The duty cycle, until stopped; returns the exit status (engine/exit_codes.py)."""
        raise NotImplementedError

    def request_stop(self, reason: str) -> None:
        """Stop soon (a signal; the runner calls it in the event loop when there is one)."""
        raise NotImplementedError

    def on_close(self) -> None:
        """Last words, whatever happened (on_start may have stopped half-way)."""


class WorkAgent(Agent):
    """An agent whose duty cycle is a plain Python loop (Agrona's `idle.idle(do_work())`):
    do_work() until a stop, sleeping linger_s after a turn that did nothing (idle "sleep": it
    never parks on a ring's futex, so its producer never has a sleeper to wake). Every beat_s:
    life.beat() and on_beat(). A stop (request_stop, or stop_due() turning true) drains: turns
    go on until one does nothing or drain_s have passed; finish() then gives the exit status.
    A subclass's on_start calls this one's (it keeps the life)."""
    idle = "sleep"
    linger_s = 0.02
    beat_s = 0.1
    drain_s = 5.0
    collects_garbage = True
    stop_asked = False
    life: "Life"

    def on_start(self, life: "Life") -> None:
        self.life = life

    def do_work(self) -> int:
        """One turn; returns how much it did (0: nothing, linger)."""
        raise NotImplementedError

    def on_beat(self) -> None:
        """Every beat_s (publish counters)."""

    def stop_due(self) -> bool:
        """A stop of the agent's own rule, looked at every turn."""
        return False

    def finish(self) -> int:
        """After the loop: last words of the duty cycle; returns the exit status."""
        return EXIT_OK

    def request_stop(self, reason: str) -> None:
        self.stop_asked = True

    def run(self) -> int:
        life = self.life
        life.running()
        last_beat = 0.0
        stopping_since = None
        while True:
            n = self.do_work()
            now = time.monotonic()
            if now - last_beat > self.beat_s:
                last_beat = now
                life.beat()
                self.on_beat()
            if self.stop_asked or self.stop_due():
                stopping_since = stopping_since or now
                if n == 0 or now - stopping_since > self.drain_s:
                    break
                continue
            if n == 0:
                time.sleep(self.linger_s)
        return self.finish()


class Life:
    """What the runner holds for one life of an agent, handed to on_start."""

    def __init__(self, role: str, control: Control, first_life: bool, histograms: HistogramSet,
                 rings: dict[str, Ring], closing: ExitStack, collects_garbage: bool = False):
        self.role = role
        self.collects_garbage = collects_garbage
        self.control = control
        self.first_life = first_life       # no process held this role's slot before us
        self.counters = control.counters(role)
        self.histograms = histograms
        self.rings = rings                 # ring name -> this process's end
        self.closing = closing             # the agent's own resources, closed in reverse

    def beat(self) -> None:
        """The heartbeat: the role's control slot and this side of every ring it holds."""
        self.control.beat(self.role)
        for ring in self.rings.values():
            ring.beat()

    def running(self) -> None:
        """Warm: freeze the heap (no gc pause on the hot path; an agent that collects garbage
        keeps collecting, but never walks the start-up heap again), beat, publish RUNNING."""
        proc.freeze_gc()
        if self.collects_garbage:
            gc.enable()
        self.beat()
        self.control.set_state(self.role, STATE_RUNNING)

    def stopping(self) -> None:
        self.control.set_state(self.role, STATE_STOPPING)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (picows runs on it), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(make_agent: Callable[..., Agent], cfg) -> int:
    """Build the agent from cfg and run one life of it; returns the exit status."""
    role = make_agent.role
    try:
        agent = make_agent(cfg)
    except (ValueError, OSError) as e:           # CredentialError is a ValueError
        proc.log(role, str(e))
        return EXIT_CONFIG
    status = EXIT_ERROR
    ctl = Control.open(cfg.instance)
    with ExitStack() as stack:
        stack.callback(ctl.close)
        stack.callback(lambda: ctl.deregister(role, final_state(status)))
        try:
            status = _live(agent, cfg, ctl, stack)
        except Exception as e:
            proc.log(role, f"failed: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-5)}")
            status = EXIT_ERROR
    return status


def _live(agent: Agent, cfg, ctl: Control, stack: ExitStack) -> int:
    role = agent.role
    loop = new_event_loop() if inspect.iscoroutinefunction(agent.run) else None
    if loop is not None:
        stack.callback(loop.close)
    _install_signals(agent, loop, stack)        # first: from here on a stop is an orderly one
    first_life = ctl.pid(role) == 0
    ctl.register(role, agent.core, IDLE_WORDS[agent.idle])
    ctl.counters(role)[:] = 0                   # no value of a previous life shows
    if cleared := ctl.clear_transient_kill():
        proc.log(role, f"cleared the transient kill reason of a previous life "
                       f"({KILL_REASONS.get(cleared, cleared)})")
    stack.callback(_thaw_gc, gc.isenabled())
    for w in proc.pin(role, agent.core):
        proc.log(role, w)
    hists = HistogramSet.create(cfg.instance, role, list(agent.histograms))
    stack.callback(hists.close)
    rings = {}
    for end in agent.rings:
        rings[end.spec.name] = ring = end.spec.open(cfg, end.side, spins=end.spins,
                                                    keep_unread=end.keep_unread)
        stack.callback(ring.close)
    life = Life(role, ctl, first_life, hists, rings, stack.enter_context(ExitStack()),
                agent.collects_garbage)
    stack.callback(agent.on_close)
    agent.on_start(life)
    ctl.name_counters(role, list(agent.counters))
    if loop is None:
        return agent.run()
    return loop.run_until_complete(agent.run())


def _install_signals(agent: Agent, loop, stack: ExitStack) -> None:
    """SIGTERM/SIGINT -> agent.request_stop, inside the event loop when there is one (its
    callbacks never see a signal land half-way); the previous handlers restored at the end."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum, frame) -> None:
        name = signal.Signals(signum).name
        if loop is None or loop.is_closed():
            agent.request_stop(name)
        else:
            loop.call_soon_threadsafe(agent.request_stop, name)
    for sig in STOP_SIGNALS:
        stack.callback(signal.signal, sig, signal.signal(sig, on_signal))


def _thaw_gc(was_enabled: bool) -> None:
    """Undo life.running()'s freeze: a run() inside a larger program (tests, tools) gives the
    heap back to the collector as it found it."""
    if gc.get_freeze_count():
        gc.unfreeze()
    if was_enabled:
        gc.enable()
