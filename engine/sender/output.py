"""The hot path's output buffer: every frame of a ring batch goes into one buffer, written
with one syscall at the batch's end (the second order of a tick does not wait for the
first); the latency stamps of each frame, recorded with the same written stamp; the dry run's
bounded log, redacted by the venue's `redact`.

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use
(out, out_len, _batching, fd, _pending, _npending, journal_later, hist).
"""
from __future__ import annotations

import os
from time import perf_counter_ns

from engine._native import hist_record as _hist_record
from engine.proc import log

class Output:
    """The batch buffer and the latency stamps (part of Gateway)."""

    def begin_batch(self) -> None:
        """Frames go to the output buffer until end_batch() writes them with one syscall."""
        self._batching = True

    def end_batch(self) -> None:
        self._batching = False
        self.flush_out()

    def sent(self, ts_published: int, ts_arrival: int, t_read: int, t_signed: int) -> None:
        """A frame is in the output buffer: note its stamps, write it now unless batching."""
        k = self._npending
        if k == 256:                        # a very long batch: write what is there first
            self.flush_out()
            k = 0
        p = self._pending
        p[0][k], p[1][k], p[2][k], p[3][k] = ts_published, ts_arrival, t_read, t_signed
        self._npending = k + 1
        if not self._batching:
            self.flush_out()

    def flush_out(self) -> None:
        """Write the output buffer (one syscall when the socket takes it all), then record
        every frame's latency with the same written stamp."""
        n = self.out_len
        if not n and not self._npending:    # an empty batch (the ring had nothing): no work
            return
        if n:
            self.out_len = 0
            written = 0
            with memoryview(self.out) as mv:
                if self.fd >= 0 and not self._tr_buffered():
                    try:
                        written = os.write(self.fd, mv[:n])
                    except (BlockingIOError, InterruptedError):
                        written = 0
                if written < n:             # TLS, or the socket is full: the loop writes it
                    self._tr_write(bytes(mv[written:n]))
        k = self._npending
        if k and self.hist is not None:
            t_sent = perf_counter_ns()
            p = self._pending
            for j in range(k):
                self.record_latency(p[0][j], p[1][j], p[2][j], p[3][j], t_sent)
        self._npending = 0
        if self.journal_later:
            request = self.journal.request
            for args in self.journal_later:
                request(*args)
            self.journal_later.clear()

    def record_latency(self, ts_published: int, ts_arrival: int, t_read: int, t_signed: int,
                       t_sent: int) -> None:
        if self.hist is None:
            return
        rec = _hist_record
        if ts_published:
            rec(self._h_read, t_read - ts_published)
        rec(self._h_sign, t_signed - t_read)
        rec(self._h_send, t_sent - t_signed)
        rec(self._h_r2w, t_sent - t_read)
        if ts_arrival:
            rec(self._h_t2o, t_sent - ts_arrival)

    def dry_write(self, frame: bytes) -> None:
        """Dry run: count the frame that would have gone out, log it redacted at a bounded
        rate."""
        self.counts["dry_run_frames"] += 1
        sec = perf_counter_ns() // 1_000_000_000
        if sec != self._dry_log_second:
            self._dry_log_second, self._dry_log_budget = sec, self.scfg.dry_run_log_per_s
        if self._dry_log_budget > 0:
            self._dry_log_budget -= 1
            log("sender", f"dry-run: {self.redact(frame).decode()}")
