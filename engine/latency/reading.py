"""How a latency figure is read by a person: which percentiles a sample supports, the plain
name of each hop, and the headline. One place, so the report, `mm status` and the plot agree.

A percentile q is *supported* when at least MIN_TAIL samples lie beyond it: P50 needs 20,
P90 100, P99 1,000, P99.9 10,000. Below that the "P99" of a run is one of its few largest
samples, not a tail estimate, so it is not printed. The headline of a run under 1,000 orders
gives P50, P90 (from HEADLINE_P90_MIN orders: a rough mark of the tail, labelled with the
count) and the maximum instead of a P99.
"""
from __future__ import annotations

MIN_TAIL = 10
HEADLINE_P90_MIN = 50       # orders: the headline's P90 then has at least 5 beyond it

# <role>.<histogram> -> what a trader calls it (the file names keep the engineering name)
HOP_NAMES = {
    "feed.arrival_to_decoded": "feed: frame arrival -> decoded",
    "feed.decoded_to_published": "feed: decoded -> in the md ring",
    "feed.arrival_to_published": "feed: frame arrival -> in the md ring (whole feed)",
    "quoter.md_published_to_read": "md ring hand-off (feed -> quoter)",
    "quoter.quote_step": "quoter: strategy + risk step",
    "quoter.read_to_intent_published": "quoter: tick read -> order intent in the ring",
    "sender.intent_published_to_read": "orders ring hand-off (quoter -> sender)",
    "sender.sign": "sender: sign",
    "sender.encode_send": "sender: encode + write",
    "sender.read_to_written": "sender: intent read -> bytes written",
    "sender.tick_to_order": "TICK-TO-ORDER: frame arrival -> order bytes written",
    "sender.order_round_trip": "venue round trip: request written -> its answer read",
    "quoter.fill_published_to_read": "answers ring hand-off (sender -> quoter)",
    "quoter.quote_lag": "QUOTE LAG: wish moved -> ack at the wish (quoter)",
}


def plain_hop(key: str) -> str:
    """The plain name of a hop key such as 'sender.tick_to_order' (the key when unknown)."""
    return HOP_NAMES.get(key, key)


def supported(q: float, count: int) -> bool:
    """Whether `count` samples support percentile q (MIN_TAIL of them beyond it); the maximum
    (q = 100) always is, once there is a sample."""
    return count > 0 and (q >= 100 or count * (1 - q / 100) >= MIN_TAIL)


def headline(st: dict, ceiling_us: float) -> str:
    """The tick-to-order headline from a histogram summary (`count`, `p50`, `p90`, `p99`,
    `p99.9`, `p100` in ns): the percentiles its count supports, the maximum, the count, and the
    verdict against the ceiling on the highest supported one."""
    n = st.get("count") or 0
    if not n:
        return "tick-to-order: no order was sent"
    shown = [q for q in (50, 90, 99, 99.9) if st.get(f"p{q:g}") is not None and (
        supported(q, n) or (q == 90 and n >= HEADLINE_P90_MIN))]
    if 99 in shown:
        shown = [q for q in shown if q != 90]
    parts = [f"P{q:g} {st[f'p{q:g}'] / 1e3:.1f} us" for q in shown]
    parts.append(f"max {st.get('p100', 0) / 1e3:.1f} us")
    text = (f"tick-to-order (frame arrival -> order bytes written): {', '.join(parts)} "
            f"over {n} orders")
    if 99 not in shown:
        text += f" (too few for a P99: that needs about {int(MIN_TAIL / 0.01):,})"
    if not shown:
        return text
    top = shown[-1]
    over = [f"P{q:g}" for q in shown if st[f"p{q:g}"] > ceiling_us * 1e3]
    verdict = (f"ABOVE the {ceiling_us:g} us ceiling at {', '.join(over)}" if over
               else f"P{top:g} within the {ceiling_us:g} us ceiling")
    return f"{text}: {verdict}"


def quote_lag_line(st: dict | None, lags: int, undone: int) -> str:
    """How long quotes lagged the strategy's wish (quoter.quote_lag, ns) and what share of the
    book moves that left a quote behind an order answered at the wish (`lags` begun, `undone`:
    the book came back first)."""
    n = (st or {}).get("count") or 0
    parts = [f"P{q:g} {st[f'p{q:g}'] / 1e3:,.1f} us" for q in (50, 90, 99)
             if n and st.get(f"p{q:g}") is not None and supported(q, n)]
    if n:
        parts.append(f"max {st.get('p100', 0) / 1e3:,.1f} us")
    share = f"{100 * n / lags:.0f}%" if lags else "-"
    return (f"quote lag (a book event moving a quote's wish -> the ack of an order at it): "
            f"{', '.join(parts) or 'none answered'}; {n} of {lags} moves answered at the wish "
            f"({share}), {undone} undone by the book before an answer")
