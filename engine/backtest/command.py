"""`mm backtest CAPTURE... [--config FILE] [--out DIR]`: decode, replay, report."""
from __future__ import annotations

import sys
import time
from pathlib import Path

WARM_RECORDS = 2000          # replayed once first, so the timed run meets no JIT
PROGRESS_FROM = 500_000      # records: a progress bar from here on (on a terminal)


def backtest(cfg, captures: list[str], out_dir: Path | None = None, plots: bool = True,
             progress: bool = True, echo=print, orders: bool = True,
             latency_from: str | None = None) -> dict:
    """Replay `captures` under cfg; write the report to out_dir (None: nothing written;
    orders.csv only with `orders`); return the summary. `latency_from`: a live run whose
    histograms give the latencies (else backtest.latency_from, else the fixed ones)."""
    from engine.backtest import latency, market_data, replay, report

    lat = latency.of(cfg, latency_from)         # ValueError naming what is missing, first
    if cfg.feed.keeps_depth() and cfg.feed.venue != "binance":
        # the L2 book is rebuilt from Binance diff-depth frames only (depth_frames.py): a
        # depth-reading quoter would wait for a book that never comes
        raise ValueError(f"feed.streams: mm backtest rebuilds the feed's L2 book from Binance "
                         f"diff-depth frames only; feed.venue {cfg.feed.venue!r} with "
                         f"{list(cfg.feed.streams)} is not replayed (drop its book stream)")

    for warning in _config_vs_captures(cfg, captures):
        echo(f"mm backtest: warning: {warning}", file=sys.stderr)
    t0 = time.perf_counter()
    md, info = market_data.load(captures, cfg)
    decode_s = time.perf_counter() - t0
    if len(md) == 0:
        raise ValueError(f"no market records in {', '.join(captures)} for venue "
                         f"{cfg.feed.venue!r} and instruments "
                         f"{[i.symbol for i in cfg.instruments]} (frames: "
                         f"{info['frames_by_kind']}): check feed.venue and instruments")
    t0 = time.perf_counter()
    warm = md[:WARM_RECORDS]
    replay.run(replay.prepare(cfg, warm, lat), warm)   # compiles, or loads numba's cache
    compile_s = time.perf_counter() - t0
    r = replay.prepare(cfg, md, lat)
    bar = _progress_bar(len(md)) if progress else None
    try:
        replay.run(r, md, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    s = report.summarize(r, md, info, {"decode_s": decode_s, "compile_s": compile_s})
    if out_dir is not None:
        t0 = time.perf_counter()
        report.write(out_dir, s, r, md, plots=plots, orders=orders)
        s["speed"]["report_s"] = round(time.perf_counter() - t0, 3)
    return s


def _config_vs_captures(cfg, captures) -> list[str]:
    """Where a capture's metadata (written by mm capture) disagrees with the config."""
    import json

    from engine.capture import metadata_path

    out = []
    symbols = [i.symbol for i in cfg.instruments]
    for c in captures:
        meta = metadata_path(c)
        if not meta.is_file():
            continue
        m = json.loads(meta.read_text())
        if m.get("venue") != cfg.feed.venue:
            out.append(f"{c} was taken from venue {m.get('venue')!r}, feed.venue is "
                       f"{cfg.feed.venue!r}")
        theirs = [i.get("symbol") for i in m.get("instruments", [])]
        if theirs and theirs != symbols:
            out.append(f"{c} was taken for {theirs}, the config trades {symbols} (instrument "
                       f"indices differ: set instruments as the capture's metadata lists them)")
    return out


class _progress_bar:
    """A rich progress bar on stderr for long replays on a terminal (else nothing)."""

    def __init__(self, total: int):
        self.p = None
        if total < PROGRESS_FROM or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.p = Progress("replay", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True)
        self.task = self.p.add_task("replay", total=total)
        self.p.start()

    def update(self, done: int, total: int) -> None:
        if self.p is not None:
            self.p.update(self.task, completed=done)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()

    def __bool__(self) -> bool:
        return self.p is not None


def main(args, cfg) -> int:
    from engine.backtest import report

    missing = [c for c in args.captures if not Path(c).is_file()]
    if missing:
        print(f"mm backtest: no such capture file: {', '.join(missing)}", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/backtest-{Path(args.captures[0]).name.split('.')[0]}-"
                               f"{stamp}")
    try:
        s = backtest(cfg, args.captures, out_dir, plots=not args.no_plots,
                     progress=not args.quiet, orders=not args.no_orders,
                     latency_from=args.latency_from)
    except ValueError as e:           # CaptureFormatError, an empty capture
        print(f"mm backtest: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        report.print_summary(s)
    files = s.get("files", {})
    print(f"report: {files.get('json')}" + (f", plots: {files['png']}" if "png" in files else
                                            f" ({s['plots']})" if "plots" in s else ""))
    return 0
