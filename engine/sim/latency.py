"""Wire-to-wire latency as the venue sees it: market frame written -> order frame received.

The server stamps perf_counter_ns() just before it writes the first copy of each bookTicker
frame (per symbol, per update id u) and first thing when an order frame arrives. An order whose
newClientOrderId is `<tag>-<u>-<n>` yields one sample, for the first order per (symbol, u).
Stamps live in a fixed ring per symbol indexed by u, so the memory is bounded and a stamp is two
list stores.
"""
from __future__ import annotations

from array import array

_SLOTS = 1 << 16              # update ids remembered per symbol (minutes of book events)
_MASK = _SLOTS - 1


class WireClock:
    """Frame-written stamps per (symbol, update id) and the samples they produce."""

    def __init__(self, symbols: list[str]):
        self.index = {s: i for i, s in enumerate(symbols)}
        self._u = [[-1] * _SLOTS for _ in symbols]     # update id held by each slot
        self._t = [[0] * _SLOTS for _ in symbols]      # its write stamp
        self.samples = array("q")
        self.orders_seen = 0          # order frames whose client id parsed as <tag>-<u>-<n>

    def stamp(self, symbol_index: int, update_id: int, t_ns: int) -> None:
        """Record that the frame for `update_id` is being written at `t_ns` (first write)."""
        slot = update_id & _MASK
        us = self._u[symbol_index]
        if us[slot] != update_id:
            us[slot] = update_id
            self._t[symbol_index][slot] = t_ns

    def on_order(self, t_arrival_ns: int, symbol, client_id) -> None:
        """Account for an order frame that arrived at `t_arrival_ns`."""
        i = self.index.get(symbol)
        if i is None or not isinstance(client_id, str):
            return
        parts = client_id.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return
        self.orders_seen += 1
        u = int(parts[1])
        slot = u & _MASK
        us = self._u[i]
        if us[slot] == u:
            us[slot] = -2             # consumed: later orders for this u give no sample
            self.samples.append(t_arrival_ns - self._t[i][slot])

    def report(self) -> dict:
        """count, p50, p90, p99, p999, max (ns) of the samples so far."""
        return percentiles(self.samples)


def percentiles(samples) -> dict:
    """Nearest-rank percentiles of integer samples."""
    n = len(samples)
    if n == 0:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "p999": None, "max": None}
    s = sorted(samples)

    def rank(q: float) -> int:
        return s[min(n - 1, max(0, int(-(-q * n // 1)) - 1))]
    return {"count": n, "p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99),
            "p999": rank(0.999), "max": s[-1]}
