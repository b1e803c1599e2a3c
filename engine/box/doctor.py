"""`mm doctor`: the box against the config, as a pass/warn/fail table.

A fail means the engine cannot run as configured (a core that is not online, /dev/shm too small,
memory locking or real-time priority asked for and refused); a warn means it runs with a worse
tail or less safety than it could (no isolated cores, IRQs on trading cores, clock not
synchronised, stale segments, units not installed). Every check reads files below `sys_root` and
`proc_root`, so tests describe other machines with trees of plain files; nothing is changed.
The exit status is 1 when any check fails.
"""
from __future__ import annotations

from pathlib import Path

from engine.box import cpu_checks, system_checks
from engine.box.facts import FAIL, PASS, WARN, Box, Finding


def run(box: Box) -> list[Finding]:
    """Every check, in table order."""
    findings: list[Finding] = []
    for check in (*cpu_checks.CHECKS, *system_checks.CHECKS):
        findings.extend(check(box))
    return findings


def render(findings: list[Finding]) -> str:
    """The table: one row per finding, its fix on the next line."""
    width = max(len(f.check) for f in findings) + 2
    lines = [f"{'CHECK':<{width}}STATUS  DETAIL"]
    for f in findings:
        lines.append(f"{f.check:<{width}}{f.status.upper():<8}{f.detail}")
        if f.fix and f.status != PASS:
            lines.append(f"{'':<{width + 8}}fix: {f.fix}")
    counts = {s: sum(1 for f in findings if f.status == s) for s in (PASS, WARN, FAIL)}
    lines.append(f"doctor: {counts[PASS]} ok, {counts[WARN]} to improve, {counts[FAIL]} blocking")
    return "\n".join(lines)


def main(cfg, sys_root: str = "/", proc_root: str = "/proc",
         unit_dir: str = "/etc/systemd/system") -> int:
    from engine.ring.segment import SHM_DIR

    box = Box(cfg, sys_root=Path(sys_root), proc_root=Path(proc_root), unit_dir=Path(unit_dir),
              shm_dir=Path(SHM_DIR))
    findings = run(box)
    print(render(findings))
    return 1 if any(f.status == FAIL for f in findings) else 0
