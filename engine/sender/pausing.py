"""Pause and resume (`mm kill` / `mm resume`, the control segment's pause word): new orders
and replaces are refused locally (the quoter hears REJECT), every order of ours is canceled and
confirmed gone, and the process stays up: connection, reconciles, unknown-order questions go
on. Resume (the word cleared): a full reconcile with the venue, which tells the quoter its
positions and RESUME; only then does it quote again.

Mixed into engine/sender/process.py's Sender, which sets the state these methods use (ctl,
gw, pause_state, _pause_task, synced_quoter, _last_reconcile).
"""
from __future__ import annotations

import asyncio

import msgspec

from engine import proc
from engine.control import PAUSE_REASONS
from engine.records import JE_PAUSE, JE_RESUMED
from engine.sender.errors import GatewayError

# the `paused` counter: what `mm status` says about a pause
QUOTING, PAUSING, PAUSED_CONFIRMED, RESUMING = 0, 1, 2, 3


def _log(msg: str) -> None:
    proc.log("sender", msg)


class Pausing:
    """The pause word followed (part of Sender)."""

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
