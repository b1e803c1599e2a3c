"""End-to-end: the whole engine against the embedded simulator (`mm run`), several runs per
layout, tick-to-order and the venue-side wire-to-wire figure. The baseline measured in the same
benchmark is the all-parking layout (no stage spins); ratios are medians over runs, because
the hypervisor steals the CPU for milliseconds now and then."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import describe_machine, table

LAYOUTS = {
    "auto (chosen by mm run)": "",
    "all park (baseline)": "[quoter]\nidle = 'park'\n[sender]\nidle = 'park'\n",
}


def _one_run(toml: str, duration: float, work: Path, tag: str) -> dict | None:
    run_dir = work / tag
    cfg = work / f"{tag}.toml"
    cfg.write_text(f"metrics_port = 0\ninstance = 'e2e{os.getpid()}'\n" + toml)  # top keys first
    cmd = [sys.executable, "-m", "engine.cli", "run", "--config", str(cfg), "--duration",
           str(duration), "--run-dir", str(run_dir)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 180)
    summary = run_dir / "summary.json"
    if p.returncode != 0 or not summary.exists():
        print(f"  run {tag} failed (status {p.returncode}): {p.stderr[-400:]}")
        return None
    s = json.loads(summary.read_text())
    t2o = next((v for k, v in s["histograms"].items() if k.endswith("tick_to_order")), {})
    w2w = s.get("wire_to_wire", {})
    return {"t2o_p50": t2o.get("p50", float("nan")), "t2o_p99": t2o.get("p99", float("nan")),
            "orders": t2o.get("count", 0), "w2w_p50": w2w.get("p50", float("nan")),
            "w2w_p99": w2w.get("p99", float("nan")), "layout": s.get("layout")}


def main(args=None) -> dict:
    quick = bool(getattr(args, "quick", False))
    runs = 2 if quick else 3
    duration = 10.0 if quick else 20.0
    results: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(runs):  # interleaved, so slow phases of the host hit both layouts
            for j, (name, toml) in enumerate(LAYOUTS.items()):
                r = _one_run(toml, duration, work, f"l{j}r{i}")
                if r:
                    results[name].append(r)
    rows = []
    for name, rs in results.items():
        if not rs:
            continue
        med = {k: statistics.median(r[k] for r in rs) for k in ("t2o_p50", "t2o_p99", "w2w_p50",
                                                                 "w2w_p99", "orders")}
        lay = rs[0]["layout"] or {}
        rows.append({"name": name, **{k: v / 1e3 if k != "orders" else v for k, v in med.items()},
                     "runs": len(rs), "where": ", ".join(f"{r}@{c}/{lay.get('idle', {}).get(r, 'epoll')}"
                                                          for r, c in lay.get("cores", {}).items())})
    base = next((r for r in rows if "baseline" in r["name"]), None)
    for r in rows:
        r["x_base"] = base["t2o_p50"] / r["t2o_p50"] if base and r["t2o_p50"] else float("nan")
    print(f"\n== end to end: mm run against the simulator, {runs} x {duration:g} s per layout "
          f"(medians over runs)")
    print(f"machine: {describe_machine()}")
    print(table(rows, [("name", "layout", ""), ("t2o_p50", "t2o P50 us", ".1f"),
                       ("t2o_p99", "t2o P99 us", ".1f"), ("w2w_p50", "wire P50 us", ".1f"),
                       ("w2w_p99", "wire P99 us", ".1f"), ("orders", "orders/run", ".0f"),
                       ("x_base", "P50 x vs park", ".2f")]))
    for r in rows:
        print(f"  {r['name']}: {r['where']}")
    return {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in rows}


if __name__ == "__main__":
    main()
