"""End to end: the whole engine against the alternatives, on one venue, in one run.

One venue (bench/venue.py: by default the light venue, bench/light_venue.py, which takes a small
share of a core; `--venue sim` the full simulator, niced like the one `mm run` embeds) streams
BTCUSDT book events at paced rates; each contender in turn trades against it:
  engine    `mm run` with MM_MD_URL / MM_ORDER_URL at the venue (the layout it picks itself)
  asyncio   the single-process asyncio bot as tutorials write it (bench/baselines/asyncio_bot)
  mpqueue   the engine's own feed/model/signing with multiprocessing.Queue between processes
  reflex    one picows process answering each event with a pre-built signed order: the floor
Per contender and rate (a phase): wire-to-wire as the venue sees it (market frame written ->
order frame received, matched by client order id), the fraction of events answered, CPU per
event of every process; for the engine also its own per-hop histograms, rings and counters.
After the paced rates the engine alone runs the saturation rates: where it stops keeping up,
and what it does then (md ring drops, conflation into batches), counted.

Contenders run interleaved, `repeats` rounds (each round starting with the next contender), so a
slow spell of the shared host hits all of them; the tables show medians over rounds, ratios per
round then their median.

    python -m bench --only e2e [--quick] [--e2e-rates 500,2000] [--e2e-phase 2] ...
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.contenders import (Baseline, Contender, ContenderError, Engine, clean_env,
                              die_with_parent)
from bench.venue import Venue, VenueError
from engine.box import wake_latency

SYMBOL = "BTCUSDT"
ENGINE_TOML = """\
# written by bench/e2e.py: the engine as `mm run` runs it, quoting one level per side and
# requoting on every price change (the baselines do the same), limits out of the way
tag = "mm"
metrics_port = 0
[quoter]
levels = 1
requote_ticks = 1
rate_per_10s = 100000
rate_per_day = 10000000
max_position = "10"
max_notional = "10000000"
max_drawdown = "0"
"""
def engine_toml(settings) -> str:
    """ENGINE_TOML with `section.key=value` settings put into their sections (a value that is
    not a number or true/false is written as a string)."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in ENGINE_TOML.splitlines():
        if line.startswith("["):
            current = line.strip("[] ")
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    for item in settings:
        name, sep, value = item.partition("=")
        section, _, key = name.strip().rpartition(".")
        if not sep or not key:
            raise ValueError(f"--e2e-engine-set: expected SECTION.KEY=VALUE, got {item!r}")
        value = value.strip()
        try:
            float(value)
        except ValueError:
            if value not in ("true", "false"):          # TOML booleans stay booleans
                value = '"' + value.strip('"') + '"'
        lines = sections.setdefault(section, [])
        lines[:] = [x for x in lines if x.partition("=")[0].strip() != key.strip()]
        lines.append(f"{key.strip()} = {value}")
    out = list(sections.pop(""))
    for section, lines in sections.items():
        out += [f"[{section}]", *lines]
    return "\n".join(out) + "\n"


BASELINES = {  # name -> (label, module, tag, child process roles)
    "asyncio": ("asyncio bot", "asyncio_bot", "aio", ()),
    "mpqueue": ("mp.Queue pipeline", "mpqueue", "mpq", ("sender", "quoter", "feed")),
    "reflex": ("picows reflex", "reflex", "rfx", ()),
}
CONTENDERS = ("engine", *BASELINES)


