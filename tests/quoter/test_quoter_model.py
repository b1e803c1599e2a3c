"""The quoting model on hand-made situations: default quotes are sensible for BTCUSDT and
ETHUSDT, inventory skews the quotes, a breached position keeps only the reducing side,
nothing is quoted before RESUME, the drawdown limit fires, the rate limit is a sliding window."""
from __future__ import annotations

import math

import numpy as np
import pytest
from quoter_harness import Harness

from engine.instruments import DEFAULT_INSTRUMENTS
from engine.quoter import model
from engine.quoter.config import QuoterConfig
from engine.quoter import rate
from engine.quoter.arrays import (
    C_RISK_POSITION, G_DRAWDOWN_HIT, G_WALL_OFFSET, G_WORDS, RATE_BUCKET_10S_NS,
    RATE_WINDOW_10S_NS,
)
from engine.quoter.state import first_order_id
from engine.strategies.glft.model import coefficients as glft_coefficients
from engine.records import (
    ACTION_CANCEL, ACTION_NEW, FILL_POSITION, FILL_RESUME, FILL_TRADE, MD_BBO, MD_DTYPE,
    SIDE_BUY, SIDE_SELL,
)

BTC, ETH = 0, 1
NOW = 5_000_000_000


def _md(i, bid_px, ask_px, bid_qty=100_000, ask_qty=100_000, update_id=1):
    r = np.zeros(1, MD_DTYPE)[0]
    r["instrument"], r["kind"], r["update_id"] = i, MD_BBO, update_id
    r["bid_px"], r["ask_px"], r["bid_qty"], r["ask_qty"] = bid_px, ask_px, bid_qty, ask_qty
    return r


def _quotes(intents, side):
    return [(it[7], it[8]) for it in intents if it[4] == side and it[3] == ACTION_NEW]


def _resumed(q=None, position=(0, 0)) -> Harness:
    """Started flat (the start-up POSITION is the neutral point), then a reconcile POSITION
    finds `position` away from it."""
    h = Harness(q or QuoterConfig(), DEFAULT_INSTRUMENTS, with_reference=True)
    for i in range(len(position)):
        h.fill(i, FILL_POSITION, qty=0)
    h.fill(0, FILL_RESUME)
    for i, pos in enumerate(position):
        if pos:
            h.fill(i, FILL_POSITION, qty=pos)
    return h


def test_holdings_at_start_are_neutral():
    """An account holding 10 BTC before quoting starts quotes both sides around its holdings,
    symmetric with a flat account, instead of dumping them."""
    flat = _resumed()
    held = Harness(QuoterConfig(), DEFAULT_INSTRUMENTS, with_reference=True)
    held.fill(BTC, FILL_POSITION, qty=1_000_000)
    held.fill(1, FILL_POSITION, qty=0)
    held.fill(0, FILL_RESUME)
    for h in (flat, held):
        h.md(_md(BTC, 6_000_000, 6_000_001), NOW)
    a, b = flat.end_batch(NOW), held.end_batch(NOW)
    assert _quotes(b, SIDE_BUY) == _quotes(a, SIDE_BUY) != []
    assert _quotes(b, SIDE_SELL) == _quotes(a, SIDE_SELL) != []
    assert held.st.cnt[C_RISK_POSITION] == 0


def test_glft_coefficients_match_the_closed_form():
    c1, c2 = glft_coefficients(0.01, 0.05, 10.0)
    assert c1 == pytest.approx(100 * math.log(1.2))
    assert c2 == pytest.approx(math.sqrt(0.01 / (2 * 10 * 0.05) * 1.2 ** 6))


@pytest.mark.parametrize("i,mid_px,lo_usd,hi_usd", [(BTC, 6_000_000, 0.05, 5.0),
                                                    (ETH, 300_000, 0.02, 2.0)])
