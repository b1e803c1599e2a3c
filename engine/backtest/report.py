"""What a backtest produced, for people: the summary (terminal and JSON), the fills (CSV) and
the plots (PNG). Reporting code: nothing here runs inside the replay."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np

from engine.backtest import csv_out
from engine.backtest.replay import F_MAX_DD, F_PNL, R_KILL_NS, Replay
from engine.backtest.venue import V_REJECTS, V_UNSENT
from engine.quoter.arrays import COUNTER_NAMES
from engine.quoter.params import pnl_exponent
from engine.records import (
    ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, SIDE_BUY, SIDE_SELL,
)

ACTION_NAMES = {ACTION_NEW: "NEW", ACTION_REPLACE: "REPLACE", ACTION_CANCEL: "CANCEL",
                ACTION_CANCEL_ALL: "CANCEL_ALL"}
RISK_COUNTERS = ("risk_position", "risk_notional", "risk_band", "rate_limited", "stale_pulls")


def _units(value, exp: int) -> float:
    return float(Decimal(int(round(value))).scaleb(exp))


def fills_of(r: Replay) -> np.ndarray:
    from engine.backtest.venue import FILL_LOG_DTYPE
    return np.concatenate(r.fills) if r.fills else np.zeros(0, FILL_LOG_DTYPE)


def intents_of(r: Replay) -> np.ndarray:
    """Every intent the quoter made, in order (ORDER_DTYPE; ts_published: when)."""
    from engine.records import ORDER_DTYPE
    return np.concatenate(r.intents) if r.intents else np.zeros(0, ORDER_DTYPE)


def requests_of(r: Replay) -> np.ndarray:
    """Every intent that reached the venue, in order (ts_published: when it arrived)."""
    from engine.records import ORDER_DTYPE
    return np.concatenate(r.requests) if r.requests else np.zeros(0, ORDER_DTYPE)


def series_of(r: Replay) -> dict:
    """Samples over time: t (ns), pnl (common unit), realized (common unit), pos and mark per
    instrument."""
    if not r.series:
        return {"t": np.zeros(0, np.int64)}
    parts = list(zip(*r.series))
    return {"t": np.concatenate(parts[0]), "pnl": np.concatenate(parts[1]),
            "realized": np.concatenate(parts[2]), "pos": np.concatenate(parts[3]),
            "mark": np.concatenate(parts[4])}


def _feed_latency(r: Replay, md: np.ndarray) -> dict:
    """How far the venue was ahead of the quoter (backtest.feed_latency)."""
    mode = r.cfg.backtest.feed_latency
    if mode == "none" or len(md) == 0:
        return {"mode": mode}
    lag = (np.asarray(md["ts"]) - r.tv) / 1e3
    return {"mode": mode, "p50_us": round(float(np.percentile(lag, 50)), 1),
            "p99_us": round(float(np.percentile(lag, 99)), 1),
            "measured_share": round(float((np.asarray(md["ts_venue"]) > 0).mean()), 4)}


def summarize(r: Replay, md: np.ndarray, info: dict, timings: dict) -> dict:
    """The numbers of a finished replay, in the trader's units (quote currency, base units)."""
    cfg = r.cfg
    instruments = cfg.instruments
    exp = pnl_exponent(instruments)
    cnt = {n: int(r.st.cnt[i]) for i, n in enumerate(COUNTER_NAMES)}
    orders = cnt["new"] + cnt["replace"]
    fills = fills_of(r)
    span_ns = int(md["ts"][-1] - md["ts"][0]) if len(md) else 0
    per_inst = {}
    total_notional = total_spread = total_realized = total_inventory = total_fees = 0.0
    for i, inst in enumerate(instruments):
        a = r.acct[i]
        pq = inst.pexp + inst.qexp
        scale = 10 ** (pq - exp)
        notional = float(a["notional"])
        # marked before fees = sum over fills of (mid at the end - price) * signed qty
        #   = spread (mid before the fill - price) + inventory (mid at the end - mid before)
        gross = float(a["cash"]) + float(a["pos"]) * float(r.book[i]["mark2"]) * 0.5
        inventory = gross - float(a["spread"])
        total_notional += notional * scale
        total_spread += float(a["spread"]) * scale
        total_realized += float(a["realized"]) * scale
        total_inventory += inventory * scale
        total_fees += float(a["fees"]) * scale
        per_inst[inst.symbol] = {
            "fills": int(a["fills"]),
            "bought": _units(a["bought"], inst.qexp), "sold": _units(a["sold"], inst.qexp),
            "position": _units(a["pos"], inst.qexp),
            "max_position": _units(a["max_pos"], inst.qexp),
            "min_position": _units(a["min_pos"], inst.qexp),
            "volume_quote": round(notional * 10.0 ** pq, 8),
            "spread_captured_quote": round(float(a["spread"]) * 10.0 ** pq, 8),
            "spread_captured_bps": (round(float(a["spread"]) / notional * 1e4, 3)
                                    if notional else None),
            "realized_pnl_quote": round(float(a["realized"] - a["fees"]) * 10.0 ** pq, 8),
            "inventory_pnl_quote": round(inventory * 10.0 ** pq, 8),
            "fees_quote": round(float(a["fees"]) * 10.0 ** pq, 8),
            "maker_fee": inst.maker_fee, "taker_fee": inst.taker_fee,
            "commission_asset": inst.commission_asset or inst.quote or "quote",
        }
    marked = float(r.fw[F_PNL]) * 10.0 ** exp
    realized = (total_realized - total_fees) * 10.0 ** exp
    replay_s = timings.get("replay_s", r.replay_s)
    kill_ns = int(r.rw[R_KILL_NS])
    return {
        "captures": info["files"],
        "venue": cfg.feed.venue, "streams": list(cfg.feed.streams),
        "instruments": [i.symbol for i in instruments],
        "strategy": cfg.quoter.strategy,
        "strategy_config": _plain(getattr(cfg.quoter, cfg.quoter.strategy)),
        "order_latency_us": round(float(np.median(r.lat.order_ns)) / 1e3, 1),
        "response_latency_us": round(float(np.median(r.lat.answer_ns)) / 1e3, 1),
        "latency": r.lat.describe(),
        "feed_latency": _feed_latency(r, md),
        "market_records": int(len(md)),
        "book_updates": int((md["kind"] & 1).astype(bool).sum()) if len(md) else 0,
        "trades": int((md["kind"] & 2).astype(bool).sum()) if len(md) else 0,
        "depth_levels": info.get("depth_levels", 0),
        "queue_model": cfg.backtest.queue_model,
        "frames_by_kind": info["frames_by_kind"], "duplicates_dropped": info["duplicates"],
        "market_time_s": round(span_ns / 1e9, 3),
        "speed": {"replay_s": round(replay_s, 4),
                  "events_per_s": round(len(md) / replay_s) if replay_s > 0 else None,
                  "decode_s": round(timings.get("decode_s", 0.0), 3),
                  "compile_s": round(timings.get("compile_s", 0.0), 3)},
        "orders": {"new": cnt["new"], "replace": cnt["replace"], "cancel": cnt["cancel"],
                   "cancel_all": cnt["cancel_all"],
                   "refused_by_venue": int(r.vw[V_REJECTS]),
                   # replaces and cancels of orders that had ended: the sender drops them
                   "not_sent": int(r.vw[V_UNSENT])},
        # counted per requote pass and quote level, as the live quoter counts them
        "refused_by_risk": {k: cnt[k] for k in RISK_COUNTERS},
        "fills": int(len(fills)),
        "quote_to_fill": round(orders / len(fills), 3) if len(fills) else None,
        # marked and realized are after fees; marked = spread + inventory - fees
        "pnl_quote": {"marked": round(marked, 8), "realized": round(realized, 8),
                      "unrealized": round(marked - realized, 8),
                      "spread": round(total_spread * 10.0 ** exp, 8),
                      "inventory": round(total_inventory * 10.0 ** exp, 8),
                      "fees": round(-total_fees * 10.0 ** exp, 8)},
        # every backtest fill is a maker fill (post-only orders)
        "fills_by_liquidity": {"maker": int(len(fills)), "taker": 0},
        "max_drawdown_quote": round(float(r.fw[F_MAX_DD]) * 10.0 ** exp, 8),
        "spread_captured_quote": round(total_spread * 10.0 ** exp, 8),
        "spread_captured_bps": (round(total_spread / total_notional * 1e4, 3)
                                if total_notional else None),
        "per_instrument": per_inst,
        "no_market_data": [inst.symbol for i, inst in enumerate(instruments)
                           if not (md["instrument"] == i).any()],
        "killed": ({"reason": "drawdown", "after_s": round((kill_ns - int(md["ts"][0])) / 1e9, 3)}
                   if kill_ns else None),
    }


