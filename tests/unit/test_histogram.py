"""Histogram percentiles agree with numpy's on the same samples within the stated error."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.latency.histogram import RELATIVE_ERROR, Histogram, HistogramSet


def _within(h: Histogram, samples: np.ndarray, q: float) -> bool:
    got = h.percentile(q)
    # The reported value is the midpoint of the bucket holding the q-th ranked sample: compare
    # with that sample (numpy's 'inverted_cdf' method picks exactly the ranked sample).
    want = float(np.percentile(samples, q, method="inverted_cdf"))
    return abs(got - want) <= max(RELATIVE_ERROR * want, 0.5)


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "bimodal", "tiny"])
def test_percentiles_match_numpy(dist):
    rng = np.random.default_rng(7)
    if dist == "lognormal":
        s = rng.lognormal(10, 1.5, 200_000)
    elif dist == "uniform":
        s = rng.uniform(0, 5e6, 200_000)
    elif dist == "bimodal":
        s = np.concatenate([rng.normal(30_000, 2_000, 150_000), rng.normal(4e6, 1e5, 1_000)])
    else:
        s = rng.integers(0, 300, 50_000)
    s = np.clip(s, 0, None).astype(np.int64)
    h = Histogram.empty()
    for v in s:
        h.record(int(v))
    assert h.count == len(s)
    assert h.min == s.min() and h.max == s.max()
    for q in (1, 50, 90, 99, 99.9, 99.99):
        assert _within(h, s, q), (q, h.percentile(q), np.percentile(s, q))
    assert h.percentile(100) == s.max()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1 << 43), min_size=1, max_size=400),
       st.sampled_from([50, 90, 99, 99.9]))
def test_any_samples_within_error(values, q):
    h = Histogram.empty()
    for v in values:
        h.record(v)
    assert _within(h, np.array(values, dtype=np.int64), q)


def test_too_large_is_clamped_and_negative_is_counted_apart():
    h = Histogram.empty()
    h.record(-5)                       # out-of-order stamps: not a fast sample
    h.record(1 << 50)
    h.record(1000)
    assert h.clamped == 1 and h.negative == 1 and h.count == 2
    assert h.min == 1000                # nothing was folded into the lowest bucket


def test_shared_histograms_seen_by_a_reader(instance):
    w = HistogramSet.create(instance, "feed", ["a", "b"])
    try:
        for v in range(1, 1001):
            w.record("a", v * 1000)
        r = HistogramSet.attach(instance, "feed")
        assert r.names == ["a", "b"]
        snap = r.snapshot("a")
        assert snap.count == 1000
        assert abs(snap.percentile(50) - 500_000) <= 500_000 * RELATIVE_ERROR + 1000
        assert r.snapshot("b").count == 0
        text = snap.hdr_percentile_text()
        assert text.splitlines()[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        assert "#[Max     =" in text and "Total count    =         1000" in text
        r.close()
    finally:
        w.close()
        w.unlink()


def test_numba_writer_matches_python_writer():
    from numba import njit

    from engine.native import nb_hist_record

    @njit
    def fill(addr, values):
        for v in values:
            nb_hist_record(addr, v)

    values = np.random.default_rng(3).integers(0, 10**7, 10_000)
    a, b = Histogram.empty(), Histogram.empty()
    fill(a.words.ctypes.data, values)
    for v in values:
        b.record(int(v))
    assert np.array_equal(a.words, b.words)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1 << 40), max_size=200),
       st.lists(st.integers(0, 1 << 40), min_size=1, max_size=200),
       st.sampled_from([50, 99, 99.9, 100]))
def test_since_is_what_was_recorded_between_snapshots(first, then, q):
    h = Histogram.empty()
    for v in first:
        h.record(v)
    earlier = Histogram(h.name, h.words)
    for v in then:
        h.record(v)
    only_then = Histogram.empty()
    for v in then:
        only_then.record(v)
    got = h.since(earlier)
    assert got.count == len(then) and got.mean == only_then.mean
    assert np.array_equal(got.buckets, only_then.buckets)
    # min and max are bucket midpoints: within the stated error of the true ones
    assert abs(got.min - min(then)) <= max(RELATIVE_ERROR * min(then), 1)
    assert abs(got.max - max(then)) <= max(RELATIVE_ERROR * max(then), 1)
    assert _within(got, np.array(then, dtype=np.int64), q)
