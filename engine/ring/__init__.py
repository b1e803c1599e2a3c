"""Shared-memory SPSC rings: header offsets (header.py), segments (segment.py), the Python face
(ring.py) and idle strategies (idle.py); numba code calls engine/native.py's nb_ring_* functions."""
from engine.ring.ring import Ring, RingError  # noqa: F401
from engine.ring.segment import SegmentError  # noqa: F401
