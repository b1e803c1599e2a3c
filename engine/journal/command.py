"""`mm journal fills|orders|pnl`: the journal of an instance as tables or CSV."""
from __future__ import annotations

import csv
import sys
import time

from engine.journal import queries
from engine.journal.schema import JournalError, journal_path, open_journal

FILL_COLUMNS = ("time", "symbol", "trade_id", "order_id", "client_id", "side", "price", "qty",
                "commission", "commission_asset", "maker", "source", "markout_1s_bps")
ORDER_COLUMNS = ("time", "kind", "symbol", "order_id", "client_id", "side", "price", "qty",
                 "outcome", "filled", "reject_code")
PNL_COLUMNS = ("bucket", "symbol", "fills", "volume", "position", "realised", "marked", "fees",
               "net")


def _t(ns: int, by: str = "") -> str:
    fmt = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00"}.get(by, "%Y-%m-%d %H:%M:%S")
    s = time.strftime(fmt, time.gmtime(ns / 1e9))
    return s if by else s + f".{ns // 1_000_000 % 1000:03d}"


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.2f}"
    return str(v)


def _print(rows: list[tuple], columns: tuple, as_csv: bool, out=sys.stdout) -> None:
    if as_csv:
        w = csv.writer(out)
        w.writerow(columns)
        w.writerows([[_fmt(v) for v in r] for r in rows])
        return
    text = [[_fmt(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    for r in text:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)


def run(args, cfg) -> int:
    """Print what args.what asks for; 2 when the journal cannot be read (the path named)."""
    try:
        since = queries.since_ns(args.since)
    except ValueError as e:
        print(f"mm journal: {e}", file=sys.stderr)
        return 2
    path = journal_path(cfg)
    try:
        con = open_journal(path, readonly=True)
    except JournalError as e:
        print(f"mm journal: {e}", file=sys.stderr)
        return 2
    try:
        if args.what == "fills":
            rows = [(_t(f["ts_ns"]), f["symbol"], f["trade_id"], f["order_id"], f["client_id"],
                     f["side"], f["price"], f["qty"], f["commission"], f["commission_asset"],
                     f["is_maker"], f["source"],
                     None if f["mid_1s"] is None else
                     queries.markout_bps(f["side"], f["price"], f["mid_1s"]))
                    for f in queries.fills(con, since)]
            _print(rows, FILL_COLUMNS, args.csv)
        elif args.what == "orders":
            rows = [(_t(o["ts_ns"]), o["kind"], o["symbol"], o["order_id"], o["client_id"],
                     o["side"], o["price"], o["qty"], o["last_event"], o["filled"],
                     o["reject_code"]) for o in queries.orders(con, since)]
            _print(rows, ORDER_COLUMNS, args.csv)
        else:
            rows = [(_t(r["bucket"], args.by), r["symbol"], r["fills"], r["volume"],
                     r["position"], r["realised"], r["marked"], r["fees"], r["net"])
                    for r in queries.pnl(con, cfg.instruments, since, args.by)]
            _print(rows, PNL_COLUMNS, args.csv)
            if not args.csv:
                curve = queries.markout_curve(con, since)
                if any(c["fills"] for c in curve):
                    print("\nmarkouts (basis points of the fill price; adverse: the mid moved "
                          "against the fill)")
                    _print([(c["horizon"], c["fills"], c["mean"], c["adverse_share"])
                            for c in curve], ("horizon", "fills", "mean_bps", "adverse_share"),
                           False)
    finally:
        con.close()
    return 0
