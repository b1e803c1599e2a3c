"""`mm run`'s verdict: the exit status and the last line (what is true at the end) from the
sender's and the feed's counters, the sender's exit status and the kill switch; and the report."""
from __future__ import annotations

from engine.control import (KILL_DRAWDOWN, KILL_OPERATOR, KILL_REASONS, KILL_SHUTDOWN,
                            KILL_VENUE_BAN, KILL_VENUE_REFUSED)
from engine.exit_codes import (EXIT_CONFIG, EXIT_ERROR, EXIT_KILLED, EXIT_OK, EXIT_ORDERS_LEFT,
                               ORDERS_CONFIRMED_GONE)
from engine.feed import connect_error
from engine.supervisor.children import log


class Verdict:
    """Supervisor's verdict (engine/supervisor/__init__.py holds the state)."""

    def _verdict(self, codes: dict[str, int | None]) -> tuple[int, str]:
        """(exit status, last line) from the sender's and the feed's counters (read by name,
        with defaults for processes that do not publish them), the sender's exit status and
        the kill switch's reason. Resting orders outrank everything; then a venue that refused
        us (2), a stage that never reached the venue or failed (1), a risk stop (4)."""
        c = self.sender_counters
        sender = codes.get("sender")
        refused = self.kill_seen in (KILL_VENUE_REFUSED, KILL_VENUE_BAN)
        new, replaces = c.get("orders_sent", 0), c.get("replaces_sent", 0)
        connected = c.get("connected_ever", 1 if self.sender_running or new or replaces else 0)
        if "sender" not in codes or (not connected and not new and not replaces):
            if refused:
                return EXIT_CONFIG, (f"{self._venue_url()} refused us "
                                     f"({KILL_REASONS[self.kill_seen]}; the sender's log says "
                                     f"why): nothing was sent")
            return EXIT_ERROR, f"never connected to {self._venue_url()}: nothing was sent"
        left = c.get("left_open", 0 if sender in ORDERS_CONFIRMED_GONE else -1)
        sent = f"{new} orders and {replaces} replaces sent"
        if sender not in ORDERS_CONFIRMED_GONE or left != 0:
            how = ("the sender could not confirm that every order is gone" if left < 0
                   else f"{left} orders still open at the venue")
            return EXIT_ORDERS_LEFT, (f"ORDERS MAY BE RESTING: {how} ({sent}, sender exit "
                                      f"{sender}); check {self._venue_url()} by hand")
        canceled = c.get("canceled_at_stop")
        gone = ("every order confirmed gone" + (f" ({canceled} canceled at stop)" if canceled
                                                else "") + ", nothing resting")
        no_data = self._market_data_never_connected()
        if no_data:
            return EXIT_ERROR, f"{no_data}; {sent}; {gone}"
        if refused:
            return EXIT_CONFIG, (f"{sent}; {gone}; stopped because the venue refused us "
                                 f"({KILL_REASONS[self.kill_seen]})")
        if self.kill_seen == KILL_DRAWDOWN:
            return EXIT_KILLED, f"{sent}; {gone}; stopped by the drawdown limit"
        # Asked-for stops are orderly: duration over, SIGTERM/SIGINT (`mm stop`).
        orderly = self.stop_reason is not None and self.stop_reason.startswith(
            ("duration", "signal", f"kill switch: {KILL_REASONS[KILL_SHUTDOWN]}",
             f"kill switch: {KILL_REASONS[KILL_OPERATOR]}"))
        return (EXIT_OK if orderly else EXIT_ERROR), f"{sent}; {gone}"

    def _market_data_never_connected(self) -> str:
        """'' when the feed connected at least once (or did not run); otherwise what the last
        line says: where it tried, why it failed, how often."""
        f = self.feed_counters
        if not f or f.get("connected_ever", 1):
            return ""
        cause = connect_error.describe(f.get("connect_error", 0),
                                       f.get("connect_http_status", 0)) or "no answer"
        return (f"market data never connected to {self.run_cfg.feed.url or 'the venue'}: "
                f"{cause} ({f.get('connect_failures', 0)} attempts)")

    def _report(self) -> None:
        from engine.report import print_summary, snapshot_run

        try:
            summary = snapshot_run(self.cfg.instance, self.run_dir, self.ctl, self.rings,
                                   stop_reason=self.stop_reason, layout=self.layout,
                                   result=self.result, cfg=self.run_cfg,
                                   started_ns=self.started_ns,
                                   wake_bound_us=self.wake_bound_us)
            print_summary(summary)
            latest = self.run_dir.parent / "latest"
            if latest.is_symlink() or not latest.exists():
                latest.unlink(missing_ok=True)
                latest.symlink_to(self.run_dir.name)
        except Exception as e:  # reporting must never mask the exit status
            log(f"report failed: {type(e).__name__}: {e}")
