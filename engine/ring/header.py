"""Ring header layout: the constants come from native/mm_ring.h through engine._native, so C,
Python and numba read one definition. Also the dtype description an attacher must match."""
from __future__ import annotations

import numpy as np

from engine import _native as C

MAGIC = C.RING_MAGIC
VERSION = C.MM_RING_LAYOUT_VERSION
CACHE_LINE = C.MM_CACHE_LINE
PAIR = C.MM_PAIR
HEADER_SIZE = C.MM_HEADER_SIZE

OFF_MAGIC = C.MM_OFF_MAGIC
OFF_VERSION = C.MM_OFF_VERSION
OFF_RECORD_SIZE = C.MM_OFF_RECORD_SIZE
OFF_CAPACITY = C.MM_OFF_CAPACITY
OFF_MASK = C.MM_OFF_MASK
OFF_POLICY = C.MM_OFF_POLICY
OFF_DTYPE_HASH = C.MM_OFF_DTYPE_HASH
OFF_BLOCK_TIMEOUT = C.MM_OFF_BLOCK_TIMEOUT
OFF_CREATED_NS = C.MM_OFF_CREATED_NS
OFF_CONSUMER_SPINS = C.MM_OFF_CONSUMER_SPINS
OFF_PRODUCER_POS = C.MM_OFF_PRODUCER_POS
OFF_CACHED_CONSUMER = C.MM_OFF_CACHED_CONSUMER
OFF_CLAIMED = C.MM_OFF_CLAIMED
OFF_NEXT_SEQ = C.MM_OFF_NEXT_SEQ
OFF_WRITTEN = C.MM_OFF_WRITTEN
OFF_DROPPED = C.MM_OFF_DROPPED
OFF_BLOCKED = C.MM_OFF_BLOCKED
OFF_WAKES = C.MM_OFF_WAKES
OFF_CONSUMER_POS = C.MM_OFF_CONSUMER_POS
OFF_READ = C.MM_OFF_READ
OFF_PARKS = C.MM_OFF_PARKS
OFF_SKIPPED = C.MM_OFF_SKIPPED
OFF_PARKED = C.MM_OFF_PARKED
OFF_DOORBELL_LEN = C.MM_OFF_DOORBELL_LEN
OFF_DOORBELL = C.MM_OFF_DOORBELL
DOORBELL_MAX = C.MM_DOORBELL_MAX
OFF_WAKE_ADDR = C.MM_OFF_WAKE_ADDR
OFF_PRODUCER_PID = C.MM_OFF_PRODUCER_PID
OFF_PRODUCER_BEAT = C.MM_OFF_PRODUCER_BEAT
OFF_CONSUMER_PID = C.MM_OFF_CONSUMER_PID
OFF_CONSUMER_BEAT = C.MM_OFF_CONSUMER_BEAT
OFF_DTYPE_DESCR = C.MM_OFF_DTYPE_DESCR
DTYPE_DESCR_MAX = C.MM_DTYPE_DESCR_MAX

POLICY_DROP = C.MM_POLICY_DROP
POLICY_BLOCK = C.MM_POLICY_BLOCK
POLICIES = {"drop": POLICY_DROP, "block": POLICY_BLOCK}

PARK_NONE = C.MM_PARK_NONE
PARK_FUTEX = C.MM_PARK_FUTEX
PARK_DOORBELL = C.MM_PARK_DOORBELL
PARK_SHARED = C.MM_PARK_SHARED
FULL = C.MM_FULL


def dtype_description(dtype: np.dtype) -> bytes:
    """Canonical text of a record dtype: names, formats, offsets and size, all of it compared."""
    fields = sorted(((n, f[0].str, f[1]) for n, f in dtype.fields.items()), key=lambda t: t[2])
    text = f"{dtype.itemsize}:" + ";".join(f"{n},{s},{o}" for n, s, o in fields)
    raw = text.encode()
    if len(raw) > DTYPE_DESCR_MAX:
        raise ValueError(f"record dtype description is {len(raw)} bytes, max {DTYPE_DESCR_MAX}")
    return raw


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def check_record_dtype(dtype: np.dtype) -> None:
    """Refuse dtypes the ring cannot carry: see engine/records.py for the rules."""
    if dtype.names is None or dtype.names[0] != "seq" or dtype.fields["seq"][0] != np.dtype("i8") \
            or dtype.fields["seq"][1] != 0:
        raise ValueError("a ring record must start with an int64 field named 'seq' at offset 0")
    if dtype.itemsize % CACHE_LINE:
        raise ValueError(f"record size {dtype.itemsize} is not a multiple of {CACHE_LINE} bytes")
