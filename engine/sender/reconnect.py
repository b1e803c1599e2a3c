"""The sender's connection life: connect (logon inside), reconcile and resume, with
exponential back-off and jitter; a dead order connection replaced make-before-break and
reconciled before quoting resumes; the connection rolled over before the venue's limit or on
its shutdown notice; a new quoter process told where it stands; quiet-time reconciles.

Mixed into engine/sender/process.py's Sender, which sets the state these methods use.
"""
from __future__ import annotations

import asyncio
import random
from time import perf_counter_ns

import msgspec

from engine import proc
from engine.sender.errors import GatewayError, VenueRefusal


def _log(msg: str) -> None:
    proc.log("sender", msg)


class ConnectionLife:
    """Connecting, replacing, rolling over, reconciling (part of Sender)."""

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
