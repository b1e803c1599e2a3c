"""Log-linear (HDR-style) latency histograms in shared memory.

Bucketing (native/mm_native.c `hist_index`): values below 256 ns get one bucket each; above,
each power of two is split into 128 equal sub-buckets. A bucket's width is at most 1/128 of its
lower bound, and a percentile is reported at the bucket's midpoint, so any reported value is
within +-0.4% (1/256) of a true sample value at that rank (plus 0.5 ns below 256 ns). Values from
0 to 2^44 ns (~4.9 h) are kept; larger ones are clamped to the top and counted in `clamped`;
negative ones (stamps out of order) are counted in `negative` and recorded nowhere else.

Each process owns one segment `/mm.<instance>.hist-<role>` holding its named histograms; it is
the only writer (C.hist_record from Python, engine.native.nb_hist_record from numba, both
allocation-free). Readers (`mm status`, `mm report`, metrics, bench) attach and snapshot.
"""
from __future__ import annotations

import time

import numpy as np

from engine import _native as C
from engine.ring.segment import Segment, SegmentError, segment_name

WORDS = C.MM_HIST_WORDS
SUB_BITS = C.MM_HIST_SUB_BITS
FIRST = C.MM_HIST_FIRST_BUCKET
MAX_NAMES = 32
NAME_BYTES = 48
_HDR_BYTES = 64 + MAX_NAMES * NAME_BYTES          # magic, count, names
_MAGIC = 0x5453494847524D4D                        # "MMRGHIST"
RELATIVE_ERROR = 1.0 / (1 << SUB_BITS)             # half a sub-bucket: stated bound on error


