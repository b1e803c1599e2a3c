"""`mm`: the engine's command line. Each subcommand imports only what it needs, so `mm shm ls`
never loads numba and `mm quoter` never loads the simulator."""
from __future__ import annotations

import argparse
import os
import sys


def _load_config(args):
    """(config, the instrument filters the user wrote per symbol); exit 2 on a bad config."""
    from engine import config

    try:
        cfg, configured = config.load_with_sources(args.config)
        if getattr(args, "instance", None):
            import msgspec

            cfg = msgspec.structs.replace(cfg, instance=args.instance)
            config.check(cfg)
    except config.ConfigError as e:
        print(f"mm: {e}", file=sys.stderr)
        raise SystemExit(2)
    return cfg, configured


def _process(role: str):
    def run(args) -> int:
        from engine import proc
        from engine.box import core_layout, wake_latency

        cfg, configured = _load_config(args)
        try:  # an operator's drop-in may hand the process its core: MM_CORE, MM_IDLE; else
            # under systemd (MM_LAYOUT=auto) the process computes its layout on this box now
            cfg = core_layout.apply_env(cfg, role, os.environ)
            cfg, decided = core_layout.apply_box(cfg, role, os.environ)
        except ValueError as e:
            print(f"mm {role}: {e}", file=sys.stderr)
            raise SystemExit(2)
        if decided:
            proc.log(role, decided)
        if not args.venue_checked:       # started alone (systemd): ask the venue itself
            cfg = _instruments_for_process(role, cfg, configured)
            if isinstance(cfg, int):
                return cfg
        # Process-wide settings that only the process itself can apply, before any work.
        if cfg.lock_memory and (err := proc.lock_memory()):
            proc.log(role, err)
        # Held until this process exits (the kernel drops the request with the descriptor).
        _fd, why = wake_latency.hold(cfg.cpu_wake_latency_us)
        if why:
            proc.log(role, why)
        # The process sets its own policy (mm run and systemd alike), before its threads start.
        if err := proc.realtime(cfg.realtime_priority, getattr(cfg, role).idle):
            proc.log(role, err)
        mod = __import__(f"engine.{role}.process", fromlist=["run"])
        return mod.run(cfg)
    return run


def _instruments_for_process(role: str, cfg, configured):
    """The config with the venue's instrument filters, published for mm status; or the exit
    status: 2 when the venue refuses the config, 1 when it cannot be reached (systemd retries)."""
    import time

    from engine import instance_info, proc
    from engine.venue_info import TIMEOUT_S, VenueRefused, instruments_from_venue

    try:
        new = instruments_from_venue(cfg, configured, lambda m: proc.log(role, m),
                                     deadline=time.monotonic() + 6 * TIMEOUT_S)
    except VenueRefused as e:
        proc.log(role, f"error: {e}")
        return 2
    if new is None:
        return 1
    try:
        instance_info.publish(new.instance, instance_info.of_config(new))
    except RuntimeError as e:          # SegmentError: mm status shows raw units then
        proc.log(role, f"warning: instrument table not published: {e}")
    return new


def _cmd_journal_agent(args) -> int:
    from engine.box import core_layout

    cfg, configured = _load_config(args)
    try:
        cfg = core_layout.apply_env(cfg, "journal", os.environ)   # MM_CORE of a drop-in
    except ValueError as e:
        print(f"mm journal-agent: {e}", file=sys.stderr)
        raise SystemExit(2)
    if not args.venue_checked:
        cfg = _instruments_for_process("journal", cfg, configured)
        if isinstance(cfg, int):
            return cfg
    from engine.journal.agent import run
    return run(cfg)


def _cmd_journal(args) -> int:
    from engine.journal.command import run

    cfg, _ = _load_config(args)
    return run(args, cfg)


def _cmd_run(args) -> int:
    from engine.supervisor import Supervisor

    cfg, configured = _load_config(args)
    return Supervisor(cfg, duration_s=args.duration, run_dir=args.run_dir,
                      configured=configured).run()


def _cmd_backtest(args) -> int:
    from engine.backtest.command import main

    return main(args, _load_config(args)[0])


def _cmd_capture(args) -> int:
    from engine.capture import main

    cfg, configured = _load_config(args)
    return main(args, cfg, configured)


def _cmd_sim(argv: list[str]) -> int:
    from engine.sim.cli import main

    return main(argv)


def _cmd_status(args) -> int:
    from engine.status import main

    return main(args.instance, once=args.once, interval_s=args.interval, json_out=args.json)


def _cmd_kill(args) -> int:
    from engine import pause

    return pause.kill(args.instance, wait_s=args.wait)


def _cmd_resume(args) -> int:
    from engine import pause

    return pause.resume(args.instance)


def _cmd_stop(args) -> int:
    from engine import pause

    return pause.stop(args.instance, wait_s=args.wait)


