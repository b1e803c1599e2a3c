"""Shared benchmark plumbing: the machine description and table printing."""
from __future__ import annotations

import numpy as np

from engine.report import machine


def describe_machine() -> str:
    m = machine()
    return (f"{m['cpu']} | {m['cores']} cores, usable {m['usable_cores']}, isolated "
            f"{m['isolated_cores'] or 'none'} | kernel {m['kernel']} | Python {m['python']}")


def pct(lat_ns: np.ndarray) -> dict:
    if len(lat_ns) == 0:
        return {"p50": float("nan"), "p99": float("nan"), "p999": float("nan"), "max": float("nan")}
    p50, p99, p999 = np.percentile(lat_ns, [50, 99, 99.9])
    return {"p50": float(p50), "p99": float(p99), "p999": float(p999), "max": float(lat_ns.max())}


def table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    """cols: (key, header, format spec)."""
    head = "  ".join(f"{h:>{max(len(h), 10)}}" if i else f"{h:<34}" for i, (_, h, _) in enumerate(cols))
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for i, (k, h, f) in enumerate(cols):
            v = r.get(k, "")
            s = format(v, f) if isinstance(v, (int, float)) and f else str(v)
            cells.append(f"{s:<34}" if i == 0 else f"{s:>{max(len(h), 10)}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)
