"""Latency accounting: log-linear histograms in shared memory (one writer each) and reports."""
from engine.latency.histogram import Histogram, HistogramSet  # noqa: F401