def test_default_quotes_are_sensible(i, mid_px, lo_usd, hi_usd):
    """Default parameters after some 1 bp/sqrt(s) volatility: a spread from a few ticks to a few
    dollars, on tick, around the mid, one order size per level, levels 10 ticks apart."""
    h = _resumed()
    rng = np.random.default_rng(1)
    mid = mid_px
    now = NOW
    for k in range(600):                    # 60 s of 10 updates per second
        now += 100_000_000
        mid += int(rng.normal(0, mid * 1e-4 * math.sqrt(0.1)))
        h.md(_md(i, mid, mid + 1, update_id=k), now)
    out = h.end_batch(now)
    bids, asks = _quotes(out, SIDE_BUY), _quotes(out, SIDE_SELL)
    assert len(bids) == len(asks) == 2
    spread_usd = (asks[0][0] - bids[0][0]) / 100
    assert lo_usd <= spread_usd <= hi_usd, spread_usd
    assert bids[0][0] < mid < asks[0][0]
    assert bids[0][0] - bids[1][0] == 10 and asks[1][0] - asks[0][0] == 10
    size = DEFAULT_INSTRUMENTS[i].lot * (200 if i == BTC else 20)    # "0.002"
    assert {b[1] for b in bids + asks} == {size}


def test_long_inventory_lowers_both_quotes():
    flat, long_ = _resumed(), _resumed(position=(600, 0))
    for h in (flat, long_):
        h.md(_md(BTC, 6_000_000, 6_000_001), NOW)
        h.md(_md(BTC, 6_000_300, 6_000_301), NOW + 1_000_000_000)   # some volatility
    a, b = flat.end_batch(NOW + 10**9), long_.end_batch(NOW + 10**9)
    assert _quotes(b, SIDE_BUY)[0][0] < _quotes(a, SIDE_BUY)[0][0]
    assert _quotes(b, SIDE_SELL)[0][0] < _quotes(a, SIDE_SELL)[0][0]


def test_breached_position_keeps_only_the_reducing_side():
    # max_position 0.01 BTC = 1000 units; the venue says we hold 0.02
    h = _resumed(position=(2000, 0))
    h.md(_md(BTC, 6_000_000, 6_000_001), NOW)
    out = h.end_batch(NOW)
    assert _quotes(out, SIDE_BUY) == []
    assert len(_quotes(out, SIDE_SELL)) == 2
    assert h.st.cnt[C_RISK_POSITION] == 2
    # a fill that brings it back inside the limit lets bids return
    h.fill(BTC, FILL_TRADE, order_id=0, side=SIDE_SELL, price=6_000_001, qty=1800)
    out = h.end_batch(NOW + 1)
    assert len(_quotes(out, SIDE_BUY)) == 2


def test_nothing_is_quoted_before_resume():
    h = Harness(QuoterConfig(), DEFAULT_INSTRUMENTS, with_reference=True)
    h.md(_md(BTC, 6_000_000, 6_000_001), NOW)
    assert h.end_batch(NOW) == []
    h.fill(0, FILL_RESUME)
    assert len(h.end_batch(NOW + 1)) == 4


def test_crossed_book_pulls_quotes():
    h = _resumed()
    h.md(_md(BTC, 6_000_000, 6_000_001), NOW)
    assert len(h.end_batch(NOW)) == 4
    h.md(_md(BTC, 6_000_002, 6_000_001), NOW + 1)
    assert [it[3] for it in h.end_batch(NOW + 1)] == [ACTION_CANCEL] * 4


def test_drawdown_limit_fires():
    h = _resumed(QuoterConfig(max_drawdown="5"))
    h.md(_md(BTC, 6_000_000, 6_000_002), NOW)
    h.end_batch(NOW)
    h.fill(BTC, FILL_TRADE, side=SIDE_BUY, price=6_000_001, qty=1000)   # 0.01 BTC
    h.md(_md(BTC, 5_940_000, 5_940_002), NOW + 1)                        # -600 USDT * 0.01
    h.end_batch(NOW + 1)
    assert h.st.g[G_DRAWDOWN_HIT] == 1 and h.ref.drawdown_hit