def _plain(struct) -> dict:
    import msgspec
    return msgspec.to_builtins(struct)


def print_summary(s: dict, out=None) -> None:
    import sys
    out = out or sys.stdout
    sp = s["speed"]
    w = out.write
    w(f"backtest: {s['strategy']} on {', '.join(s['instruments'])} ({s['venue']}), "
      f"{s['market_records']} market records ({s['book_updates']} book, {s['trades']} trades, "
      f"{s['depth_levels']} depth levels) over {s['market_time_s']} s of market time\n")
    w(f"  queue model: {s['queue_model']}\n")
    lat = s["latency"]
    if lat["source"] == "fixed":
        w(f"  latency: feed-to-order {s['order_latency_us']} us, venue-to-quoter "
          f"{s['response_latency_us']} us\n")
    else:
        o, a = lat["order"], lat["answer"]
        w(f"  latency drawn from {lat['source']}: feed-to-order P50 {o['p50_us']} / P99 "
          f"{o['p99_us']} us, venue-to-quoter P50 {a['p50_us']} / P99 {a['p99_us']} us\n")
    fl = s["feed_latency"]
    if fl["mode"] == "capture":
        w(f"  feed latency (exchange time -> arrival, from the capture): P50 {fl['p50_us']} / "
          f"P99 {fl['p99_us']} us; {fl['measured_share']:.0%} of records carry the exchange's "
          f"time\n")
    eps = f"{sp['events_per_s']:,} events/s" if sp["events_per_s"] else "-"
    w(f"  speed: replay {sp['replay_s']} s ({eps}); decode {sp['decode_s']} s; compile/load "
      f"{sp['compile_s']} s\n")
    o = s["orders"]
    w(f"  orders: {o['new']} new, {o['replace']} replaces, {o['cancel']} cancels, "
      f"{o['cancel_all']} cancel-all; refused by the venue {o['refused_by_venue']}; not sent "
      f"(their order had ended) {o['not_sent']}\n")
    w("  refused by risk (per pass and level): " + ", ".join(
        f"{k} {v}" for k, v in s["refused_by_risk"].items()) + "\n")
    qtf = s["quote_to_fill"]
    w(f"  fills: {s['fills']} (quote-to-fill {qtf if qtf is not None else '-'} orders per fill)\n")
    p = s["pnl_quote"]
    bps = s["spread_captured_bps"]
    w(f"  PnL: marked {p['marked']:.4f}, realized {p['realized']:.4f}, unrealized "
      f"{p['unrealized']:.4f}; max drawdown {s['max_drawdown_quote']:.4f}; spread captured "
      f"{s['spread_captured_quote']:.4f}{f' ({bps} bps of volume)' if bps is not None else ''}"
      f" (quote currency, after fees)\n")
    w(f"  PnL split: spread {p['spread']:.4f} + inventory {p['inventory']:.4f} + fees "
      f"{p['fees']:.4f} = {p['spread'] + p['inventory'] + p['fees']:.4f}\n")
    for sym, v in s["per_instrument"].items():
        w(f"  {sym}: {v['fills']} fills, bought {v['bought']}, sold {v['sold']}, position "
          f"{v['position']} (range {v['min_position']}..{v['max_position']}), volume "
          f"{v['volume_quote']:.2f}, fees paid {v['fees_quote']:.4f} {v['commission_asset']} "
          f"(maker {v['maker_fee']}, taker {v['taker_fee']})\n")
    if s["no_market_data"]:
        w(f"  no market data in the captures for {', '.join(s['no_market_data'])}\n")
    if s["killed"]:
        w(f"  KILLED by the drawdown limit after {s['killed']['after_s']} s\n")


