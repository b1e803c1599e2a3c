"""The md sink: drops duplicate updates from redundant connections, stamps, and writes each
record straight into its md ring slot (one struct pack, no numpy per record).

Hot path: `RingSink.emit`, called by the adapter once per event while the connection's
`on_ws_frame` runs. Before calling `adapter.decode`, the connection writes `sink.conn` and
`sink.ts_arrival` (two attribute stores; nothing is allocated per frame here).

Duplicates: the first copy of an update wins. The sink keeps, per instrument, the last
published book update id and the last published trade id; an event whose id is not above the
last one of its class is counted in `dupes` and dropped. The update ids of a venue stream only
grow, so this also drops the overlap of a make-before-break rollover.

If the venue rewinds its ids (a restart), every event would look like a duplicate: the stream
stops publishing, is marked stale like a silent one, and when its connections keep delivering
anyway the watchdog calls `forget_ids()`; publishing resumes after an MD_FRESH mark, from which
point the update ids restart lower.

A full ring never blocks the socket reader: the record is refused (`ring_full`, and the ring's
own drop counter leaves a sequence gap the quoter sees).
"""
from __future__ import annotations

from time import perf_counter_ns
from typing import Sequence

from engine import _native as C
from engine.latency.histogram import HistogramSet
from engine.records import MD_DTYPE, MD_FRESH, MD_STALE, MD_TRADE, packer
from engine.ring.header import HEADER_SIZE
from engine.ring.ring import Ring

# Histograms the feed records (one set per feed process, "hist-feed").
HISTOGRAMS = ("arrival_to_decoded", "decoded_to_published", "arrival_to_published")

_MD_PACK = packer(MD_DTYPE)
_NO_ID = -(1 << 63)


class RingSink:
    """MdSink writing into an md ring. One per feed process, shared by all its connections.

    `conn` and `ts_arrival` are set by the connection before every decode; `stale` says whether
    the stream is currently marked stale (see `mark_stale`; the next event marks it fresh).
    """

    def __init__(self, ring: Ring, hists: HistogramSet | None, n_instruments: int, venue: int):
        self.ring = ring
        self.venue = venue
        self.n_instruments = n_instruments
        self.conn = 0
        self.ts_arrival = 0
        self.stale = False
        # Counters (plain ints; the process copies them to shared memory on its timer).
        self.dupes = 0
        self.ring_full = 0
        self.stale_marks = 0
        self.fresh_marks = 0
        self.published = 0          # records this sink wrote (the ring's `written` counts them too)
        self.id_resets = 0          # forget_ids() calls (the venue rewound its update ids)
        self.last_published_ns = 0  # ts_published of the latest data record
        self.stale_since_ns = 0     # when the current stale mark was published
        self.last_book = [_NO_ID] * n_instruments    # last published book update id per instrument
        self.last_trade = [_NO_ID] * n_instruments   # last published trade id per instrument
        # Hot-path constants, bound once.
        self._hdr = ring.hdr
        self._buf = ring.seg.buf
        self._base = HEADER_SIZE + 8               # slot 0, after its seq field
        self._size = ring.dtype.itemsize
        if hists is not None:
            self._h_a2d = hists.addr("arrival_to_decoded")
            self._h_d2p = hists.addr("decoded_to_published")
            self._h_a2p = hists.addr("arrival_to_published")
            self._hist = C.hist_record
        else:
            self._hist = None

    # ------------------------------------------------------------------ hot path
    def emit(self, instrument: int, kind: int, update_id: int, bid_px: int, bid_qty: int,
             ask_px: int, ask_qty: int, trade_px: int, trade_qty: int, trade_side: int,
             ts_venue: int) -> None:
        """Publish one event unless an earlier copy of it was published (see the module doc)."""
        ts_decoded = perf_counter_ns()
        last = self.last_trade if kind & MD_TRADE else self.last_book
        if update_id and update_id <= last[instrument]:  # id 0: the venue gave none to compare
            self.dupes += 1
            return
        if self.stale:              # new data again: the fresh marks go first
            self._mark_fresh(ts_decoded)
        last[instrument] = update_id
        idx = C.try_claim(self._hdr)
        if idx < 0:
            self.ring_full += 1
            return
        ts_arrival = self.ts_arrival
        ts_published = perf_counter_ns()
        _MD_PACK.pack_into(self._buf, self._base + idx * self._size, update_id, instrument, kind,
                           self.venue, self.conn, bid_px, bid_qty, ask_px, ask_qty, trade_px,
                           trade_qty, trade_side, ts_venue, ts_arrival, ts_decoded, ts_published)
        C.commit(self._hdr)
        self.published += 1
        self.last_published_ns = ts_published
        hist = self._hist
        if hist is not None:
            hist(self._h_a2d, ts_decoded - ts_arrival)
            hist(self._h_d2p, ts_published - ts_decoded)
            hist(self._h_a2p, ts_published - ts_arrival)

    # ------------------------------------------------------------------ stale / fresh marks
    def mark_stale(self) -> None:
        """Publish MD_STALE for every instrument (the quoter pulls its quotes). Idempotent:
        a stream already marked stale is not marked again."""
        if self.stale:
            return
        self.stale = True
        self.stale_marks += 1
        now = self.stale_since_ns = perf_counter_ns()
        self._publish_marks(MD_STALE, 0, now, now)

    def forget_ids(self) -> None:
        """Forget the last published ids: the next event of each instrument is published
        whatever its id (after a venue rewound its update ids; see the module doc)."""
        self.last_book[:] = [_NO_ID] * self.n_instruments
        self.last_trade[:] = [_NO_ID] * self.n_instruments
        self.id_resets += 1

    def _mark_fresh(self, now: int) -> None:
        self.stale = False
        self.fresh_marks += 1
        # Stamped like the event that revived the stream: its connection and arrival time.
        self._publish_marks(MD_FRESH, self.conn, self.ts_arrival, now)

    def _publish_marks(self, kind: int, conn: int, ts_arrival: int, ts_decoded: int) -> None:
        # update_id = the last book update published for the instrument (0 if none yet).
        for instrument in range(self.n_instruments):
            last = self.last_book[instrument]
            idx = C.try_claim(self._hdr)
            if idx < 0:
                self.ring_full += 1
                continue
            _MD_PACK.pack_into(self._buf, self._base + idx * self._size,
                               last if last != _NO_ID else 0, instrument, kind, self.venue,
                               conn, 0, 0, 0, 0, 0, 0, 0, 0, ts_arrival, ts_decoded,
                               perf_counter_ns())
            self.published += 1
        C.commit(self._hdr)

    def counters(self) -> dict[str, int]:
        """The sink's counters (reporting, not the hot path)."""
        return {"records": self.published, "dupes": self.dupes, "ring_full": self.ring_full,
                "stale_marks": self.stale_marks, "fresh_marks": self.fresh_marks,
                "id_resets": self.id_resets}


def open_sink(instance: str, ring_capacity: int, ring_policy: str, instruments: Sequence,
              venue: int, hists: HistogramSet | None) -> RingSink:
    """Open (create or attach) the instance's md ring as its producer and wrap it in a sink."""
    ring = Ring.open(instance, "md", MD_DTYPE, ring_capacity, ring_policy, role="producer")
    return RingSink(ring, hists, len(instruments), venue)
