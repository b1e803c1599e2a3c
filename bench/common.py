"""Shared benchmark plumbing: the machine description, table printing, one signed request to
the simulator's WebSocket API."""
from __future__ import annotations

import json

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


def venue_request(api_url: str, method: str, params: dict, timeout_s: float = 10.0) -> dict:
    """Send one HMAC-signed request (demo keys) to the simulator's WS API and return the
    decoded answer. Set-up and clean-up only (a blocking websockets client)."""
    from websockets.sync.client import connect

    from bench.baselines.asyncio_bot import signed_request

    with connect(api_url, open_timeout=timeout_s, close_timeout=2.0) as ws:
        ws.send(signed_request(1, method, params))
        return json.loads(ws.recv(timeout=timeout_s))
