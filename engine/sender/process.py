"""The sender process: `run(cfg) -> exit status` (engine/exit_codes.py).

Event loop (uvloop when importable) with one order connection (two for a moment while it is
replaced, make-before-break). The order ring is read without stalling the socket:
  park (default): the ring's doorbell socket is registered with the loop; when the ring is
      empty the sender arms the doorbell and the loop sleeps in epoll until either the venue
      sends a frame or the quoter publishes (the quoter's commit writes the doorbell). Costs a
      cross-core wake (25-45 us here) per burst, zero CPU when idle.
  busy-spin: the ring and the order socket are polled in C (Ring.spin_fd); the loop runs only
      when the socket has data or every SPIN_SLICE_NS for its timers: no wake-up latency, but
      it burns its core, so only on a core of its own.

The watch duty (every WATCH_S) keeps order truth: requests unanswered past their measured
deadline become UNKNOWN and the venue is asked about them; the order connection proves it is
alive (pings, unanswered streaks, silence: engine/sender/liveness.py) or is replaced
make-before-break and reconciled before quoting resumes; orders the venue shows live after we
concluded them gone are canceled until it confirms; in quiet moments open orders and balances
are compared with the venue (reconcile_interval_s, skipped while REQUEST_WEIGHT is tight); the
fill-ring backlog is flushed; the order connection is replaced before the venue's 24 h limit or
on its serverShutdown notice.

Pacing (the venue's ORDERS windows nearly spent): new orders and replaces wait their turn in a
bounded queue while cancels behind them go at once (the ORDERS limit does not count cancels);
a cancel or CANCEL_ALL for an order still waiting there refuses it locally instead.

Safety net: SIGTERM/SIGINT, the kill switch, a quoter or feed heartbeat older than
heartbeat_timeout_ms (once that role has been running), a venue ban (418) or a permanent
refusal stop intake, cancel every order of ours (by id; openOrders.cancelAll only with
sender.symbols_exclusive) and confirm with openOrders.status that none is left, then wait for
every request in flight and ask about every UNKNOWN order: "every order confirmed gone" only
when none of ours rests, nothing is in flight and nothing is unknown; else it says what is
unknown and exits EXIT_ORDERS_LEFT. Bounded by cancel_confirm_timeout_s and tried twice (the
second time on a fresh connection when the first could not confirm). A sender that never
reached the venue sent nothing and says so.

Pause (`mm kill`, the control segment's pause word): new orders and replaces are refused
locally (the quoter hears REJECT), every order of ours is canceled and confirmed gone, and the
process stays up: connection, reconciles, unknown-order questions go on. Resume (the word
cleared by `mm resume`): a full reconcile with the venue, which tells the quoter its positions
and RESUME; only then does it quote again.
"""
from __future__ import annotations

import asyncio
import collections
import os
import random
from time import perf_counter_ns

import msgspec

from engine import _native as C
from engine import agent, proc
from engine.control import (KILL_HEARTBEAT, KILL_REASONS, KILL_VENUE_BAN, KILL_VENUE_REFUSED,
                            LATCHED, PAUSE_REASONS)
from engine.exit_codes import EXIT_KILLED, EXIT_OK, EXIT_ORDERS_LEFT, EXIT_PEER_LOST
from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ACTION_RESET_SEEN,
                            ALL_INSTRUMENTS, FILL_RESUME, JE_KILL, JE_PAUSE, JE_RESUMED)
from engine.ring.table import FILLS, JOURNAL, ORDERS
from engine.sender import keys
from engine.sender.fills import LOCAL_BEFORE_RESET, LOCAL_RATE_LIMITED, FillWriter
from engine.sender.errors import GatewayError, VenueRefusal
from engine.sender.gateway import HISTOGRAMS
from engine.sender.order_state import COUNTS as ORDER_COUNTS
from engine.sender.venues import make_gateway
from engine.state_dir import resolve_tag

