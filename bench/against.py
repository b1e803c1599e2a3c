"""A/B: the working tree's engine against a git ref's, interleaved round by round in one run,
against one venue (`python -m bench --against REF`, `make bench AGAINST=REF`).

Both sides run the same way, so neither is favoured:
  - `mm run` from their own venv (the ref's built by bench/against_build.py), each with its
    own source tree as working directory (`python -m engine.cli` children import from there),
    the same config (keys the ref does not know are dropped, and said so), and the same
    environment: MM_MD_URL / MM_ORDER_URL at the bench venue, MM_SYMBOL, and MM_API_KEY /
    MM_API_SECRET (the demo pair: HMAC-signed orders on both sides, as old refs know no other);
  - read from outside by bench/against_probe.py run with their own Python: hop histograms as
    (bucket low, width, count) and counters, so a ref with another histogram layout is read
    with its own code; CPU of every process from the kernel (psutil).

The comparison (`compare`): per rate and metric (wire-to-wire P50/P90/P99/P99.9, events
answered, CPU per event of the engine's processes, each hop's P50 and P99): the median over
rounds of each side, engine/ref, the rounds' spread, and a regression flag when the engine is
worse by more than the tolerance: the larger of the two sides' relative spread over rounds
((max - min) / median) and a noise floor per kind of metric (FLOORS: with one round the floor
alone decides; this box's P99 moves 2x between rounds).
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import statistics
import subprocess
import time
from pathlib import Path

from bench.contenders import (ENGINE_READY_TIMEOUT_S, ENGINE_STOP_TIMEOUT_S, Contender,
                              ContenderError, clean_env, die_with_parent)

PROBE = (Path(__file__).parent / "against_probe.py").read_text()
PROBE_TIMEOUT_S = 10.0
# worse by more than this share (and the rounds' spread) is flagged
# (measured here: the same engine on both sides differed by up to 23% in events answered and
# 15% in P50 over two rounds of one second, with two other benches running on the box)
FLOORS = {"p50": 0.35, "p90": 0.5, "p99": 0.75, "p999": 1.0, "answered": 0.30,
          "cpu": 0.35, "hop_p50": 0.5, "hop_p99": 1.0}


class ProbedEngine(Contender):
    """`mm run` of some version, started from its own venv and source tree."""

    def __init__(self, name: str, label: str, mm: Path, python: Path, cwd: Path, config: Path,
                 instance: str, symbol: str, run_dir: Path):
        super().__init__("mm")
        self.name, self.label = name, label
        self.mm, self.python, self.cwd = mm, python, cwd
        self.config, self.instance, self.symbol, self.run_dir = config, instance, symbol, run_dir
        self.probe: subprocess.Popen | None = None
        self.role_pids: dict[str, int] = {}

    def start(self, md_url: str, api_url: str, backstop_s: float) -> None:
        from engine import demo_keys

        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = clean_env({"MM_MD_URL": md_url, "MM_ORDER_URL": api_url, "MM_SYMBOL": self.symbol,
                         "MM_API_KEY": demo_keys.DEMO_API_KEY,
                         "MM_API_SECRET": demo_keys.DEMO_API_SECRET})
        self.log_path = self.run_dir / "mm-run.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(self.mm), "run", "--config", str(self.config), "--instance", self.instance,
                 "--duration", f"{backstop_s:.0f}", "--run-dir", str(self.run_dir)],
                stdout=log, stderr=log, text=True, env=env, cwd=self.cwd,
                start_new_session=True, preexec_fn=die_with_parent)

    def _ask(self, op: str) -> dict:
        self.probe.stdin.write(op + "\n")
        self.probe.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.probe.stdout, selectors.EVENT_READ)
        if not sel.select(PROBE_TIMEOUT_S):
            raise ContenderError(f"{self.label}: the probe did not answer {op!r}")
        line = self.probe.stdout.readline()
        if not line:
            raise ContenderError(f"{self.label}: the probe exited")
        return json.loads(line)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + ENGINE_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            if self.probe is None:
                self.probe = subprocess.Popen(
                    [str(self.python), "-c", PROBE, self.instance], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=self.cwd,
                    env=clean_env(), preexec_fn=die_with_parent)
            state = self._ask("state")
            if state.get("running"):
                self.role_pids = state["pids"]
                return
            time.sleep(0.1)
        raise ContenderError(f"{self.label} not running after {ENGINE_READY_TIMEOUT_S:g} s; "
                             f"see {self.log_path}")

    def pids(self) -> dict[str, int]:
        if self.proc is None or self.proc.poll() is not None:
            return {}
        return {"supervisor": self.proc.pid, **self.role_pids}

    def snapshot(self) -> dict:
        if self.probe is None:
            return {}
        snap = self._ask("snap")
        return {} if "error" in snap else snap

    @staticmethod
    def hops_between(a: dict, b: dict) -> dict:
        """{hop: {count, p50, p90, p99, p999, max}} (us) of what was recorded from a to b."""
        out = {}
        for name, now in b.get("hists", {}).items():
            before = {low: n for low, _, n in a.get("hists", {}).get(name, [])}
            rows = [(low, width, n - before.get(low, 0)) for low, width, n in now]
            rows = [r for r in rows if r[2] > 0]
            if rows:
                out[name] = _bucket_stats(rows)
        return out

    def stop(self) -> int | None:
        if self.probe is not None:
            try:
                self.probe.stdin.close()
            except OSError:
                pass
            self.probe.wait(timeout=5)
            self.probe.stdout.close()
            self.probe = None
        code = self._stop_with(signal.SIGINT, ENGINE_STOP_TIMEOUT_S)
        from engine.ring.segment import list_segments, unlink

        for name in list_segments(self.instance):
            unlink(name)
        return code


def _bucket_stats(rows: list) -> dict:
    """Percentiles at bucket midpoints (the histograms' own stated error), in us."""
    total = sum(n for _, _, n in rows)
    out, seen, qi = {"count": total}, 0, 0
    qs = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)]
    for low, width, n in sorted(rows):
        seen += n
        while qi < len(qs) and seen >= qs[qi][1] * total:
            out[qs[qi][0]] = (low + (width - 1) / 2) / 1e3
            qi += 1
    low, width, _ = max(rows)
    out["max"] = (low + (width - 1) / 2) / 1e3
    return out