@dataclass
class Settings:
    rates: tuple[int, ...] = (500, 2000, 5000, 10000)
    saturation: tuple[int, ...] = (20000, 40000, 80000)
    phase_s: float = 4.0          # measured seconds per rate
    settle_s: float = 0.5         # after a rate change, before measuring
    warmup_s: float = 1.0         # after a contender is ready, before its first phase
    repeats: int = 3
    contenders: tuple[str, ...] = CONTENDERS
    venue_cpu: int = -1           # -1: the scheduler places the venue (an independent exchange)
    venue: str = "light"          # light (bench/light_venue.py) | sim (the full simulator)
    against: str = ""             # a git ref: A/B of the working tree's engine and the ref's
    venue_batch_us: float = -1.0  # light venue: events due within this share a write (-1: its
                                  # default, 500 us; 0: one wake-up and write per event)
    baseline_wake_latency_us: int = 0   # the PM QoS wake-up bound the bench holds for the
                                  # baselines' turns: the engine holds its own (its config's
                                  # cpu_wake_latency_us, 0 by default), so every contender runs
                                  # on a box tuned alike; -1: the box's own setting

    @classmethod
    def from_args(cls, args) -> "Settings":
        quick = bool(getattr(args, "quick", False))
        # quick (QUICK=1 under 2 minutes): the three rates, the baselines that start
        # fast (mpqueue compiles three numba processes), one saturation rate
        s = (cls(rates=(500, 2000, 5000), phase_s=1.0, settle_s=0.3, warmup_s=0.5, repeats=1,
                 saturation=(20000,), contenders=("engine", "asyncio", "reflex"))
             if quick else cls())

        def ints(text: str) -> tuple[int, ...]:
            return tuple(int(float(x)) for x in text.split(",") if x.strip())
        if getattr(args, "e2e_rates", None):
            s.rates = ints(args.e2e_rates)
        if getattr(args, "e2e_saturation", None) is not None:
            s.saturation = ints(args.e2e_saturation)
        if getattr(args, "e2e_phase", None):
            s.phase_s = float(args.e2e_phase)
        if getattr(args, "e2e_repeats", None):
            s.repeats = int(args.e2e_repeats)
        if getattr(args, "venue", None):
            s.venue = args.venue
        if getattr(args, "venue_batch_us", None) is not None:
            s.venue_batch_us = float(args.venue_batch_us)
        if getattr(args, "e2e_venue_cpu", None) is not None:
            s.venue_cpu = int(args.e2e_venue_cpu)
        if getattr(args, "e2e_baseline_wake_latency", None) is not None:
            s.baseline_wake_latency_us = int(args.e2e_baseline_wake_latency)
        if getattr(args, "e2e_contenders", None):
            s.contenders = tuple(c.strip() for c in args.e2e_contenders.split(",") if c.strip())
        if getattr(args, "against", None):
            # the two engines only, no saturation; two rounds at least: the spread of the
            # rounds is what a regression must exceed
            s.against, s.contenders, s.saturation = args.against, ("engine", "ref"), ()
            if not getattr(args, "e2e_repeats", None):
                s.repeats = max(s.repeats, 2)
        s.check()
        return s

    def check(self) -> None:
        from bench.venue import KINDS

        if self.venue not in KINDS:
            raise ValueError(f"--venue: expected one of {', '.join(KINDS)}, got {self.venue!r}")
        bad = [c for c in self.contenders
               if c not in CONTENDERS + ("ref",) or (c == "ref" and not self.against)]
        if bad or not self.contenders:
            raise ValueError(f"--e2e-contenders: expected some of {list(CONTENDERS)}, got "
                             f"{list(self.contenders)}")
        if not self.rates or any(not 0 < r <= 100_000 for r in self.rates + self.saturation):
            raise ValueError("--e2e-rates / --e2e-saturation: expected rates in 1..100000 events/s")
        if self.phase_s <= 0 or self.repeats < 1:
            raise ValueError(f"--e2e-phase > 0 and --e2e-repeats >= 1, got {self.phase_s}, "
                             f"{self.repeats}")

    def phases_of(self, contender: str) -> tuple[int, ...]:
        return self.rates + (self.saturation if contender == "engine" else ())

    def planned_s(self) -> float:
        """Seconds of phases, settles and warm-ups (starting and stopping come on top)."""
        per = sum(len(self.phases_of(c)) * (self.phase_s + self.settle_s) + self.warmup_s
                  for c in self.contenders)
        return per * self.repeats


@dataclass
class Run:
    """One contender's turn in one round: its phases and how it ended."""
    repeat: int
    contender: str
    label: str
    phases: list[dict] = field(default_factory=list)
    exit_status: int | None = None
    error: str = ""


