"""The sender's watch duty (every WATCH_S): the heartbeat, the stop checks (kill switch, a
quoter or feed heartbeat older than heartbeat_timeout_ms once that role has been running, a
venue ban, a permanent refusal), the pause word, and order truth: requests unanswered past
their measured deadline become UNKNOWN and the venue is asked about them; the order connection
proves it is alive (pings, unanswered streaks, silence: engine/sender/liveness.py) or is
replaced make-before-break and reconciled before quoting resumes; orders the venue shows live
after we concluded them gone are canceled until it confirms; in quiet moments open orders and
balances are compared with the venue (reconcile_interval_s, skipped while REQUEST_WEIGHT is
tight); a new quoter is told where it stands; the fill-ring backlog is flushed; the order
connection is replaced before the venue's 24 h limit or on its serverShutdown notice; the
process's counters are published.

Mixed into engine/sender/process.py's Sender, which sets the state these methods use.
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from engine.control import (KILL_HEARTBEAT, KILL_REASONS, KILL_VENUE_BAN, KILL_VENUE_REFUSED,
                            LATCHED)
from engine.exit_codes import EXIT_KILLED, EXIT_OK, EXIT_PEER_LOST
from engine.records import JE_KILL

WATCH_S = 0.05                 # heartbeat / kill switch / counters / order-truth cadence
WATCHED_ROLES = ("quoter", "feed")
OWED_RESUME_RETRY_S = 0.5      # a reconcile that left orders of our tag resting: retry this soon
PROCESS_COUNTERS = ("reconnects", "open_orders", "fills_written", "fills_delayed",
                    "fills_backlog", "clock_offset_ms", "rtt_us", "bells", "connected_ever",
                    "canceled_at_stop", "left_open", "in_flight", "deadline_us", "paused",
                    "journal_written", "journal_full")


class Watch:
    """The watch duty (part of Sender)."""

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
