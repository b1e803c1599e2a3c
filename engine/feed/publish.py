"""The md sink: drops duplicate updates from redundant connections, stamps, and writes each
record straight into its md ring slot.

Hot path: `RingSink.emit` (C, engine._feed.Publisher in native/mm_feed_publish.c), called once
per event while the connection's `on_ws_frame` runs, or reached without any Python call at all
from the C fast paths of the Binance bookTicker and SBE bestBidAsk decoders. Before the adapter
decodes, the connection writes `sink.conn` and `sink.ts_arrival` (two attribute stores). An
event costs no Python object: the record is written field by field into a claimed slot (claim
and commit are engine._native's, reached through their C addresses), then committed.

Duplicates: the first copy of an update wins. The sink keeps, per instrument, the last
published book update id and the last published trade id; an event whose id is not above the
last one of its class is counted in `dupes` and dropped. The update ids of a venue stream only
grow, so this also drops the overlap of a make-before-break rollover.

If the venue rewinds its ids (a restart), every event would look like a duplicate: the stream
stops publishing, is marked stale like a silent one, and when its connections keep delivering
anyway the watchdog calls `forget_ids()`; publishing resumes after an MD_FRESH mark, from which
point the update ids restart lower.

Stale marks: `mark_stale()` writes MD_STALE for every instrument (update id = its last published
book update, 0 if none); the next event that is published writes MD_FRESH for every instrument
first, stamped with that event's connection and arrival. Marks carry no prices.

A full ring never blocks the socket reader: the record is refused (`ring_full`, and the ring's
own drop counter leaves a sequence gap the quoter sees).
"""
from __future__ import annotations

from typing import Sequence

from engine import _feed
from engine.latency.histogram import HistogramSet
from engine.records import MD_DTYPE, MD_FRESH, MD_STALE, MD_TRADE
from engine.ring.board import Board
from engine.ring.ring import Ring

# Histograms the feed records (one set per feed process, "hist-feed").
HISTOGRAMS = ("arrival_to_decoded", "decoded_to_published", "arrival_to_published")

# The record layout the C writer follows: every MD field's (offset, size), from the dtype.
MD_LAYOUT = {name: (off, dt.itemsize) for name, (dt, off) in MD_DTYPE.fields.items()}


class RingSink(_feed.Publisher):
    """MdSink writing into an md ring. One per feed process, shared by all its connections.

    `conn` and `ts_arrival` are set by the connection before every decode; `stale` says whether
    the stream is currently marked stale. Counters (`published`, `dupes`, `ring_full`,
    `stale_marks`, `fresh_marks`, `id_resets`) and `last_published_ns` / `stale_since_ns` are
    read-only attributes kept by the C publisher.
    """

    def __init__(self, ring: Ring, hists: HistogramSet | None, n_instruments: int, venue: int):
        if ring.dtype != MD_DTYPE:
            raise ValueError(f"RingSink: ring {ring.name} holds {ring.dtype}, not MD records")
        hist_addrs = None if hists is None else tuple(hists.addr(n) for n in HISTOGRAMS)
        super().__init__(ring.hdr, MD_LAYOUT, n_instruments, venue, (MD_TRADE, MD_STALE, MD_FRESH),
                         hist_addrs)
        self.ring = ring

    board = None

    def close(self) -> None:
        """Stop writing and unmap the ring (later emits raise RuntimeError, never touch freed
        memory)."""
        self.detach()
        self.ring.close()
        if self.board is not None:
            self.board.close()

    def counters(self) -> dict[str, int]:
        """The sink's counters (reporting, not the hot path)."""
        return {"records": self.published, "dupes": self.dupes, "ring_full": self.ring_full,
                "conflated": self.conflated,
                "stale_marks": self.stale_marks, "fresh_marks": self.fresh_marks,
                "id_resets": self.id_resets}


def open_sink(instance: str, ring: Ring, instruments: Sequence, venue: int,
              hists: HistogramSet | None) -> RingSink:
    """Wrap the instance's md ring's producer end (opened from the ring table: engine/ring/table.py
    MD) in a sink that also keeps the latest book of every instrument on the book board
    (engine/ring/board.py: a full ring drops records, never the newest state). Closing the sink
    closes the ring and the board."""
    sink = RingSink(ring, hists, len(instruments), venue)
    sink.board = Board.open(instance, len(instruments), MD_DTYPE)
    sink.set_board(sink.board.addr)
    return sink