def main(args=None) -> dict:
    from bench.e2e_output import write_outputs
    from bench.progress import Progress

    settings = Settings.from_args(args)
    out_dir = Path(getattr(args, "out_dir", None) or "bench/results/e2e") / "e2e"
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / "engine.toml"
    sets = list(getattr(args, "e2e_engine_set", None) or ())
    if settings.against:              # both sides sign alike: HMAC is what every version knows
        sets.insert(0, "sender.auth=hmac")
    config.write_text(engine_toml(sets))
    runs: list[Run] = []
    instances: list[str] = []
    engine_summary: dict = {}
    interrupted, venue_error = False, ""
    make = against = None
    if settings.against:
        from bench.against import engine_pair
        from bench.against_build import ROOT, build

        ref = build(settings.against, Path(getattr(args, "against_repo", None) or ROOT))
        ref_sets = list(getattr(args, "against_set", None) or ())
        ref_config = None
        if ref_sets:                  # the ref's own settings on top of the common ones
            ref_config = out_dir / "engine-ref-set.toml"
            ref_config.write_text(engine_toml(sets + ref_sets))
        make, dropped = engine_pair(ref, config, out_dir, SYMBOL, ref_config)
        against = {"ref": ref.name, "sha": ref.sha, "subject": ref.subject,
                   "config_keys_dropped": dropped, "ref_settings": ref_sets}
    with Progress(total=settings.repeats * sum(len(settings.phases_of(c))
                                               for c in settings.contenders)) as progress:
        venue = _start_venue(settings.rates[0], settings.venue_cpu, out_dir / "runs",
                             settings.venue, batch_us=settings.venue_batch_us)
        try:
            for r in range(settings.repeats):
                n = len(settings.contenders)    # each round starts one further along
                for name in (settings.contenders[(r + k) % n] for k in range(n)):
                    c = make(name, r) if make else _make(name, r, out_dir, config, instances)
                    if make:
                        instances.append(c.instance)
                    run = Run(r, name, c.label)
                    runs.append(run)
                    _turn(c, run, venue, settings, progress, r)
                    if isinstance(c, Engine) and not engine_summary:
                        engine_summary = c.summary()
        except KeyboardInterrupt:
            interrupted = True
        except VenueError as e:         # the measurements so far stand; the rest cannot run
            venue_error = str(e)
            progress.note(f"[red]{e}[/]")
        finally:
            with _signals_ignored():
                _stop_venue(venue, instances)
    result = write_outputs(out_dir, settings, runs, engine_summary, interrupted or bool(venue_error),
                           against)
    if interrupted:
        raise KeyboardInterrupt("e2e interrupted; e2e.json holds the phases measured")
    if venue_error:
        raise RuntimeError(f"e2e stopped early: {venue_error}; e2e.json holds the phases measured")
    return result


def _make(name: str, repeat: int, out_dir: Path, config: Path, instances: list[str]) -> Contender:
    if name == "engine":
        instance = f"bench{os.getpid()}r{repeat}"
        instances.append(instance)
        return Engine("mm", config, instance, SYMBOL, out_dir / "runs" / f"engine-r{repeat}")
    label, module, tag, roles = BASELINES[name]
    extra = ["--config", str(config)] if name == "mpqueue" else []
    return Baseline(name, label, module, tag, out_dir / "runs", extra, roles)


def _turn(c: Contender, run: Run, venue: Venue, s: Settings, progress, repeat: int) -> None:
    """Start the contender, measure each of its phases, stop it; errors end this turn only."""
    phases = s.phases_of(c.name)
    progress.describe(f"round {repeat + 1}/{s.repeats} · {c.label} · starting")
    venue.set_rate(s.rates[0])
    # The engine holds its wake-up bound itself (engine/box/wake_latency.py); a baseline is
    # given the same box by the bench, for its turn only.
    held = -1
    if isinstance(c, Baseline) and s.baseline_wake_latency_us >= 0:
        held, why = wake_latency.hold(s.baseline_wake_latency_us)
        if why:
            progress.note(f"[yellow]{c.label}: {why}[/]")
    try:
        c.start(venue.md_url, venue.api_url, backstop_s=s.planned_s() + 300)
        c.wait_ready()
        time.sleep(s.warmup_s)
        for rate in phases:
            progress.describe(f"round {repeat + 1}/{s.repeats} · {c.label} · {rate:,} events/s")
            run.phases.append(_phase(c, venue, rate, s))
            progress.advance()
    except ContenderError as e:
        run.error = str(e)
        progress.note(f"[red]{e}[/]")
        progress.advance(len(phases) - len(run.phases))
    finally:
        with _signals_ignored():     # a second Ctrl-C must not leave the engine quoting
            progress.describe(f"round {repeat + 1}/{s.repeats} · {c.label} · stopping")
            run.exit_status = c.stop()
            _cancel_left(venue, c.label, progress)
            if held >= 0:
                os.close(held)
    if run.exit_status not in (0, None) and not run.error:
        run.error = f"{c.label} exit status {run.exit_status}; see {c.log_path}"
        progress.note(f"[yellow]{run.error}[/]")