def test_rate_limit_never_lets_a_window_hold_more_than_the_limit():
    """Allowed outcomes: any 10 s span holds at most `limit` taken orders; after the window
    has passed, orders are taken again; a refund (an order the sender did not send) gives one
    back; the day window refuses too and then charges nothing to the 10 s one."""
    g = np.zeros(G_WORDS, np.int64)
    w = RATE_WINDOW_10S_NS
    r10 = rate.new_window(3, w, RATE_BUCKET_10S_NS)
    rday = rate.new_window(5, 86_400 * 10**9, 600 * 10**9)
    times = [0, 1, 2, 3, w - 1, w, w + RATE_BUCKET_10S_NS, w + RATE_BUCKET_10S_NS + 1,
             2 * w + 2 * RATE_BUCKET_10S_NS]
    taken = [t for t in times if model.rate_take(g, r10, rday, NOW + t)]
    assert taken[:3] == [0, 1, 2]
    for t in taken:                           # no 10 s span holds more than 3
        assert sum(1 for u in taken if t <= u < t + w) <= 3
    assert len(taken) == 5                    # the day window (5) is full now ...
    assert not model.rate_take(g, r10, rday, NOW + 3 * w)
    assert rate.count(r10, NOW + 3 * w) == 0  # ... and the refused order charged nothing
    assert rate.refund(rday, NOW + taken[-1]) and model.rate_take(g, r10, rday, NOW + 3 * w)


def test_rate_windows_use_wall_time_and_survive_in_their_array():
    """The windows live in a plain int64 array (a file in production): a new QuoterState over
    the same words sees the orders an earlier one took."""
    from engine.quoter.state import QuoterState, rate_window_words
    words = np.zeros(sum(rate_window_words()), np.int64)
    q = QuoterConfig(rate_per_10s=2)
    a = QuoterState(q, DEFAULT_INSTRUMENTS, first_id=1, rate_words=words)
    assert model.rate_take(a.g, a.rl10, a.rlday, NOW)
    assert model.rate_take(a.g, a.rl10, a.rlday, NOW + 1)
    b = QuoterState(q, DEFAULT_INSTRUMENTS, first_id=1, rate_words=words)   # a restart
    b.g[G_WALL_OFFSET] = a.g[G_WALL_OFFSET]
    assert not model.rate_take(b.g, b.rl10, b.rlday, NOW + 2)
    c = QuoterState(QuoterConfig(rate_per_10s=5), DEFAULT_INSTRUMENTS, first_id=1,
                    rate_words=words)          # other limits: a fresh window
    assert rate.count(c.rl10, a.g[G_WALL_OFFSET] + NOW) == 0


def test_first_order_id_grows_across_restarts_within_a_second_and_stays_short():
    t = 1_760_000_000 * 10**9
    a, b = first_order_id(t), first_order_id(t + 1_000_000)    # a restart 1 ms later
    assert b - a == 1000 and len(str(b)) <= 15
    # a run never takes more than one id per microsecond: the next start is above its ids
    assert first_order_id(t + 10**9) > a + 10**5


def test_fixed_spread_quotes_around_the_mid_skewed_by_inventory_up_to_its_cap():
    """half_spread_ticks either side of the mid, levels spacing apart; each order size held
    long moves both quotes skew_ticks down, never more than max_skew_ticks."""
    from engine.strategies.fixed_spread.config import FixedSpreadConfig

    q = QuoterConfig(strategy="fixed_spread", levels=2, level_spacing_ticks=10,
                     max_position="1", max_notional="1000000",
                     fixed_spread=FixedSpreadConfig(half_spread_ticks=5, skew_ticks=2,
                                                    max_skew_ticks=3))
    size = 200                                          # "0.002" BTC
    for held, shift in ((0, 0), (size, 2), (-size, -2), (3 * size, 3)):
        h = _resumed(q, position=(held, 0))
        h.md(_md(BTC, 6_000_000, 6_000_002), NOW)       # mid 6_000_001 (tick = 1)
        out = h.end_batch(NOW)
        assert _quotes(out, SIDE_BUY) == [(5_999_996 - shift, size), (5_999_986 - shift, size)]
        assert _quotes(out, SIDE_SELL) == [(6_000_006 - shift, size), (6_000_016 - shift, size)]


