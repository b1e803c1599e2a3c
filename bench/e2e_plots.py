"""PNG plots of the end-to-end bench (matplotlib, the bench extra): percentile plots of
wire-to-wire per rate (engine against the baselines), of the engine's hops per rate, and
latency against event rate. Reporting code only."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from engine.latency.reading import plain_hop
from engine.report import plot_percentiles


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _grid(plt, n: int):
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.5 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _samples_curve(samples):
    s = np.asarray(samples)
    return lambda q: np.percentile(s, q)


def _percentile_grid(curves_by_rate: dict, title: str, path: Path) -> None:
    """One percentile plot per rate (rate -> label -> value-at-percentile function)."""
    rates = sorted(r for r, curves in curves_by_rate.items() if curves)
    if not rates:                  # nothing measured (e.g. the engine was not a contender)
        return
    plt = _pyplot()
    fig, axes = _grid(plt, len(rates))
    for ax, rate in zip(axes, rates):
        plot_percentiles(ax, curves_by_rate[rate])
        ax.set_title(title.format(rate=rate))
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")    # the legends sit beside the axes
    plt.close(fig)


def wire_percentiles(pooled: dict, labels: dict, path: Path) -> None:
    """pooled: rate -> contender -> wire samples (ns), every round together."""
    _percentile_grid({rate: {f"{labels[c]} (n={len(s)})": _samples_curve(s)
                             for c, s in by.items() if len(s)} for rate, by in pooled.items()},
                     "wire-to-wire at {rate:,} events/s (venue side)", path)


def engine_hops(hops: dict, wire: dict, path: Path) -> None:
    """hops: rate -> hop name -> Histogram (rounds merged); wire: rate -> engine samples (ns)."""
    curves = {}
    for rate, by in hops.items():
        curves[rate] = {f"{plain_hop(name)} (n={h.count})": (h.percentile, h.count)
                        for name, h in by.items() if h.count}
        if len(wire.get(rate, [])):
            curves[rate][f"wire-to-wire, venue side (n={len(wire[rate])})"] = \
                (_samples_curve(wire[rate]), len(wire[rate]))
    _percentile_grid(curves, "engine hops at {rate:,} events/s", path)


def latency_vs_rate(latency: dict, labels: dict, path: Path) -> None:
    """latency: contender -> rate -> {"p50", "p99", "events_per_s"} (us): P50 solid, P99
    dashed, against the rate the venue delivered."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.cm.tab10.colors
    for i, (name, by_rate) in enumerate(latency.items()):
        rates = sorted(by_rate)
        x = [by_rate[r]["events_per_s"] for r in rates]
        for key, style in (("p50", "-o"), ("p99", "--s")):
            ax.plot(x, [by_rate[r][key] for r in rates], style, color=colors[i % 10],
                    label=f"{labels[name]} {key.upper()}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("book events per second (delivered by the venue)")
    ax.set_ylabel("wire-to-wire latency (us)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("latency against event rate (median of rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