WATCH_S = 0.05                 # heartbeat / kill switch / counters / order-truth cadence
WATCHED_ROLES = ("quoter", "feed")
BATCH = 64                     # intents handled per ring read
SPIN_SLICE_NS = 200_000        # busy-spin: the longest stretch spent in C between loop turns
HELD_MAX = 256                 # new orders held back by pacing (cancels behind them still go)
OWED_RESUME_RETRY_S = 0.5      # a reconcile that left orders of our tag resting: retry this soon
PROCESS_COUNTERS = ("reconnects", "open_orders", "fills_written", "fills_delayed",
                    "fills_backlog", "clock_offset_ms", "rtt_us", "bells", "connected_ever",
                    "canceled_at_stop", "left_open", "in_flight", "deadline_us", "paused",
                    "journal_written", "journal_full")
# the `paused` counter: what `mm status` says about a pause
QUOTING, PAUSING, PAUSED_CONFIRMED, RESUMING = 0, 1, 2, 3


def _log(msg: str) -> None:
    proc.log("sender", msg)


class Sender:
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

    # ---------------------------------------------------------------- ring intake (hot)
    def _on_bell(self) -> None:
        sock = self._bell
        try:
            while True:
                sock.recv(64)
        except (BlockingIOError, InterruptedError):
            pass
        self.bells += 1
        self._drain()

    def _drain(self) -> int:
        """Handle every available intent; arm the doorbell when the ring is empty."""
        self._drain_scheduled = False
        ring, gw, take = self.orders, self.gw, self._intents.take
        done = 0
        while not self._stopping():
            if gw.pace_ns or self._held:
                n = self._drain_paced()
            else:
                n = 0
                gw.begin_batch()            # every frame of the batch: one write
                for fields in take(BATCH):     # (paused: refusal_reason refuses new orders)
                    gw.on_intent(fields, perf_counter_ns())
                    n += 1
                gw.end_batch()
            if n == 0:
                if self._held:              # the next paced order's turn
                    self._schedule_drain(max(gw.send_delay_ns(), 100_000) / 1e9)
                    if len(self._held) >= HELD_MAX:
                        return done         # full: the ring waits (cancels too, bounded)
                if self._spin or ring.arm_doorbell() == 0:
                    return done
                ring.disarm()
                continue
            done += n
        return done

    def _drain_paced(self) -> int:
        """Pacing: held orders whose turn came go out, then the ring is read: cancels go at
        once, new orders and replaces join the queue (or go, when it is empty and their turn
        has come). Returns how many intents it handled or queued."""
        gw, held = self.gw, self._held
        n = 0
        gw.begin_batch()
        while held and gw.send_delay_ns() <= 0:
            self._send_paced(held.popleft())
            n += 1
        room = HELD_MAX - len(held)
        if room > 0:
            for fields in self._intents.take(min(BATCH, room)):
                n += 1
                action = fields[4]
                if action == ACTION_NEW or action == ACTION_REPLACE:
                    if held or gw.send_delay_ns() > 0:
                        held.append(fields)
                    else:
                        self._send_paced(fields)
                else:
                    self._drop_held_for(fields)
                    gw.on_intent(fields, perf_counter_ns())
        gw.end_batch()
        return n

    def _send_paced(self, fields) -> None:
        gw = self.gw
        gw.on_intent(fields, perf_counter_ns())
        if gw.pace_ns:
            gw.next_send_ns = perf_counter_ns() + gw.pace_ns

    def _drop_held_for(self, fields) -> None:
        """A cancel (or CANCEL_ALL) for orders still held by pacing: they are refused locally
        (never sent), so the cancel cannot overtake what it cancels. RESET_SEEN: everything
        held was decided before the quoter read our RESET (its slots are gone): refused."""
        held = self._held
        if not held:
            return
        action, inst = fields[4], fields[3]
        code = LOCAL_RATE_LIMITED
        if action == ACTION_CANCEL:
            target = fields[2] or fields[1]
            drop = [f for f in held if f[1] == target]
        elif action == ACTION_CANCEL_ALL:
            drop = [f for f in held if inst == ALL_INSTRUMENTS or f[3] == inst]
        elif action == ACTION_RESET_SEEN:
            drop, code = list(held), LOCAL_BEFORE_RESET
        else:
            return
        for f in drop:
            held.remove(f)
            self.gw.refuse(f, code)

    def _schedule_drain(self, delay_s: float) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_later(delay_s, self._drain)

    async def _spin_loop(self) -> None:
        """busy-spin intake: poll the ring in C (Ring.spin_fd) and enter the event loop only
        when the order socket has data, or every SPIN_SLICE_NS for the loop's timers."""
        hdr, gw = self.orders.hdr, self.gw
        while not self._stopping():
            if C.spin_fd(hdr, gw.fd, SPIN_SLICE_NS) > 0:
                self._drain()
            else:
                await asyncio.sleep(0)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    # ---------------------------------------------------------------- watch duty
    async def _watch(self) -> None:
        timeout_ns = self.scfg.heartbeat_timeout_ms * 1_000_000
        loop = asyncio.get_running_loop()
        while not self._stopping():
            self.life.beat()
            self.fills.flush()
            self._publish_counters()
            if self._check_stop(timeout_ns):
                break
            self._check_pause(loop)
            if not self.scfg.dry_run:
                self._keep_order_truth(loop)
            await asyncio.sleep(WATCH_S)

    def _check_stop(self, timeout_ns: int) -> bool:
        ctl, gw = self.ctl, self.gw
        reason = ctl.killed()
        if reason:
            self.gw.journal.decision(JE_KILL, code=reason)
            self.exit_on_stop = EXIT_KILLED if reason in LATCHED else EXIT_OK
            self.request_stop(f"kill switch ({KILL_REASONS.get(reason, reason)})")
            return True
        for role in WATCHED_ROLES:
            if not ctl.pid(role):
                continue
            if ctl.role_info(role)["state"] == "running":
                self._seen_running.add(role)
            if role in self._seen_running and ctl.heartbeat_age_ns(role) > timeout_ns:
                ctl.kill(KILL_HEARTBEAT)
                self.exit_on_stop = EXIT_PEER_LOST
                self.request_stop(f"{role} heartbeat older than "
                                  f"{self.scfg.heartbeat_timeout_ms} ms")
                return True
        if gw.banned:
            ctl.kill(KILL_VENUE_BAN)
            self.exit_on_stop = EXIT_KILLED
            self.request_stop("venue ban (418)")
            return True
        if gw.refusal:
            ctl.kill(KILL_VENUE_REFUSED)
            self.exit_on_stop = EXIT_KILLED
            self.request_stop(gw.refusal)
            return True
        return False

    def _keep_order_truth(self, loop) -> None:
        gw = self.gw
        now_ns = perf_counter_ns()
        gw.periodic(loop.time())
        if not gw.connected and not self._reconnecting and not self._replacing:
            self._reconnecting = True
            self._reconnect_task = loop.create_task(self._reconnect())
            return
        gw.expire_requests(now_ns)
        gw.retire_old_connections(now_ns)
        if not (self._replacing or self._reconnecting or self._rolling):
            reason = gw.dead_reason(now_ns)
            if reason:
                self._replacing = True
                loop.create_task(self._replace_dead(reason, now_ns))
                return
        gw.ask_about_unknown_orders()
        gw.cancel_orphans()
        if gw.in_flight():
            self._last_request_ns = now_ns
        quiet = now_ns - self._last_request_ns > self.scfg.quiet_ms * 1e6
        every = self.scfg.reconcile_interval_s
        since = loop.time() - self._last_reconcile
        due = quiet and every and since > every and not gw.weight_tight()
        owed = gw.resume_owed and since > OWED_RESUME_RETRY_S
        if gw.ready and (due or owed) and not self._reconciling and not self._replacing:
            self._reconciling = True
            loop.create_task(self._reconcile_mid_session())
        quoter = self.fills.ring.consumer_pid()
        if (gw.ready and quoter and quoter != self.synced_quoter and not self._syncing
                and not self._reconciling):
            self._syncing = True
            loop.create_task(self._sync_new_quoter(quoter))
        if gw.ready and not self._rolling and (
                gw.shutdown_notice or loop.time() - gw.connected_at > self.scfg.rollover_after_s):
            self._rolling = True
            loop.create_task(self._roll_over())
        if gw.ready and gw.deferred_cancels and not gw.requests_blocked():
            gw.flush_deferred()
        if gw.ready and self.orders.available() and not self._drain_scheduled:
            self._drain()    # records that arrived while blocked or paced

    def _publish_counters(self) -> None:
        gw = self.gw
        values = dict(gw.counts)
        values.update(gw.orders.counts)
        values.update(reconnects=self.reconnects, open_orders=gw.orders.open_count(),
                      fills_written=self.fills.written, fills_delayed=self.fills.delayed,
                      fills_backlog=len(self.fills.backlog),
                      clock_offset_ms=gw.clock_offset_ms, rtt_us=gw.rtt_ns // 1000,
                      bells=self.bells, connected_ever=int(gw.connected_ever),
                      canceled_at_stop=gw.canceled_at_stop,
                      left_open=self.left_open, in_flight=gw.in_flight(),
                      deadline_us=gw.rtt.deadline_ns() // 1000, paused=self.pause_state,
                      journal_written=gw.journal.written, journal_full=gw.journal.full)
        c = self.counters
        for i, name in enumerate(self.counter_names):
            c[i] = values.get(name, 0)

    # ---------------------------------------------------------------- pause and resume
    def _check_pause(self, loop) -> None:
        """Follow the pause word: set -> cancel everything and confirm (the process stays up);
        cleared -> reconcile, then RESUME the quoter. One task at a time."""
        want = self.ctl.paused()
        busy = self._pause_task is not None and not self._pause_task.done()
        if want and not self.gw.paused:
            self.gw.paused = True            # refusal_reason refuses new orders from now on
            self.gw.journal.decision(JE_PAUSE, code=want)
            self.pause_state = PAUSING
            _log(f"pause ({PAUSE_REASONS.get(want, want)}): canceling every order; "
                 f"connections, book and order truth stay up")
            self._pause_task = loop.create_task(self._cancel_for_pause())
        elif not want and self.gw.paused and not busy:
            self.gw.paused = False
            self.pause_state = RESUMING
            self.gw.journal.decision(JE_RESUMED)
            self._pause_task = loop.create_task(self._resume())

    async def _cancel_for_pause(self) -> None:
        gw = self.gw
        loop = asyncio.get_running_loop()
        attempt = 0
        while self.gw.paused and not self._stopping():
            attempt += 1
            left = -1
            if gw.connected:
                try:
                    left = await gw.cancel_everything(loop.time()
                                                      + self.scfg.cancel_confirm_timeout_s)
                except (GatewayError, asyncio.TimeoutError) as e:
                    _log(f"pause: cancel-all: {e}")
            if left == 0:
                self.pause_state = PAUSED_CONFIRMED
                _log("paused: every order confirmed gone; quoting stopped until mm resume")
                return
            if attempt == 1 or attempt % 30 == 0:       # not a line a second
                _log(f"pause: {'could not confirm' if left < 0 else f'{left} orders still open'}"
                     f"; trying again every second")
            await asyncio.sleep(1.0)

    async def _resume(self) -> None:
        """Reconcile with the venue (positions, open orders, unknown ones), which tells the
        quoter POSITION + RESUME; a sender reconnecting does the same on its own."""
        gw = self.gw
        while not self.gw.paused and not self._stopping():
            if not gw.connected:
                _log("resume: not connected; the reconnect's reconcile resumes the quoter")
                break
            try:
                quoter = self.fills.ring.consumer_pid()
                await gw.reconcile(full=True)
                self.synced_quoter = quoter
                gw.forget_stop_cancels()       # the pause's cancels are not the stop's
                self._last_reconcile = asyncio.get_running_loop().time()
                _log(f"resumed: reconciled with the venue ({gw.orders.open_count()} open "
                     f"orders); the quoter quotes again")
                break
            except (GatewayError, msgspec.DecodeError) as e:
                _log(f"resume: reconcile failed: {e}; trying again")
                await asyncio.sleep(1.0)
        if not self.gw.paused:
            self.pause_state = QUOTING

    # ---------------------------------------------------------------- connection life
    async def _reconnect(self) -> None:
        """Connect (logon inside), reconcile, then resume; exponential back-off with jitter,
        one log line per attempt."""
        ceiling = self.scfg.reconnect_base_s
        first = not self.gw.connected_ever
        attempt = 0
        try:
            while not self._stopping():
                attempt += 1
                try:
                    await self.gw.connect(self.url)
                    quoter = self.fills.ring.consumer_pid()     # before what we tell it
                    await self.gw.reconcile(full=True)
                    self.synced_quoter = quoter
                    if not first:
                        self.reconnects += 1
                    _log(f"{'connected' if first else 'reconnected'} to {self.url} "
                         f"(attempt {attempt}, auth {self.gw.auth}, clock "
                         f"offset {self.gw.clock_offset_ms} ms, rtt {self.gw.rtt_ns // 1000} "
                         f"us, {self.gw.orders.open_count()} open orders)")
                    if first:
                        self.life.running()
                    self._last_reconcile = asyncio.get_running_loop().time()
                    self._drain()
                    return
                except VenueRefusal as e:
                    self.gw.close()
                    self.gw.refusal = str(e)
                    return
                except GatewayError as e:
                    self.gw.close()
                    wait = random.uniform(0, ceiling)
                    _log(f"connect attempt {attempt} failed: {e}; next in {wait:.2f} s")
                    await asyncio.sleep(wait)
                    ceiling = min(ceiling * 2, self.scfg.reconnect_cap_s)
        finally:
            self._reconnecting = False

    async def _sync_new_quoter(self, quoter: int) -> None:
        """A quoter process this sender has not told where it stands (it started after our
        reconcile, or restarted): if an earlier quoter traded through us, its orders are
        canceled first (the new one's slots know none of them); then RESET, POSITION, RESUME."""
        gw = self.gw
        try:
            if self.synced_quoter:
                _log(f"quoter restarted (pid {self.synced_quoter} -> {quoter}): canceling what "
                     f"its predecessor left, then resuming the new one")
                left = await gw.cancel_everything(asyncio.get_running_loop().time()
                                                  + self.scfg.cancel_confirm_timeout_s)
                if left != 0:
                    _log(f"quoter restart: {left} orders not confirmed canceled; trying again")
                    return
            gw.tell_quoter(reset=True, resume=True)
            self.synced_quoter = quoter
        except GatewayError as e:
            _log(f"telling the new quoter where it stands failed: {e}; trying again")
        finally:
            self._syncing = False

    async def _reconcile_mid_session(self) -> None:
        try:
            await self.gw.reconcile(full=False)
        except (GatewayError, msgspec.DecodeError) as e:
            _log(f"reconcile failed: {e}")
        finally:
            self._last_reconcile = asyncio.get_running_loop().time()
            self._reconciling = False

    async def _replace_dead(self, reason: str, found_ns: int) -> None:
        """The order connection stopped proving alive: replace it (make-before-break: orders
        are refused locally meanwhile), then reconcile (open orders, every UNKNOWN asked)
        before quoting resumes. On failure the dead one is closed and the reconnect loop
        takes over."""
        gw = self.gw
        quiet_ms = (found_ns - gw.liveness.last_frame_ns) / 1e6
        _log(f"order connection dead ({reason}; last frame {quiet_ms:.0f} ms ago): replacing it")
        loop = asyncio.get_running_loop()
        try:
            await gw.replace_dead(self.url)
            t_new = perf_counter_ns()
            quoter = self.fills.ring.consumer_pid()
            await gw.reconcile(full=True)
            t_done = perf_counter_ns()
            if not gw.resume_owed:
                self.synced_quoter = quoter
            self.reconnects += 1
            self._last_reconcile = loop.time()
            _log(f"order connection replaced in {(t_new - found_ns) / 1e6:.0f} ms and reconciled "
                 f"in {(t_done - t_new) / 1e6:.0f} ms: {gw.orders.open_count()} open orders, "
                 f"{len(gw.orders.unknown())} still unknown; quoting resumes")
            self._drain()
        except (GatewayError, msgspec.DecodeError) as e:
            _log(f"replacing the dead order connection failed: {e}; reconnecting")
            gw.close()
        finally:
            self._replacing = False

    async def _roll_over(self) -> None:
        why = "serverShutdown notice" if self.gw.shutdown_notice else "connection age"
        try:
            await self.gw.roll_over(self.url)
            self.gw.shutdown_notice = False
            _log(f"order connection replaced ({why}), make-before-break")
        except GatewayError as e:
            _log(f"replacing the order connection ({why}) failed: {e}; trying again")
            await asyncio.sleep(1.0)
        finally:
            self._rolling = False

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
        scfg.validate(cfg)
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