def test_a_strategy_pushed_through_the_book_is_moved_back_as_a_ladder():
    """The core keeps quotes off the other side: a skew past the touch moves the whole side,
    levels keep their spacing, the best level one tick inside."""
    from engine.strategies.fixed_spread.config import FixedSpreadConfig

    q = QuoterConfig(strategy="fixed_spread", levels=2, level_spacing_ticks=10,
                     max_position="1", max_notional="1000000",
                     fixed_spread=FixedSpreadConfig(half_spread_ticks=1, skew_ticks=20,
                                                    max_skew_ticks=100))
    h = _resumed(q, position=(-400, 0))                 # short 2 sizes: 40 ticks up
    h.md(_md(BTC, 6_000_000, 6_000_002), NOW)
    out = h.end_batch(NOW)
    assert _quotes(out, SIDE_BUY) == [(6_000_001, 200), (5_999_991, 200)]
    assert _quotes(out, SIDE_SELL) == [(6_000_042, 200), (6_000_052, 200)]


def test_tick_to_order_is_timed_from_the_oldest_tick_of_a_batch():
    """Two ticks read in one batch: the intents answer the newer (its update id) but carry the
    older one's arrival, so the batch's wait counts in tick-to-order."""
    from quoter_harness import FIELDS
    h = _resumed()
    older, newer = _md(BTC, 6_000_000, 6_000_001, update_id=7), _md(BTC, 6_000_010, 6_000_011,
                                                                     update_id=8)
    older["ts_arrival"], newer["ts_arrival"] = 300_000, 100_000    # 300 and 100 us before NOW
    h.md(older, NOW)
    h.md(newer, NOW)
    intents = h.end_batch(NOW)
    assert len(intents) == 4
    assert {it[FIELDS.index("update_id")] for it in intents} == {8}
    assert {it[FIELDS.index("ts_arrival")] for it in intents} == {NOW - 300_000}


def test_staleness_is_the_books_age_not_when_it_was_read():
    """A book that arrived longer ago than stale_after is stale however fresh its read."""
    h = Harness(QuoterConfig(stale_after_ms=100), DEFAULT_INSTRUMENTS, with_reference=False)
    h.fill(0, FILL_POSITION, qty=0)
    h.fill(1, FILL_POSITION, qty=0)
    h.fill(0, FILL_RESUME)
    st = h.st

    def read(arrival, now):
        model.on_md(st.arrays, BTC, MD_BBO, 1, 6_000_000, 100_000, 6_000_001, 100_000, arrival,
                    arrival + 1_000, now)
        return h.end_batch(now)

    assert read(NOW - 200_000_000, NOW) == []         # 200 ms old when read: not quoted
    assert len(read(NOW + 1_000_000 - 50_000, NOW + 1_000_000)) == 4   # 50 us old: quoted


def test_reset_stops_quoting_until_the_next_resume():
    """Issue 18 item 7: RESET (a new sender) is followed by POSITION then RESUME; between them
    the quoter must not quote on the inventory it had before (G_RESUMED cleared)."""
    from engine.quoter.arrays import G_RESUMED
    from engine.records import ACTION_RESET_SEEN, ALL_INSTRUMENTS, FILL_RESET
    h = _resumed()
    h.md(_md(BTC, 6_000_000, 6_000_001), NOW)
    assert len(h.end_batch(NOW)) == 4
    h.fill(0, FILL_RESET, order_id=77)
    assert h.st.g[G_RESUMED] == 0 and not h.ref.resumed
    h.md(_md(BTC, 6_000_100, 6_000_101), NOW + 1)
    # forgotten slots are not re-quoted yet; the RESET's token comes back to the sender first
    assert h.end_batch(NOW + 1) == [(77, 0, ALL_INSTRUMENTS, ACTION_RESET_SEEN, 0, 0, 0, 0, 0, 0,
                                     0, 0, NOW + 1)]
    h.fill(BTC, FILL_POSITION, qty=0)
    assert h.end_batch(NOW + 2) == []
    h.fill(0, FILL_RESUME)
    assert len(h.end_batch(NOW + 3)) == 4


