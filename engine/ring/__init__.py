"""Shared-memory SPSC rings: header offsets (header.py), segments (segment.py), the Python face
(ring.py), the numba face (nb.py) and idle strategies (idle.py)."""
from engine.ring.ring import Ring, RingError  # noqa: F401
from engine.ring.segment import SegmentError  # noqa: F401
