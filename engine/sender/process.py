"""The sender process: `run(cfg) -> exit status` (engine/exit_codes.py).

Event loop (uvloop when importable) with one order connection (two for a moment while it is
replaced, make-before-break). Sender's duties, one module each, mixed in so they share its
state: the order ring's intake and pacing (intake.py, the hot path), the watch duty's stop
checks and order truth (watch.py), pause and resume (pausing.py), connecting, replacing,
rolling over and reconciling (reconnect.py). Here: the state, the main task, the safety net.

Safety net: SIGTERM/SIGINT, the kill switch, a quoter or feed heartbeat older than
heartbeat_timeout_ms (once that role has been running), a venue ban (418) or a permanent
refusal stop intake, cancel every order of ours (by id; openOrders.cancelAll only with
sender.symbols_exclusive) and confirm with openOrders.status that none is left, then wait for
every request in flight and ask about every UNKNOWN order: "every order confirmed gone" only
when none of ours rests, nothing is in flight and nothing is unknown; else it says what is
unknown and exits EXIT_ORDERS_LEFT. Bounded by cancel_confirm_timeout_s and tried twice (the
second time on a fresh connection when the first could not confirm). A sender that never
reached the venue sent nothing and says so.
"""
from __future__ import annotations

import asyncio
import collections
import os

import msgspec

from engine import agent, proc
from engine.exit_codes import EXIT_OK, EXIT_ORDERS_LEFT
from engine.records import ALL_INSTRUMENTS, FILL_RESUME
from engine.ring.table import FILLS, JOURNAL, ORDERS
from engine.sender import keys
from engine.sender.errors import GatewayError
from engine.sender.fills import FillWriter
from engine.sender.gateway import HISTOGRAMS
from engine.sender.intake import Intake
from engine.sender.order_state import COUNTS as ORDER_COUNTS
from engine.sender.pausing import QUOTING, Pausing
from engine.sender.reconnect import ConnectionLife
from engine.sender.venues import make_gateway
from engine.sender.watch import PROCESS_COUNTERS, Watch
from engine.state_dir import resolve_tag


def _log(msg: str) -> None:
    proc.log("sender", msg)


class Sender(Intake, Watch, Pausing, ConnectionLife):
    """One sender run: owns the gateway, the rings' ends and the safety net."""

    def __init__(self, cfg, life: agent.Life, fills: FillWriter, creds):
        self.cfg = cfg
        self.life = life                    # the process life around us (engine/agent.py)
        self.first_life = life.first_life   # no earlier sender of this instance could have
                                            # left orders resting
        self.scfg = cfg.sender
        self.ctl = ctl = life.control
        self.orders = orders = life.rings[ORDERS.name]
        self.fills = fills
        self.gw = make_gateway(cfg, creds, fills, life.histograms, self.scfg.dry_run,
                               ctl.kill_addr)
        self.counters = life.counters
        self.counter_names = list(self.gw.counts) + list(ORDER_COUNTS) + list(PROCESS_COUNTERS)
        self._intents = orders.reader()
        self._stop = asyncio.Event()        # binds to the loop at its first wait
        self.stop_reason = ""
        self.exit_on_stop = EXIT_OK         # what a confirmed stop exits with
        self._drain_scheduled = False
        self._reconnecting = False
        self._reconnect_task: asyncio.Task | None = None
        self._reconciling = False
        self._rolling = False
        self._replacing = False
        self._held: collections.deque = collections.deque()   # paced new orders, FIFO
        self._syncing = False
        self.synced_quoter = 0              # the fills consumer (quoter) last told POSITION+RESUME
        self._last_reconcile = 0.0
        self._last_request_ns = 0
        self._seen_running: set[str] = set()
        self.reconnects = 0
        self.bells = 0
        self.left_open = 0
        self.url = self.scfg.url
        self.pause_state = QUOTING
        self._pause_task: asyncio.Task | None = None

    def request_stop(self, reason: str) -> None:
        if self._stop is not None and not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    # ---------------------------------------------------------------- main
    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self._spin = self.scfg.idle == "busy-spin"
        self._bell = None
        if not self._spin:
            self._bell = self.orders.doorbell()
            loop.add_reader(self._bell.fileno(), self._on_bell)
        spin_task = loop.create_task(self._spin_loop()) if self._spin else None
        watch = loop.create_task(self._watch())
        if self.scfg.dry_run:
            _log("dry run: signing and encoding only; nothing is sent, no fills are reported")
            self.gw.ready = True
            self.fills.emit(FILL_RESUME, 0, ALL_INSTRUMENTS)
            self.life.running()
            self._drain()
        try:
            await self._stop.wait()
        finally:
            if self._bell is not None:
                loop.remove_reader(self._bell.fileno())
            for t in (spin_task, watch, self._reconnect_task, self._pause_task):
                if t is not None:
                    t.cancel()
        _log(f"stopping: {self.stop_reason}")
        self.life.stopping()
        rc = await self.cancel_all_and_confirm()
        self._publish_counters()
        return self.exit_on_stop if rc == EXIT_OK else rc

    async def cancel_all_and_confirm(self) -> int:
        """The safety net: cancel everything of ours, confirm nothing is open (bounded, tried
        twice). A sender that never reached the venue sent nothing: nothing can rest."""
        if self.scfg.dry_run:
            return EXIT_OK
        gw = self.gw
        gw.mark_stop_cancels()
        if not gw.connected_ever and gw.counts["orders_sent"] == 0 and self.first_life:
            _log("never connected: nothing was sent")
            return EXIT_OK
        loop = asyncio.get_running_loop()
        budget = self.scfg.cancel_confirm_timeout_s
        left = -1
        for attempt in (1, 2):
            deadline = loop.time() + budget
            try:
                if not gw.connected or (attempt == 2 and left < 0):   # lost, stopped mid-logon,
                    gw.close()                                         # or dead: a fresh one
                    await asyncio.wait_for(gw.connect(self.url), budget)
                left = await self._cancel_and_settle(deadline)
            except (GatewayError, asyncio.TimeoutError) as e:
                _log(f"cancel-all attempt {attempt}: {e}")
                left = -1
            self.left_open = left
            if left == 0:
                _log(f"{gw.canceled_at_stop} orders canceled at stop; every order confirmed "
                     f"gone (none resting, nothing in flight, nothing unknown)")
                return EXIT_OK
            _log(f"cancel-all attempt {attempt}: "
                 f"{'could not confirm' if left < 0 else f'{left} orders still open'}; "
                 f"{gw.unknown_summary()}")
        _log(f"ORDERS MAY BE RESTING: cancel not confirmed ({gw.unknown_summary()}); check the "
             f"venue by hand")
        return EXIT_ORDERS_LEFT

    async def _cancel_and_settle(self, deadline: float) -> int:
        """Cancel everything of ours until the venue lists none, then settle requests in
        flight and UNKNOWN orders (one that turns out resting is canceled in the next round).
        Returns 0 only when all three hold; else the orders seen resting, or -1 (unknown)."""
        gw = self.gw
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            left = await gw.cancel_everything(deadline)
            if left != 0:
                return left
            gw.doubt_live_orders()          # none of ours listed: what the table holds is asked
            if not await gw.settle(deadline):
                return -1
            if not gw.orders.live:
                return 0
        return -1