def _life(words, position, instruments=DEFAULT_INSTRUMENTS, q=None):
    """A quoter process start: its anchor restored from `words`, then the sender's POSITION
    (the venue's holdings now) and RESUME."""
    from engine.quoter.state import restore_anchor
    h = Harness(q or QuoterConfig(), instruments, with_reference=False)
    restored = restore_anchor(h.st, words, instruments)
    for i, pos in enumerate(position):
        h.fill(i, FILL_POSITION, qty=pos)
    h.fill(0, FILL_RESUME)
    return h, restored


def test_a_restart_keeps_the_position_limit_anchored(tmp_path):
    """Issue 18 item 6: the position reference is the holdings before the instance first
    quoted, across crash restarts: a quoter that bought up to max_position (0.01 BTC) and
    restarts quotes only the reducing side, instead of taking its inventory as the new
    neutral point (and buying another max_position)."""
    from engine.quoter.state import anchor_words, save_anchor
    from engine.state_dir import PersistentWords
    path = tmp_path / "mm.anchor"
    f = PersistentWords(path, anchor_words(2))
    h, restored = _life(f.array, (0, 0))
    assert not restored                                   # the first life: nothing kept yet
    h.fill(BTC, FILL_TRADE, side=SIDE_BUY, price=6_000_000, qty=1000)
    save_anchor(h.st, f.array)
    f.close()
    f = PersistentWords(path, anchor_words(2))            # the crash restart
    h2, restored = _life(f.array, (1000, 0))
    assert restored and h2.st.inst[BTC]["target"] == 0
    h2.md(_md(BTC, 6_000_000, 6_000_001), NOW)
    out = h2.end_batch(NOW)
    assert _quotes(out, SIDE_BUY) == [] and len(_quotes(out, SIDE_SELL)) == 2
    # another instrument table: its units differ, nothing is taken from the file
    other = DEFAULT_INSTRUMENTS[:1]
    assert not _life(np.array(f.array), (1000,), other)[1]
    f.close()


def test_a_restart_keeps_the_drawdown_measured_from_the_peak():
    """The peak and the PnL made so far survive a restart: 4 of a 5 USDT drawdown lost before
    the crash, the next 1 fires it; once it fired (and an operator resumed), a new life measures
    afresh."""
    from engine.quoter.arrays import G_PEAK_PNL
    from engine.quoter.state import anchor_words, save_anchor
    q = QuoterConfig(max_drawdown="5")
    words = np.zeros(anchor_words(2), np.int64)
    h, _ = _life(words, (0, 0), q=q)
    h.md(_md(BTC, 6_000_000, 6_000_002), NOW)
    h.end_batch(NOW)
    h.fill(BTC, FILL_TRADE, side=SIDE_BUY, price=6_000_001, qty=1000)   # 0.01 BTC
    h.md(_md(BTC, 6_100_000, 6_100_002), NOW + 1)                        # +10 USDT: the peak
    h.end_batch(NOW + 1)
    peak = int(h.st.g[G_PEAK_PNL])
    h.md(_md(BTC, 6_060_000, 6_060_002), NOW + 2)                        # -4 USDT from it
    h.end_batch(NOW + 2)
    assert h.st.g[G_DRAWDOWN_HIT] == 0
    save_anchor(h.st, words)
    h2, _ = _life(words, (1000, 0), q=q)                                  # holds 0.01 BTC
    assert h2.st.g[G_PEAK_PNL] == peak
    h2.md(_md(BTC, 6_060_000, 6_060_002), NOW + 3)
    h2.end_batch(NOW + 3)
    assert h2.st.g[G_DRAWDOWN_HIT] == 0
    h2.fill(BTC, FILL_TRADE, side=SIDE_SELL, price=5_950_000, qty=1000)  # sold 1.1 USDT lower
    h2.md(_md(BTC, 5_950_000, 5_950_002), NOW + 4)
    h2.end_batch(NOW + 4)
    assert h2.st.g[G_DRAWDOWN_HIT] == 1                                  # 5.1 from the peak
    save_anchor(h2.st, words)
    h3, _ = _life(words, (0, 0), q=q)
    assert h3.st.g[G_PEAK_PNL] == 0 and h3.st.inst[BTC]["target"] == 0


