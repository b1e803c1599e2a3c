"""Frame arrival stamps from the kernel's receive timestamps.

A frame's arrival is when its bytes reached this host, not when the feed got round to reading
them: while the feed decodes, publishes or sits in a slow loop iteration, new frames wait in the
socket's receive queue, and that wait belongs in the arrival -> decoded hop.

How: the feed socket gets SO_TIMESTAMPNS, so the kernel stamps every packet as it is received
(software stamp, CLOCK_REALTIME), and the event loop's reader callback for the socket becomes an
engine._feed.StampedReader (native/mm_feed_stamps.c), which fetches the stamp that comes with
the data and converts it to the engine's clock (CLOCK_MONOTONIC, perf_counter_ns):
  - plain connections (ws://, aiofastnet's socket transport under picows): the reader does the
    transport's read itself, with recvmsg, which returns the stamp of the data it consumed, and
    hands the bytes to the protocol as the transport would. No system call is added.
  - TLS connections (wss://, where the transport decrypts from its own reads): the reader walks
    the queue with recvmsg(MSG_PEEK | MSG_TRUNC) (nothing copied, nothing consumed) for the
    newest stamp, then lets the transport read. One system call more per pick-up.
Every frame delivered from that data gets `reader.arrival()`. (The SIOCGSTAMPNS ioctl, the
other way to ask, answers ENOENT on TCP sockets: TCP keeps stamps per buffer, not per socket.)

Contract and limits:
  - Frames read together share one stamp: the receive time of the newest data read with them
    (TCP merges packets that queue behind each other into one buffer and keeps the newest time,
    so nothing older is available). A stamp is thus never before the send of any frame it is
    given to, and never after the frame was picked up; the earlier frames of a burst are
    stamped late by at most the burst's spread.
  - Stamps never run backwards on one connection. Across redundant connections they may: a
    copy picked up later can have arrived earlier on its own socket.
  - TLS: a frame that lands in the microsecond between the peek and the transport's read gets
    the peeked stamp, a little before its own arrival.
  - Clock conversion: arrival = monotonic_now - (realtime_now - kernel_stamp), both clocks read
    right after the stamp is fetched, so the offset is measured afresh at each pick-up and its
    error is the gap between the two clock reads (~25 ns). NTP slews both clocks alike; a
    wall-clock step while data waits shifts that stamp by the step; a negative wait is clamped
    to 0.
  - Cost (bench/feed_decode.py): plain, two clock reads per read; TLS, the peek (~0.5 us) per
    pick-up. Nothing per frame beyond the `arrival()` call that replaces perf_counter_ns().
  - A transport that does not read through a `_read_ready` callback on its socket (an event
    loop's own transports: uvloop's, asyncio's) is not stamped: `install` returns None and the
    connection keeps pick-up stamps (counted in the feed's `unstamped_connections`).
"""
from __future__ import annotations

import asyncio

from engine import _feed

try:   # picows's default transport for plain sockets, which the reader can read for
    from aiofastnet.selector_transport import SelectorSocketTransport
except ImportError:          # pragma: no cover - picows without aiofastnet
    SelectorSocketTransport = ()


def install(ws_transport) -> _feed.StampedReader | None:
    """Stamp the connection of picows transport `ws_transport` from the kernel; returns the
    reader (its `arrival()` gives each frame's stamp) or None when the transport cannot be
    stamped (see the module doc). Call on the event loop that serves the connection."""
    raw = getattr(ws_transport, "underlying_transport", None)
    read_ready = getattr(raw, "_read_ready", None)
    sock = raw.get_extra_info("socket") if raw is not None else None
    if read_ready is None or sock is None or sock.fileno() < 0:
        return None
    protocol = None
    if isinstance(raw, SelectorSocketTransport):
        protocol = raw.get_protocol()
        if not hasattr(protocol, "get_buffer"):
            protocol = None           # a plain (data_received) protocol: peek instead
    try:
        reader = _feed.StampedReader(sock.fileno(), read_ready, protocol)
        asyncio.get_running_loop().add_reader(sock.fileno(), reader)
    except (OSError, RuntimeError):  # SO_TIMESTAMPNS refused, or the loop owns the socket
        return None
    return reader
