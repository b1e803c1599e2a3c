"""Frame arrival stamps from the kernel's receive timestamps.

A frame's arrival is when its bytes reached this host, not when the feed got round to reading
them: while the feed decodes, publishes or sits in a slow loop iteration, new frames wait in the
socket's receive queue, and that wait belongs in the arrival -> decoded hop.

How: the feed socket gets SO_TIMESTAMPNS, so the kernel stamps every packet as it is received
(software stamp, CLOCK_REALTIME). The event loop's reader callback for the socket is replaced by
an engine._feed.StampedReader, which peeks one byte with MSG_PEEK (the kernel hands back the
stamp of the first unread buffer, without consuming anything), converts that stamp to the
engine's clock (CLOCK_MONOTONIC, perf_counter_ns) and then calls the transport's own reader.
Every frame the transport delivers during that call gets `reader.arrival()`. (The SIOCGSTAMPNS
ioctl, the other way to ask, answers ENOENT on TCP sockets: the kernel keeps no per-socket
stamp for TCP, only per buffer, handed out with recvmsg.)

Contract and limits:
  - Frames read in one pick-up share its stamp: the first unread buffer's. When packets queue
    behind each other, TCP merges them into one buffer and keeps the newest one's time, so the
    shared stamp lies between the arrival of the first frame of the pick-up and that of the
    last: never before the first one was sent, never after the last one arrived. A burst's
    later frames may be stamped a little early, its first ones a little late, by at most the
    spread of the burst (tests/integration/test_feed_kernel_stamps.py).
  - Clock conversion: arrival = monotonic_now - (realtime_now - kernel_stamp), both clocks read
    right after the peek, so the offset is measured afresh at each pick-up and its error is the
    gap between the two clock reads (~25 ns). NTP slews both clocks alike; a wall-clock step
    while data waits shifts that pick-up's stamp by the step; a negative wait is clamped to 0.
  - Cost: one extra recvmsg(MSG_PEEK) per pick-up (bench/feed_decode.py measures it), nothing
    per frame beyond the `arrival()` call that replaces perf_counter_ns().
  - Where the transport does not read through a `_read_ready` callback on the socket (an event
    loop's own transports, e.g. uvloop's or asyncio's TLS), `install` returns None and the
    connection stamps at pick-up as before. aiofastnet's plain and TLS transports (picows's
    default) both qualify; for TLS the stamp is the encrypted packet's.
"""
from __future__ import annotations

import asyncio

from engine import _feed


def install(ws_transport) -> _feed.StampedReader | None:
    """Stamp the connection of picows transport `ws_transport` from the kernel; returns the
    reader (its `arrival()` gives each frame's stamp) or None when the transport cannot be
    stamped (see the module doc). Call on the event loop that serves the connection."""
    raw = getattr(ws_transport, "underlying_transport", None)
    read_ready = getattr(raw, "_read_ready", None)
    sock = raw.get_extra_info("socket") if raw is not None else None
    if read_ready is None or sock is None:
        return None
    fd = sock.fileno()
    if fd < 0:
        return None
    try:
        reader = _feed.StampedReader(fd, read_ready)
        asyncio.get_running_loop().add_reader(fd, reader)
    except (OSError, RuntimeError):  # SO_TIMESTAMPNS refused, or the loop owns the socket
        return None
    return reader
