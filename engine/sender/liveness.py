"""How long to wait for the venue, and whether the order connection is still alive.

`RoundTrip` measures order request round trips the way TCP measures its retransmission timeout
(RFC 6298): a smoothed RTT and its mean deviation, deadline = srtt + 4 x rttvar, kept between a
floor and a cap. A lost answer then costs a few round trips instead of a fixed 2 s, while a venue
that is slow but steady raises the deadline with it (no false UNKNOWNs). Karn's rule: an answer
that came after its deadline is not a sample (which request it answers is not in doubt here, but
its time says nothing about the path's normal round trip); a deadline that passes doubles the
next ones until a good sample comes (back-off, as TCP does).

`Liveness` is one connection's proof of life, checked by the watch duty (never per frame: the
frame path only stores a timestamp):
  - nothing received for ping_interval, or a request's deadline passed with nothing received
    since it left: a WebSocket ping goes out; no frame within pong_timeout after it: dead (a
    lost answer on a healthy connection is answered by the pong: not dead);
  - dead_after requests in a row unanswered by their deadline (requests that pass their
    deadline together count once: one slow spell of the venue; any answer, late ones too,
    ends the streak): dead;
  - no frame for `silence` while a request waits for its answer: dead.
"""
from __future__ import annotations


class RoundTrip:
    """Smoothed round trip and deadline of order requests (integers, nanoseconds)."""

    __slots__ = ("floor_ns", "cap_ns", "srtt_ns", "rttvar_ns", "backoff", "samples")

    def __init__(self, floor_ns: int, cap_ns: int):
        self.floor_ns = floor_ns
        self.cap_ns = cap_ns
        self.srtt_ns = 0
        self.rttvar_ns = 0
        self.backoff = 0             # deadlines missed since the last good sample (doublings)
        self.samples = 0

    def sample(self, rtt_ns: int) -> None:
        """One round trip of a request answered within its deadline."""
        if rtt_ns < 0:
            return
        if self.samples == 0:
            self.srtt_ns = rtt_ns
            self.rttvar_ns = rtt_ns // 2
        else:
            self.rttvar_ns += (abs(self.srtt_ns - rtt_ns) - self.rttvar_ns) // 4
            self.srtt_ns += (rtt_ns - self.srtt_ns) // 8
        self.samples += 1
        self.backoff = 0

    def missed(self) -> None:
        """A request's deadline passed unanswered: wait longer for the next ones."""
        if self.backoff < 16:
            self.backoff += 1

    def deadline_ns(self) -> int:
        """How long an order request may stay unanswered before its outcome is unknown."""
        if self.samples == 0:
            return self.cap_ns       # nothing measured yet: the configured ceiling
        rto = max(self.srtt_ns + 4 * self.rttvar_ns, self.floor_ns) << self.backoff
        return min(rto, self.cap_ns)


class Liveness:
    """One connection's proof of life (see the module docstring). Times are perf_counter_ns."""

    __slots__ = ("ping_every_ns", "pong_timeout_ns", "silence_ns", "dead_after", "last_frame_ns",
                 "ping_sent_ns", "missed_in_a_row", "since_ns", "unanswered_ns")

    def __init__(self, ping_every_ns: int, pong_timeout_ns: int, silence_ns: int,
                 dead_after: int, now_ns: int):
        self.ping_every_ns = ping_every_ns
        self.pong_timeout_ns = pong_timeout_ns
        self.silence_ns = silence_ns
        self.dead_after = dead_after
        self.reset(now_ns)

    def reset(self, now_ns: int) -> None:
        """A new connection: alive as of now."""
        self.last_frame_ns = now_ns
        self.ping_sent_ns = 0
        self.missed_in_a_row = 0
        self.since_ns = now_ns
        self.unanswered_ns = 0       # send time of the latest request whose deadline passed

    def answered(self) -> None:
        self.missed_in_a_row = 0

    def missed(self, t_sent_ns: int = 0) -> None:
        """A request sent at `t_sent_ns` passed its deadline unanswered."""
        self.missed_in_a_row += 1
        if t_sent_ns > self.unanswered_ns:
            self.unanswered_ns = t_sent_ns

    def ping_due(self, now_ns: int) -> bool:
        """True when a ping should go out now (quiet this long, or a request unanswered with
        nothing received since it left; none outstanding)."""
        if self.ping_sent_ns > self.last_frame_ns:
            return False
        if (self.unanswered_ns > self.last_frame_ns
                or now_ns - self.last_frame_ns >= self.ping_every_ns):
            self.ping_sent_ns = now_ns
            return True
        return False

    def dead_reason(self, now_ns: int, oldest_wait_ns: int) -> str:
        """Why the connection is dead, or "" while it proves alive. `oldest_wait_ns`: send
        time of the oldest request still waiting for its answer (0: none)."""
        if self.ping_sent_ns > self.last_frame_ns and \
                now_ns - self.ping_sent_ns > self.pong_timeout_ns:
            return f"no frame within {self.pong_timeout_ns // 1_000_000} ms of a ping"
        if self.missed_in_a_row >= self.dead_after:
            return f"{self.missed_in_a_row} requests in a row unanswered"
        quiet = now_ns - self.last_frame_ns
        if oldest_wait_ns and quiet > self.silence_ns and now_ns - oldest_wait_ns > self.silence_ns:
            return f"no frame for {quiet // 1_000_000} ms with requests waiting"
        return ""