# ---------------------------------------------------------------- the ref's config
_PRUNE = """
import json, sys, tomllib, msgspec
from engine.config import EngineConfig
raw = tomllib.loads(open(sys.argv[1]).read())
dropped = []
def prune(d, t, path):
    fields = {f.name: f.type for f in msgspec.structs.fields(t)}
    for k in list(d):
        if k not in fields:
            dropped.append(path + k); del d[k]
        elif isinstance(d[k], dict) and isinstance(fields[k], type) and issubclass(fields[k], msgspec.Struct):
            prune(d[k], fields[k], path + k + ".")
prune(raw, EngineConfig, "")
print(json.dumps({"raw": raw, "dropped": dropped}))
"""


def config_for(python: Path, cwd: Path, config: Path, out: Path) -> list[str]:
    """Write to `out` the config `config` without the keys the version at `cwd` does not know;
    returns those keys (dotted)."""
    r = subprocess.run([str(python), "-c", _PRUNE, str(config)], capture_output=True, text=True,
                       cwd=cwd, env=clean_env())
    if r.returncode:                  # a version without this config shape: use it as it is
        out.write_text(config.read_text())
        return []
    doc = json.loads(r.stdout)
    out.write_text(_toml(doc["raw"]))
    return doc["dropped"]


def _toml(raw: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v)
    lines = [f"{k} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for section, body in raw.items():
        if isinstance(body, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in body.items() if not isinstance(v, dict)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the comparison
def compare(runs, rates) -> list[dict]:
    """One row per rate and metric (see the module doc); `runs` are e2e Runs of "engine" and
    "ref" whose phases carry `figures` (bench/e2e_figures.phase_figures)."""
    from bench.e2e_figures import phase_figures

    per: dict = {}               # (side, rate) -> [figures of each round]
    for run in runs:
        for ph in run.phases:
            per.setdefault((run.contender, ph["rate"]), []).append(phase_figures(ph))
    rows = []
    for rate in rates:
        ref, eng = per.get(("ref", rate), []), per.get(("engine", rate), [])
        if not ref or not eng:
            continue

        def add(metric, kind, get, higher_is_better=False):
            a = [v for v in map(get, ref) if v is not None and v == v]
            b = [v for v in map(get, eng) if v is not None and v == v]
            if a and b:
                rows.append(_row(rate, metric, kind, a, b, higher_is_better))
        for q in ("p50", "p90", "p99", "p999"):
            add(f"wire-to-wire {q.upper().replace('P999', 'P99.9')} (us)", q,
                lambda f, q=q: f["wire"][q])
        add("events answered (%)", "answered", lambda f: 100 * f["answered"], True)
        add("CPU per event, engine processes (us)", "cpu",
            lambda f: sum(v for p, v in f["cpu_us_per_event"].items() if p != "venue"))
        hops = sorted({h for f in ref + eng for h in f.get("hops", {})})
        for h in hops:
            for q in ("p50", "p99"):
                add(f"{h} {q.upper()} (us)", f"hop_{q}",
                    lambda f, h=h, q=q: f.get("hops", {}).get(h, {}).get(q))
    return rows


def _row(rate, metric, kind, ref: list, eng: list, higher_is_better: bool) -> dict:
    mr, me = statistics.median(ref), statistics.median(eng)

    def spread(v, m):
        return (max(v) - min(v)) / m if m else 0.0
    tol = max(spread(ref, mr), spread(eng, me), FLOORS[kind])
    ratio = me / mr if mr else float("nan")
    worse = (ratio < 1 / (1 + tol)) if higher_is_better else (ratio > 1 + tol)
    better = (ratio > 1 + tol) if higher_is_better else (ratio < 1 / (1 + tol))
    return {"rate": rate, "metric": metric, "ref": mr, "engine": me, "ratio": ratio,
            "ref_rounds": ref, "engine_rounds": eng, "tolerance": tol,
            "regression": bool(worse and mr == mr), "improvement": bool(better and mr == mr)}


def print_table(rows: list[dict], ref_label: str, dropped: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console() if Console().is_terminal else Console(width=160)
    t = Table(title=f"A/B: working tree vs {ref_label}, median of rounds; engine/ref > 1: the "
                    f"working tree is higher; REGRESSION / better: worse / better beyond the "
                    f"rounds' spread and the noise floor")
    for col in ("rate/s", "metric", "ref", "working tree", "engine/ref", "rounds ref",
                "rounds tree", "tolerance", ""):
        t.add_column(col, justify="left" if col in ("metric", "") else "right")
    last = None
    for r in rows:
        if last is not None and r["rate"] != last:
            t.add_section()
        last = r["rate"]
        t.add_row(f"{r['rate']:,}", r["metric"], _n(r["ref"]), _n(r["engine"]),
                  f"{r['ratio']:.2f}", " ".join(_n(v) for v in r["ref_rounds"]),
                  " ".join(_n(v) for v in r["engine_rounds"]), f"±{100 * r['tolerance']:.0f}%",
                  "[red]REGRESSION[/]" if r["regression"] else
                  "[green]better[/]" if r["improvement"] else "")
    c.print(t)
    if dropped:
        c.print(f"[yellow]config keys the ref does not know, left out of its config: "
                f"{', '.join(dropped)}[/]")
    bad = [r for r in rows if r["regression"]]
    c.print(f"[red]{len(bad)} regression(s)[/]: " + "; ".join(
        f"{r['metric']} at {r['rate']:,}/s x{r['ratio']:.2f}" for r in bad) if bad
        else "no regression beyond the rounds' spread")


def _n(v) -> str:
    return "-" if v is None or v != v else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def swapped(runs):
    """The same runs with the sides exchanged (the ref as the tree): compare(swapped(runs))
    reads the A/B the other way round."""
    import dataclasses

    other = {"engine": "ref", "ref": "engine"}
    return [dataclasses.replace(r, contender=other.get(r.contender, r.contender)) for r in runs]


def engine_pair(ref, config: Path, out_dir: Path, symbol: str, ref_settings: Path | None = None):
    """A factory for e2e: (name, repeat) -> the ProbedEngine of that side and round. The ref
    runs `ref_settings` when given (the common config plus its own settings), else `config`."""
    import sys

    from bench.against_build import ROOT

    ref_config = out_dir / "engine-ref.toml"
    dropped = config_for(ref.python, ref.src, ref_settings or config, ref_config)
    here = Path(sys.executable)

    def make(name: str, repeat: int) -> ProbedEngine:
        instance = f"ab{os.getpid()}{name[0]}{repeat}"
        if name == "ref":
            return ProbedEngine("ref", f"{ref.name} ({ref.sha[:10]})", ref.mm, ref.python,
                                ref.src, ref_config, instance, symbol,
                                out_dir / "runs" / f"ref-r{repeat}")
        return ProbedEngine("engine", "working tree", here.parent / "mm", here, ROOT, config,
                            instance, symbol, out_dir / "runs" / f"engine-r{repeat}")
    return make, dropped