def write(out_dir: Path, s: dict, r: Replay, md: np.ndarray, plots: bool = True,
          orders: bool = True) -> dict:
    """backtest.json, fills.csv, orders.csv (unless not `orders`) and (with matplotlib)
    backtest.png under out_dir; returns the paths written (also recorded in the JSON)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": str(out_dir / "backtest.json"), "fills_csv": str(out_dir / "fills.csv")}
    t0 = int(md["ts"][0]) if len(md) else 0
    _write_fills(paths["fills_csv"], r, t0)
    if orders:
        paths["orders_csv"] = str(out_dir / "orders.csv")
        _write_orders(paths["orders_csv"], r, t0)
    if plots:
        png = _plot(out_dir / "backtest.png", s, r, md)
        if png:
            paths["png"] = png
        else:
            s["plots"] = "skipped: matplotlib is not installed (pip install 'mm-engine[backtest]')"
    s["files"] = paths
    Path(paths["json"]).write_text(json.dumps(s, indent=1))
    return paths


def _exponents(r: Replay, instrument: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Price and quantity exponents per row (0 for rows naming no instrument: cancel-all)."""
    insts = r.cfg.instruments
    pexp = np.array([i.pexp for i in insts] + [0], np.int64)
    qexp = np.array([i.qexp for i in insts] + [0], np.int64)
    k = np.where(instrument < len(insts), instrument, len(insts)).astype(np.int64)
    return pexp[k], qexp[k]


