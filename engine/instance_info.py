"""What a running instance trades, for the tools that watch it: the instrument table as the
processes resolved it (filters from the venue) and the latency ceiling, in the segment
`/mm.<instance>.info`. `mm status` and the metrics endpoint read it to show positions in base
units and PnL in the quote currency; without it they would have to guess the exponents.

Layout: word 0 = length of the JSON document that follows at byte 8 (0 = not written yet),
stored with release ordering after the document, so a reader never sees half of it.
Written once at set-up (the supervisor, or each process started alone); never on a hot path.
"""
from __future__ import annotations

import msgspec

from engine import _native as C
from engine.instruments import Instrument
from engine.ring.segment import Segment, SegmentError, segment_name
from engine.units import DEFAULT_LATENCY_CEILING_US

SEGMENT = "info"


class InstanceInfo(msgspec.Struct, frozen=True, kw_only=True):
    instruments: tuple[Instrument, ...]
    latency_ceiling_us: int = DEFAULT_LATENCY_CEILING_US
    venue: str = ""
    journal: str = ""             # the journal file (mm status reads the day's fills from it)


def of_config(cfg) -> InstanceInfo:
    journal = ""
    if cfg.journal.enabled:
        from engine.journal.schema import journal_path
        journal = str(journal_path(cfg).absolute())
    return InstanceInfo(instruments=cfg.instruments, latency_ceiling_us=cfg.latency_ceiling_us,
                        venue=cfg.sender.venue, journal=journal)


def publish(instance: str, info: InstanceInfo) -> None:
    """Write `info` for `instance`; an older, different document is replaced. Concurrent
    writers of the same document (processes started alone) are harmless."""
    doc = msgspec.json.encode(info)
    name = segment_name(instance, SEGMENT)
    for _ in range(3):
        try:
            seg = Segment.create(name, 8 + len(doc))
        except SegmentError:
            if read(instance) == info:
                return
            try:
                Segment.attach(name).unlink()
            except SegmentError:
                pass
            continue
        seg.array[8:8 + len(doc)] = memoryview(doc)
        C.store_release(seg.addr, len(doc))
        seg.close()
        return
    raise SegmentError(f"{name}: could not be written (replaced by another writer each time)")


def read(instance: str) -> InstanceInfo | None:
    """The published document, or None when there is none (yet)."""
    try:
        seg = Segment.attach(segment_name(instance, SEGMENT))
    except SegmentError:
        return None
    try:
        n = C.load_acquire(seg.addr) if seg.size >= 8 else 0
        if not 0 < n <= seg.size - 8:
            return None
        return msgspec.json.decode(bytes(seg.array[8:8 + n]), type=InstanceInfo)
    except msgspec.DecodeError:
        return None
    finally:
        seg.close()