def _phase(c: Contender, venue: Venue, rate: int, s: Settings) -> dict:
    """One measured interval at `rate`: venue marks, the contender's own view and CPU times
    taken just before and just after."""
    venue.set_rate(rate)
    time.sleep(s.settle_s)
    pids = c.pids()
    pids["venue"] = venue.pid
    m0, in0, cpu0, steal0 = venue.mark(), c.snapshot(), _cpu(pids), psutil.cpu_times().steal
    time.sleep(s.phase_s)
    m1, in1, cpu1, steal1 = venue.mark(), c.snapshot(), _cpu(pids), psutil.cpu_times().steal
    seconds = (m1["t_ns"] - m0["t_ns"]) / 1e9
    st0, st1 = m0["stats"], m1["stats"]
    probed = hasattr(c, "hops_between")
    events = st1["book_events"] - st0["book_events"]
    return {
        "rate": rate, "seconds": seconds, "events": events,
        "orders": st1["orders_received"] - st0["orders_received"],
        "venue_errors": st1["errors"] - st0["errors"],
        "slow_consumers_dropped": st1["slow_consumers_dropped"] - st0["slow_consumers_dropped"],
        "wire_ns": m1["samples"],
        "cpu_s": _venue_own_cpu({p: cpu1[p] - cpu0[p] for p in cpu0 if p in cpu1}, st0, st1),
        "steal_pct": 100 * (steal1 - steal0) / (seconds * psutil.cpu_count()),
        "wake_bound_us": wake_latency.in_force(),     # the PM QoS bound while it ran
        "engine": _engine_delta(in0, in1) if in0 and in1 and not probed else None,
        # an engine read by bench/against_probe.py: its hops, already in us
        "probe": c.hops_between(in0, in1) if in0 and in1 and probed else None,
    }


def _engine_delta(a: dict, b: dict) -> dict:
    return {"hops": {name: h.since(a["hists"][name]) for name, h in b["hists"].items()},
            "rings": {name: {k: v - a["rings"][name][k] if k in _RING_COUNTS else v
                             for k, v in st.items()} for name, st in b["rings"].items()},
            "counters": {role: {k: v - a["counters"][role].get(k, 0) for k, v in c.items()}
                         for role, c in b["counters"].items()}}


def _venue_own_cpu(cpu: dict, st0: dict, st1: dict) -> dict:
    """The light venue reports its own getrusage (microseconds): finer than psutil's ticks."""
    if "cpu_s" in st0 and "cpu_s" in st1:
        cpu["venue"] = st1["cpu_s"] - st0["cpu_s"]
    return cpu


_RING_COUNTS = {"written", "read", "dropped", "blocked", "wakes", "parks"}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """user + system CPU seconds of each process so far."""
    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


# ---------------------------------------------------------------- the venue
def _start_venue(rate: int, cpu: int, log_dir: Path, kind: str = "light",
                 symbols: list[str] | None = None, batch_us: float = -1.0) -> Venue:
    """The simulator niced as `mm run` nices its embedded one (the engine's processes preempt
    it); the light venue at normal priority, as an exchange on its own box would answer. Both
    unpinned unless asked: pinned beside feed and quoter, where `mm run` places its embedded
    one, the simulator measured the engine's wire-to-wire P50 about twice as high here."""
    from engine.supervisor.startup import SIM_NICE

    log_dir.mkdir(parents=True, exist_ok=True)
    return Venue.start(rate=rate, symbols=symbols or [SYMBOL],
                       nice=SIM_NICE if kind == "sim" else 0, cpu=cpu,
                       preexec_fn=die_with_parent, log_path=str(log_dir / "venue.log"),
                       env=clean_env(), kind=kind,
                       extra_args=["--batch-us", str(batch_us)] if kind == "light" and
                       batch_us >= 0 else None)


def _cancel_left(venue: Venue, label: str, progress) -> None:
    """Cancel whatever a contender left resting (the engine leaves nothing; the baselines do
    not clean up), so the next one starts on an empty account."""
    from websockets.exceptions import WebSocketException

    from bench.common import venue_request

    try:
        r = venue_request(venue.api_url, "openOrders.cancelAll", {"symbol": SYMBOL})
    except (OSError, WebSocketException) as e:
        progress.note(f"[yellow]cancel-all after {label} failed: {e}[/]")
        return
    if r.get("status") == 200:
        progress.note(f"{label} left {len(r['result'])} order(s) resting; canceled")


def _stop_venue(venue: Venue, instances: list[str]) -> None:
    from engine.ring.segment import list_segments, unlink

    venue.stop()
    for instance in instances:       # normally mm run removed them already
        for name in list_segments(instance):
            unlink(name)


class _signals_ignored:
    """SIGINT/SIGTERM ignored inside the block: cleanup that must finish (bounded by timeouts)."""

    def __enter__(self):
        self.saved = [(s, signal.signal(s, signal.SIG_IGN)) for s in (signal.SIGINT, signal.SIGTERM)]

    def __exit__(self, *exc):
        for s, h in self.saved:
            signal.signal(s, h)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(main(ap.parse_args()), default=str)[:2000])