def _read_env_file(args, cmd: str) -> None:
    """Apply --env-file, or the config's sibling .env (the units' EnvironmentFile=), before the
    config is loaded: doctor and layout then judge what the units will start with."""
    from engine import env_file

    path = args.env_file or env_file.sibling(args.config)
    if not path:
        return
    try:
        names = env_file.apply(path)
    except OSError as e:
        print(f"mm {cmd}: --env-file {path}: {e}", file=sys.stderr)
        raise SystemExit(2)
    print(f"mm {cmd}: settings from {path} (the units' EnvironmentFile=): "
          f"{', '.join(names) or 'none'}", file=sys.stderr)


def _cmd_layout(args) -> int:
    import json

    from engine.box import core_layout

    _read_env_file(args, "layout")
    cfg, _ = _load_config(args)
    try:
        lay = core_layout.for_box(cfg, sys_root=args.sys_root, nic=args.nic)
    except ValueError as e:
        print(f"mm layout: {e}", file=sys.stderr)
        return 2
    print(json.dumps(lay.to_json(), indent=2))
    return 0


def _cmd_doctor(args) -> int:
    from engine.box.doctor import main

    _read_env_file(args, "doctor")
    return main(_load_config(args)[0], sys_root=args.sys_root, proc_root=args.proc_root,
                unit_dir=args.unit_dir)


def _cmd_alert(args) -> int:
    from engine.box.alert import main

    return main(args.unit, args.if_status)


def _cmd_report(args) -> int:
    from engine.report import print_run_report

    return print_run_report(args.run_dir, explain=args.explain)


def _cmd_metrics(args) -> int:
    from engine.metrics import serve_forever

    return serve_forever(args.instance, args.host, args.port)


def _cmd_shm(args) -> int:
    from engine import shm_admin

    instance = None if args.all else args.instance
    if args.action == "ls":
        for line in shm_admin.list_lines(instance):
            print(line)
        return 0
    return shm_admin.remove(instance, force=args.force)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mm-engine")
    except PackageNotFoundError:       # run from a checkout that was never installed
        return "unknown (not installed: pip install -e .)"