def _write_fills(path: str, r: Replay, t0: int) -> None:
    f = fills_of(r)
    symbols = {k: i.symbol for k, i in enumerate(r.cfg.instruments)}
    pexp, qexp = _exponents(r, f["instrument"])
    # the mid is exact: half of bid + ask, one more decimal when it falls between ticks
    mid = f["mid2_before"] * 5
    fee_exp = pexp + qexp - 4
    fee = np.round(f["fee"] * 1e4).astype(np.int64)
    csv_out.write(path, ["t_s", "symbol", "side", "price", "qty", "mid_before", "leaves",
                         "fee", "order_id"],
                  [csv_out.Seconds(f["ts"], t0), csv_out.Names(f["instrument"], symbols),
                   csv_out.Names(f["side"], {SIDE_BUY: "BUY", SIDE_SELL: "SELL"}),
                   csv_out.Fixed(f["price"], pexp), csv_out.Fixed(f["qty"], qexp),
                   csv_out.Fixed(mid, pexp - 1), csv_out.Fixed(f["leaves"], qexp),
                   csv_out.Fixed(fee, fee_exp), csv_out.Int(f["order_id"])])


def _write_orders(path: str, r: Replay, t0: int) -> None:
    it = intents_of(r)
    symbols = {k: i.symbol for k, i in enumerate(r.cfg.instruments)}
    pexp, qexp = _exponents(r, it["instrument"])
    unknown = it["instrument"] >= len(r.cfg.instruments)   # cancel-all of every instrument
    csv_out.write(path, ["t_s", "action", "symbol", "side", "level", "price", "qty",
                         "order_id", "orig_order_id", "update_id"],
                  [csv_out.Seconds(it["ts_published"], t0),
                   csv_out.Names(it["action"], ACTION_NAMES, "?"),
                   csv_out.Names(it["instrument"], symbols, "*"),
                   csv_out.Names(it["side"], {SIDE_BUY: "BUY", SIDE_SELL: "SELL"}),
                   csv_out.Int(it["level"]), csv_out.Fixed(it["price"], pexp, unknown),
                   csv_out.Fixed(it["qty"], qexp, unknown), csv_out.Int(it["order_id"]),
                   csv_out.Int(it["orig_order_id"]), csv_out.Int(it["update_id"])])


def _plot(path: Path, s: dict, r: Replay, md: np.ndarray) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cfg = r.cfg
    ser = series_of(r)
    if len(ser["t"]) == 0:
        return None
    exp = pnl_exponent(cfg.instruments)
    t0 = int(md["ts"][0])
    x = (ser["t"] - t0) / 1e9
    fills = fills_of(r)
    shown = [i for i in range(len(cfg.instruments)) if (ser["mark"][:, i] > 0).any()][:3]
    rows = len(shown) + 3
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.4 * rows), sharex=True)
    for ax, i in zip(axes, shown):
        inst = cfg.instruments[i]
        scale = 10.0 ** inst.pexp
        has = ser["mark"][:, i] > 0
        ax.plot(x[has], ser["mark"][has, i] * scale, lw=0.8, color="0.4", label="mid")
        mine = fills[fills["instrument"] == i]
        for side, colour, marker, name in ((SIDE_BUY, "tab:green", "^", "our buys"),
                                           (0, "tab:red", "v", "our sells")):
            sel = mine[(mine["side"] == SIDE_BUY) == (side == SIDE_BUY)]
            if len(sel):
                ax.scatter((sel["ts"] - t0) / 1e9, sel["price"] * scale, s=14, c=colour,
                           marker=marker, label=f"{name} ({len(sel)})", zorder=3)
        ax.set_ylabel(f"{inst.symbol}\nprice")
        _legend_beside(ax)
        ax.grid(alpha=0.3)
    ax = axes[len(shown)]
    for i, inst in enumerate(cfg.instruments):
        ax.step(x, ser["pos"][:, i] * 10.0 ** inst.qexp, where="post", lw=0.9,
                label=f"{inst.symbol} ({inst.base})")
    ax.set_ylabel("inventory\n(base units)")
    _legend_beside(ax)
    ax.grid(alpha=0.3)
    ax = axes[len(shown) + 1]
    pnl = ser["pnl"] * 10.0 ** exp
    ax.plot(x, pnl, lw=0.9, label="marked (cash + inventory at mid)")
    ax.plot(x, ser["realized"] * 10.0 ** exp, lw=0.9, label="realized (average cost)")
    ax.set_ylabel("PnL (quote)")
    _legend_beside(ax)
    ax.grid(alpha=0.3)
    ax = axes[len(shown) + 2]
    dd = np.maximum.accumulate(np.maximum(pnl, 0.0)) - pnl
    ax.fill_between(x, -dd, 0, color="tab:red", alpha=0.4, step="post")
    ax.set_ylabel("drawdown\n(quote)")
    ax.set_xlabel("market time (s)")
    ax.grid(alpha=0.3)
    fig.suptitle(f"backtest: {s['strategy']}, {s['fills']} fills, marked PnL "
                 f"{s['pnl_quote']['marked']:.4f}, max drawdown {s['max_drawdown_quote']:.4f}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def _legend_beside(ax) -> None:
    """The legend right of the axes: it covers no fill, price or curve."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