def test_quote_lag_runs_from_the_tick_that_moved_the_wish_to_the_ack_at_it():
    """A slot lags from the arrival of the book event that moved its wish until an ACK puts an
    order at the wish (g[G_LAG_DONE]: the loop records it in quoter.quote_lag). An ACK of an
    order the wish has since left keeps the lag running from the first event; a book that comes
    back to the resting order before anything answered ends the lag unanswered (lags_undone)."""
    from quoter_harness import FIELDS

    from engine.quoter.arrays import C_LAGS, C_LAGS_UNDONE, G_LAG_DONE
    from engine.records import ACTION_REPLACE, FILL_ACK
    from engine.strategies.fixed_spread.config import FixedSpreadConfig

    q = QuoterConfig(strategy="fixed_spread", levels=1, requote_ticks=1, rate_per_10s=4,
                     max_position="1", max_notional="1000000",
                     fixed_spread=FixedSpreadConfig(half_spread_ticks=5, skew_ticks=0))
    h = _resumed(q)
    st = h.st
    lag = st.quotes[BTC]["lag_since"]                # [side, level], a view
    oid, px = FIELDS.index("order_id"), FIELDS.index("price")

    def tick(bid, now, ago):
        r = _md(BTC, bid, bid + 2)
        r["ts_arrival"] = ago                          # arrived `ago` ns before `now`
        h.md(r, now)
        return {it[4]: it for it in h.end_batch(now)}

    def ack(it, now):
        h.now = now
        h.fill(BTC, FILL_ACK, it[oid], it[4], it[px], 200, 200)
        done, st.g[G_LAG_DONE] = int(st.g[G_LAG_DONE]), 0
        return done

    first = tick(6_000_000, NOW, 100_000)              # both slots empty: both lag
    assert lag[0, 0] == lag[1, 0] == NOW - 100_000
    assert st.cnt[C_LAGS] == 2
    assert ack(first[SIDE_BUY], NOW + 300_000) == 400_000       # answered at the wish
    assert lag[0, 0] == 0

    t1 = NOW + 1_000_000                               # the wish moves; the ask is still pending
    moved = tick(6_000_010, t1, 50_000)
    assert moved[SIDE_BUY][3] == ACTION_REPLACE and SIDE_SELL not in moved
    assert lag[0, 0] == t1 - 50_000
    assert lag[1, 0] == NOW - 100_000  # its first event still counts
    assert ack(first[SIDE_SELL], t1 + 100_000) == 0    # acked where the wish no longer is
    assert ack(moved[SIDE_BUY], t1 + 200_000) == 250_000
    again = tick(6_000_010, t1 + 300_000, 10_000)      # the ask is replaced at last
    assert ack(again[SIDE_SELL], t1 + 500_000) == t1 + 500_000 - (NOW - 100_000)

    # the 10 s window is spent (4 orders): the wish moves, nothing can answer, the book comes back
    assert tick(6_000_020, t1 + 600_000, 1_000) == {}
    assert st.cnt[C_LAGS] == 5 and lag[0, 0] != 0
    assert tick(6_000_010, t1 + 700_000, 1_000) == {}
    assert lag[0, 0] == 0 and lag[1, 0] == 0
    assert st.cnt[C_LAGS_UNDONE] == 2