def _environment_help() -> str:
    from engine.config import ENV_VARS

    width = max(len(name) for name, _ in ENV_VARS)
    return "environment (overrides the config file):\n" + "\n".join(
        f"  {name:<{width}}  {text}" for name, text in ENV_VARS)


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()               # here, where a closed pipe can still be handled
        return status
    except BrokenPipeError:
        # `mm report | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again, and exit like a process killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mm", description="low-latency market-maker engine")
    p.add_argument("--version", action="version", version=f"mm {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True)

    def with_config(sp):
        sp.add_argument("--config", help="TOML config file (default: built-in defaults)")
        sp.add_argument("--instance", help="instance name (overrides config and MM_INSTANCE)")
        return sp

    sp = with_config(sub.add_parser(
        "run", help="start the whole engine (default: against the embedded simulator), then "
                    "print the latency report", epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter))
    sp.add_argument("--duration", type=float, default=None, help="seconds (0 = until SIGTERM)")
    sp.add_argument("--run-dir", default=None, help="where to write histograms and the report")
    sp.set_defaults(fn=_cmd_run)

    for role in ("feed", "quoter", "sender"):
        sp = with_config(sub.add_parser(role, help=f"run the {role} process alone (systemd "
                                                   f"units)", epilog=_environment_help(),
                                        formatter_class=argparse.RawDescriptionHelpFormatter))
        # Set by mm run: the config file's instruments already come from the venue.
        sp.add_argument("--venue-checked", action="store_true", help=argparse.SUPPRESS)
        sp.set_defaults(fn=_process(role))

    sp = with_config(sub.add_parser(
        "journal-agent", help="run the journal agent alone (systemd unit): journal ring -> "
                              "SQLite, reconciled with the venue's trade list"))
    sp.add_argument("--venue-checked", action="store_true", help=argparse.SUPPRESS)
    sp.set_defaults(fn=_cmd_journal_agent)

    sp = with_config(sub.add_parser(
        "journal", help="read an instance's journal: fills, orders, PnL over time"))
    sp.add_argument("what", choices=["fills", "orders", "pnl"])
    sp.add_argument("--since", help="only the last ...: 30m, 1h, 2d (default: everything)")
    sp.add_argument("--by", choices=["hour", "day"], default="hour", help="pnl buckets")
    sp.add_argument("--csv", action="store_true", help="CSV on stdout (fills: trade_id column)")
    sp.set_defaults(fn=_cmd_journal)

    sp = with_config(sub.add_parser(
        "backtest", help="replay captures through the compiled strategy, risk and the "
                         "simulator's fill model; report PnL, fills, inventory (JSON, PNG)"))
    sp.add_argument("captures", nargs="+", metavar="CAPTURE",
                    help="capture files: MMCAP1 (mm capture, feed.capture_path) or text "
                         "'<arrival ns> <frame>' lines (.gz too), replayed in this order")
    sp.add_argument("--out", help="report directory (default runs/backtest-<capture>-<time>)")
    sp.add_argument("--no-plots", action="store_true", help="skip the PNG")
    sp.add_argument("--no-orders", action="store_true",
                    help="skip orders.csv (every intent: the largest file of a long run)")
    sp.add_argument("--latency-from", metavar="RUN",
                    help="draw order and answer latencies from a live run's histograms "
                         "(runs/<run> of mm run) instead of backtest.order_latency_us / "
                         "response_latency_us")
    sp.add_argument("--quiet", action="store_true", help="no summary, no progress bar")
    sp.set_defaults(fn=_cmd_backtest)

    sp = with_config(sub.add_parser(
        "capture", help="record the venue's market streams (feed.url / MM_MD_URL) to a "
                        "capture file with the live feed's connections, for mm backtest"))
    sp.add_argument("--duration", type=float, required=True, metavar="S",
                    help="seconds to record")
    sp.add_argument("--out", help="capture file (default runs/capture-<venue>-<time>.mmcap)")
    sp.set_defaults(fn=_cmd_capture)

    # Listed for `mm --help` only: `mm sim ...` is handed to the simulator's own parser below.
    sub.add_parser("sim", help="run the local exchange simulator (mm sim --help)", add_help=False)

    default_instance = os.environ.get("MM_INSTANCE", "mm")
    sp = sub.add_parser("status", help="live view of a running instance")
    sp.add_argument("--instance", default=default_instance)
    sp.add_argument("--once", action="store_true", help="print one snapshot as plain lines "
                                                        "and exit (implied when stdout is "
                                                        "not a terminal)")
    sp.add_argument("--json", action="store_true", help="print one snapshot as JSON and exit")
    sp.add_argument("--interval", type=float, default=0.5)
    sp.set_defaults(fn=_cmd_status)

    sp = sub.add_parser("kill", help="pause: cancel every order and stop quoting; every "
                                     "process stays up and connected (mm resume, mm stop)")
    sp.add_argument("--instance", default=default_instance)
    sp.add_argument("--wait", type=float, default=15.0, metavar="S",
                    help="seconds to wait for the sender to confirm every order gone")
    sp.set_defaults(fn=_cmd_kill)

    sp = sub.add_parser("resume", help="after mm kill: reconcile with the venue, then quote "
                                       "again (also clears a latched stop: drawdown, refusal)")
    sp.add_argument("--instance", default=default_instance)
    sp.set_defaults(fn=_cmd_resume)

    sp = sub.add_parser("stop", help="the full stop (as SIGTERM): cancel everything, confirm, "
                                     "and end every process")
    sp.add_argument("--instance", default=default_instance)
    sp.add_argument("--wait", type=float, default=60.0, metavar="S",
                    help="seconds to wait for the processes to end")
    sp.set_defaults(fn=_cmd_stop)

    sp = with_config(sub.add_parser("layout", help="print the cores and idle strategies the "
                                                    "engine would use on this box (JSON)"))
    sp.add_argument("--sys-root", default="/", help="read sys/devices/system/... below this "
                                                    "directory (another machine's topology)")
    sp.add_argument("--nic", help="trading network interface (default: the default route's)")
    sp.add_argument("--env-file", help="the instance's env file (default: the config's "
                                       "sibling .env, as the units read it)")
    sp.set_defaults(fn=_cmd_layout)

    sp = with_config(sub.add_parser("doctor", help="check this box against the config: "
                                                    "isolation, IRQs, limits, clock, units"))
    sp.add_argument("--sys-root", default="/", help="read sys/... below this directory")
    sp.add_argument("--proc-root", default="/proc", help="read the proc files from here")
    sp.add_argument("--unit-dir", default="/etc/systemd/system",
                    help="where the mm units are installed")
    sp.add_argument("--env-file", help="the instance's env file (default: the config's "
                                       "sibling .env, as the units read it)")
    sp.set_defaults(fn=_cmd_doctor)

    sp = sub.add_parser("alert", help="log why an engine unit stopped (systemd OnFailure=)")
    sp.add_argument("--unit", help="the unit (default: $MONITOR_UNIT set by systemd)")
    sp.add_argument("--if-status", nargs="*", metavar="N",
                    help="only when the process exited with one of these statuses")
    sp.set_defaults(fn=_cmd_alert)

    sp = sub.add_parser("report", help="print the latency histograms of a finished run")
    sp.add_argument("run_dir", nargs="?",
                    default=os.path.join("runs", "latest"))
    sp.add_argument("--explain", action="store_true",
                    help="then one line per counter and hop saying what it means")
    sp.set_defaults(fn=_cmd_report)

    sp = sub.add_parser("metrics", help="serve Prometheus metrics of a running instance")
    sp.add_argument("--instance", default=default_instance)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=9464)
    sp.set_defaults(fn=_cmd_metrics)

    sp = sub.add_parser("shm", help="list or remove an instance's shared-memory segments")
    sp.add_argument("action", choices=["ls", "rm"])
    sp.add_argument("--instance", default=default_instance)
    sp.add_argument("--all", action="store_true", help="every engine instance on this box")
    sp.add_argument("--force", action="store_true",
                    help="rm: remove a running instance's segments too (mm kill and mm status "
                         "then no longer reach it while it keeps trading)")
    sp.set_defaults(fn=_cmd_shm)

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:  # the simulator parses its own flags (argparse REMAINDER cannot)
        return _cmd_sim(argv[1:])
    args = p.parse_args(argv)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