def run(cfg) -> int:
    """Run the sender until stopped; returns the exit status (engine/exit_codes.py)."""
    return agent.run(SenderAgent, cfg)


class SenderAgent(agent.Agent):
    """The process around one Sender: its configuration, credentials and ring ends."""
    role = "sender"
    histograms = HISTOGRAMS

    def __init__(self, cfg):
        scfg = cfg.sender
        scfg.validate(cfg.instruments)
        self.url = url = scfg.url
        if not url and not scfg.dry_run:
            raise ValueError("sender.url: empty; start a simulator (mm sim) and set "
                             "MM_ORDER_URL or sender.url")
        self.creds = keys.load(scfg, url or "ws://127.0.0.1/", os.environ)
        self.cfg = msgspec.structs.replace(cfg, tag=resolve_tag(cfg))
        self.core = scfg.core
        self.idle = scfg.idle or "park"
        self.rings = (agent.RingEnd(ORDERS, "consumer", spins=scfg.idle == "busy-spin"),
                      agent.RingEnd(FILLS, "producer"))
        if cfg.journal.enabled and not scfg.dry_run:
            self.rings += (agent.RingEnd(JOURNAL, "producer"),)
        self.sender: Sender | None = None
        self._early_stop = ""               # a signal before the Sender existed

    def on_start(self, life: agent.Life) -> None:
        cfg, scfg, creds = self.cfg, self.cfg.sender, self.creds
        fills_ring = life.rings[FILLS.name]
        fills_ring.set_wake_target(life.control.wake_addr("quoter"))  # it waits on md + fills
        _log(f"venue {scfg.venue} url {self.url or '(dry run)'} auth {creds.auth} "
             f"({creds.auth_reason}) tag {cfg.tag} "
             f"credentials from {creds.source}; idle {self.idle}")
        fill_writer = FillWriter(fills_ring)
        if JOURNAL.name in life.rings:
            from engine.journal.writer import JournalWriter
            fill_writer.journal = JournalWriter(life.rings[JOURNAL.name])
        self.sender = Sender(cfg, life, fill_writer, creds)
        self.counters = self.sender.counter_names
        if self._early_stop:
            self.sender.request_stop(self._early_stop)

    def request_stop(self, reason: str) -> None:
        if self.sender is None:
            self._early_stop = self._early_stop or reason
        else:
            self.sender.request_stop(reason)

    async def run(self) -> int:
        return await self.sender.main()

