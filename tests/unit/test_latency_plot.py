"""latency.png as a trader reads it (engine/report.py): the ceiling drawn, the headline as the
title, each curve cut where its samples run out, a hop hidden under another drawn once with
both names, distinct line styles, the legend outside the axes."""
from __future__ import annotations


import numpy as np
import pytest

from engine.latency.histogram import Histogram
from engine.report import _plot

matplotlib = pytest.importorskip("matplotlib")


def _hist(name: str, values) -> Histogram:
    h = Histogram.empty(name)
    for v in values:
        h.record(int(v))
    return h


def test_latency_png_shows_ceiling_headline_and_cut_curves(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    feed = rng.lognormal(11, 0.6, 5000)                  # ~60 us, 5,000 samples
    hists = {"feed": {"arrival_to_published": _hist("a", feed),
                      "arrival_to_decoded": _hist("b", feed * 1.001)},   # hidden under it
             "sender": {"tick_to_order": _hist("t", rng.lognormal(12.5, 0.5, 66))}}
    for role, by in hists.items():
        np.savez(tmp_path / f"{role}.hist.npz", **{n: h.words for n, h in by.items()})
    drawn = {}
    import matplotlib.figure

    real_savefig = matplotlib.figure.Figure.savefig

    def keep(fig, *a, **kw):
        drawn["fig"] = fig
        return real_savefig(fig, *a, **kw)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    _plot(tmp_path, {"latency_ceiling_us": 500})
    assert (tmp_path / "latency.png").stat().st_size > 10_000
    ax = drawn["fig"].axes[0]
    title = ax.get_title().replace("\n", " ")
    assert "HEADLINE tick-to-order" in title and "over 66 orders" in title
    assert "too few for a P99" in title
    lines = [ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]
    labels = [ln.get_label() for ln in lines]
    assert len(lines) == 2, labels                        # the hidden twin is merged
    assert any("= feed: frame arrival -> decoded" in lab for lab in labels), labels
    t2o = next(ln for ln in lines if ln.get_label().startswith("TICK-TO-ORDER"))
    assert max(t2o.get_xdata()) <= 66                     # x = 1/(1-q): stops at 1 - 1/n
    ceiling = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [500, 500]]
    assert ceiling, "no ceiling line at 500 us"
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1   # beside the axes
    assert len({(ln.get_color(), ln.get_linestyle()) for ln in lines}) == len(lines)
