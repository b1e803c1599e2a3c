"""`mm sim`: run the exchange simulator standalone.

    mm sim --port 0 [--config F] [--seed S] [--duration S] [--report PATH] [--event-rate R]

Prints one JSON line first ({"md_url", "api_url", "pid"}), then serves until SIGTERM/SIGINT or
`--duration` seconds; on exit writes the wire-to-wire latency report (percentiles, raw samples)
and counters to --report PATH.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

import msgspec


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mm sim", description="Binance Spot simulator on loopback")
    p.add_argument("--port", type=int, default=None, help="TCP port (0: pick a free one)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--config", default=None, help="engine TOML file ([sim] and instruments)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the market")
    p.add_argument("--event-rate", type=float, default=None, help="book events/s per symbol")
    p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: never)")
    p.add_argument("--report", default=None, help="write the latency report JSON here on exit")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    """Entry point of `mm sim`; returns the exit status."""
    if argv and argv[0] == "--":       # `mm sim -- --port 0` (argparse REMAINDER keeps it)
        argv = argv[1:]
    args = _parse(argv)
    from engine.config import ConfigError, load
    try:
        cfg = load(args.config)
        overrides = {k: v for k, v in (("port", args.port), ("host", args.host),
                                       ("seed", args.seed), ("event_rate", args.event_rate))
                     if v is not None}
        sim_cfg = msgspec.structs.replace(cfg.sim, **overrides)
        sim_cfg.validate()
    except (ConfigError, ValueError) as e:
        print(f"mm sim: {e}", file=sys.stderr)
        return 2
    if args.duration < 0:
        print(f"mm sim: --duration: expected >= 0, got {args.duration}", file=sys.stderr)
        return 2
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_serve(sim_cfg, cfg.instruments, args.duration, args.report))


async def _serve(sim_cfg, instruments, duration: float, report_path: str | None) -> int:
    from engine.sim.server import SimServer
    server = SimServer(sim_cfg, instruments)
    await server.start()
    print(json.dumps({"md_url": server.md_url, "api_url": server.api_url, "pid": os.getpid()}),
          flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    try:
        if duration > 0:
            await asyncio.wait([stop], timeout=duration)
        else:
            await stop
    finally:
        await server.stop()
        if report_path:
            write_report(server, report_path)
    return 0


def write_report(server, path: str) -> None:
    """Latency percentiles, raw samples (ns) and counters as one JSON document."""
    report = {"latency": server.clock.report(), "samples_ns": list(server.clock.samples),
              "stats": server.all_stats(), "balances": server.exchange.balance_strings()}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
