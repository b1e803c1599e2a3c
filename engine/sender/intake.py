"""The sender's ring intake (hot): the order ring read without stalling the socket.

  park (default): the ring's doorbell socket is registered with the loop; when the ring is
      empty the sender arms the doorbell and the loop sleeps in epoll until either the venue
      sends a frame or the quoter publishes (the quoter's commit writes the doorbell). Costs a
      cross-core wake (25-45 us here) per burst, zero CPU when idle.
  busy-spin: the ring and the order socket are polled in C (Ring.spin_fd); the loop runs only
      when the socket has data or every SPIN_SLICE_NS for its timers: no wake-up latency, but
      it burns its core, so only on a core of its own.

Pacing (the venue's ORDERS windows nearly spent): new orders and replaces wait their turn in a
bounded queue while cancels behind them go at once (the ORDERS limit does not count cancels);
a cancel or CANCEL_ALL for an order still waiting there refuses it locally instead.

Mixed into engine/sender/process.py's Sender, which sets the state these methods use (orders,
gw, _intents, _held, _spin, _bell, bells, _drain_scheduled, _stop).
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from engine import _native as C
from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ACTION_RESET_SEEN, ALL_INSTRUMENTS)
from engine.sender.fills import LOCAL_BEFORE_RESET, LOCAL_RATE_LIMITED

BATCH = 64                     # intents handled per ring read
SPIN_SLICE_NS = 200_000        # busy-spin: the longest stretch spent in C between loop turns
HELD_MAX = 256                 # new orders held back by pacing (cancels behind them still go)


class Intake:
    """The order ring's reader (part of Sender)."""

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
                batch = take(BATCH)
                # read = taken from the ring, once for the batch: the second order of a tick
                # waits for the first's signing in the sender's own hop, not in the hand-off
                t_read = perf_counter_ns()
                for fields in batch:        # (paused: refusal_reason refuses new orders)
                    gw.on_intent(fields, t_read)
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