def bucket_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Lower bound and width of every bucket (index i of the bucket array)."""
    half = 1 << (SUB_BITS - 1)
    idx = np.arange(C.MM_HIST_BUCKETS, dtype=np.int64)
    k = np.maximum((idx >> (SUB_BITS - 1)) - 1, 0)
    m = idx - (k << (SUB_BITS - 1))
    low = np.where(idx < 2 * half, idx, m << k)
    return low, np.int64(1) << k


_LOW, _WIDTH = bucket_bounds()


class Histogram:
    """A snapshot (a copy) of one histogram's words, with the statistics a report needs."""

    def __init__(self, name: str, words: np.ndarray):
        self.name = name
        self.words = np.array(words, dtype=np.int64, copy=True)

    @classmethod
    def empty(cls, name: str = "") -> "Histogram":
        return cls(name, np.zeros(WORDS, np.int64))

    @property
    def buckets(self) -> np.ndarray:
        return self.words[FIRST:]

    @property
    def count(self) -> int:
        return int(self.buckets.sum())

    @property
    def max(self) -> int:
        return int(self.words[C.MM_HIST_MAX]) if self.count else 0

    @property
    def min(self) -> int:
        return int(self.words[C.MM_HIST_MIN]) if self.count else 0

    @property
    def mean(self) -> float:
        return float(self.words[C.MM_HIST_SUM]) / self.count if self.count else 0.0

    @property
    def clamped(self) -> int:
        return int(self.words[C.MM_HIST_CLAMPED])

    @property
    def negative(self) -> int:
        """Samples below zero (stamps out of order): counted, not in any percentile."""
        return int(self.words[C.MM_HIST_NEGATIVE])

    def record(self, value_ns: int) -> None:
        """Add one sample to this (local, unshared) histogram."""
        C.hist_record(self.words.ctypes.data, int(value_ns))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n values drawn from this histogram's distribution (int64 ns): a bucket by its share
        of the count, then a point uniform within it (the bucket's own resolution)."""
        b = self.buckets
        if b.sum() <= 0:
            raise ValueError(f"histogram {self.name!r} is empty")
        k = rng.choice(len(b), size=n, p=b / b.sum())
        return _LOW[k] + (rng.random(n) * _WIDTH[k]).astype(np.int64)

    def percentile(self, q: float) -> float:
        """Value at percentile q (0-100): the midpoint of the bucket holding that rank."""
        b = self.buckets
        n = int(b.sum())
        if n == 0:
            return 0.0
        if q >= 100:
            return float(self.max)
        rank = max(1, int(np.ceil(q / 100.0 * n)))
        i = int(np.searchsorted(np.cumsum(b), rank))
        mid = _LOW[i] + (_WIDTH[i] - 1) / 2.0
        return float(min(max(mid, self.min), self.max))

    def percentiles(self, qs=(50, 90, 99, 99.9, 99.99, 100)) -> dict[float, float]:
        return {q: self.percentile(q) for q in qs}

    def merge(self, other: "Histogram") -> "Histogram":
        out = Histogram(self.name, self.words)
        out.words[FIRST:] += other.buckets
        out.words[C.MM_HIST_SUM] += other.words[C.MM_HIST_SUM]
        out.words[C.MM_HIST_CLAMPED] += other.words[C.MM_HIST_CLAMPED]
        out.words[C.MM_HIST_NEGATIVE] += other.words[C.MM_HIST_NEGATIVE]
        out.words[C.MM_HIST_COUNT] += other.words[C.MM_HIST_COUNT]
        if other.count:
            out.words[C.MM_HIST_MIN] = min(self.min, other.min) if self.count else other.min
            out.words[C.MM_HIST_MAX] = max(self.max, other.max)
        return out

    def since(self, earlier: "Histogram") -> "Histogram":
        """What was recorded between the snapshot `earlier` and this one (same histogram).
        Min and max become the midpoints of the lowest and highest bucket that gained samples
        (the words cannot tell more), so they too are within the stated error."""
        out = Histogram(self.name, self.words)
        out.words[FIRST:] -= earlier.buckets
        for word in (C.MM_HIST_SUM, C.MM_HIST_COUNT, C.MM_HIST_CLAMPED, C.MM_HIST_NEGATIVE):
            out.words[word] -= earlier.words[word]
        gained = out.buckets.nonzero()[0]
        if len(gained):
            lo, hi = gained[0], gained[-1]
            out.words[C.MM_HIST_MIN] = max(self.min, _LOW[lo] + (_WIDTH[lo] - 1) // 2)
            out.words[C.MM_HIST_MAX] = min(self.max, _LOW[hi] + (_WIDTH[hi] - 1) // 2)
        return out

    def hdr_percentile_text(self, unit_ratio: float = 1000.0) -> str:
        """HdrHistogram `outputPercentileDistribution` text (values in us by default), which the
        standard HdrHistogram plotters read."""
        lines = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}", ""]
        b = self.buckets
        n = int(b.sum())
        cum = 0
        for i in np.nonzero(b)[0]:
            cum += int(b[i])
            p = cum / n
            value = (_LOW[i] + _WIDTH[i] - 1) / unit_ratio
            inv = f"{1.0 / (1.0 - p):14.2f}" if p < 1.0 else f"{'inf':>14}"
            lines.append(f"{value:12.3f} {p:14.12f} {cum:10d} {inv}")
        mean = self.mean / unit_ratio
        std = 0.0
        if n:
            mids = (_LOW + (_WIDTH - 1) / 2.0) / unit_ratio
            std = float(np.sqrt(np.sum(b * (mids - mean) ** 2) / n))
        lines.append(f"#[Mean    = {mean:12.3f}, StdDeviation   = {std:12.3f}]")
        lines.append(f"#[Max     = {self.max / unit_ratio:12.3f}, Total count    = {n:12d}]")
        lines.append(f"#[Buckets = {C.MM_HIST_BUCKETS:12d}, SubBuckets     = {1 << (SUB_BITS - 1):12d}]")
        return "\n".join(lines) + "\n"


class HistogramSet:
    """The named histograms one process writes, in one shared-memory segment."""

    def __init__(self, seg: Segment):
        self.seg = seg
        count = int(seg.words[1])
        self.names: list[str] = []
        for i in range(count):
            raw = bytes(seg.array[64 + i * NAME_BYTES: 64 + (i + 1) * NAME_BYTES])
            self.names.append(raw.rstrip(b"\0").decode())
        body = seg.array[_HDR_BYTES: _HDR_BYTES + count * WORDS * 8].view(np.int64)
        self.table = body.reshape(count, WORDS)
        self._addr = {n: self.table[i].ctypes.data for i, n in enumerate(self.names)}

    @classmethod
    def create(cls, instance: str, role: str, names: list[str]) -> "HistogramSet":
        """Create (or replace) the role's histogram segment, zeroed."""
        if len(names) > MAX_NAMES:
            raise ValueError(f"at most {MAX_NAMES} histograms per process")
        shm = segment_name(instance, f"hist-{role}")
        size = _HDR_BYTES + len(names) * WORDS * 8
        try:
            seg = Segment.create(shm, size)
        except SegmentError:
            # One writer per role: a leftover from an earlier run of this role is replaced.
            Segment.attach(shm).unlink()
            seg = Segment.create(shm, size)
        for i, n in enumerate(names):
            raw = n.encode()[:NAME_BYTES]
            seg.array[64 + i * NAME_BYTES: 64 + i * NAME_BYTES + len(raw)] = np.frombuffer(raw, np.uint8)
        seg.words[1] = len(names)
        C.store_release(seg.addr, _MAGIC)
        return cls(seg)

    @classmethod
    def attach(cls, instance: str, role: str) -> "HistogramSet":
        seg = Segment.attach(segment_name(instance, f"hist-{role}"))
        deadline = time.monotonic() + 0.5
        while C.load_acquire(seg.addr) != _MAGIC:
            if time.monotonic() > deadline:
                raise SegmentError(f"{seg.shm_name} is not a histogram segment")
            time.sleep(0.005)
        return cls(seg)

    def addr(self, name: str) -> int:
        """Address of histogram `name` for C.hist_record / nb_hist_record."""
        return self._addr[name]

    def record(self, name: str, value_ns: int) -> None:
        C.hist_record(self._addr[name], value_ns)

    def snapshot(self, name: str) -> Histogram:
        return Histogram(name, self.table[self.names.index(name)])

    def snapshots(self) -> dict[str, Histogram]:
        return {n: self.snapshot(n) for n in self.names}

    def close(self) -> None:
        self.table = None
        self.seg.close()

    def unlink(self) -> None:
        self.seg.unlink()
