"""A read-only view of a running instance, shared by `mm status` and the metrics endpoint:
attaches to the control segment, rings and histograms without registering any role."""
from __future__ import annotations

import time

from engine import instance_info
from engine.control import KILL_REASONS, PAUSE_REASONS, ROLES, Control
from engine.latency.histogram import HistogramSet
from engine.ring import Ring
from engine.ring.segment import SegmentError
from engine.ring.table import RINGS

HOP_QS = (50, 99, 99.9)          # percentiles shown live (mm status, metrics quantiles)


class InstanceView:
    def __init__(self, instance: str):
        self.instance = instance
        self.ctl = Control.attach(instance)
        self.rings: dict[str, Ring] = {}
        self.hists: dict[str, HistogramSet] = {}
        self._last: dict[str, tuple[float, int]] = {}
        self.info: instance_info.InstanceInfo | None = None

    def _attach_lazily(self) -> None:
        for spec in RINGS:
            if spec.name not in self.rings:
                try:
                    self.rings[spec.name] = spec.attach(self.instance)
                except SegmentError:
                    pass
        for role in ("feed", "quoter", "sender"):
            if role not in self.hists:
                try:
                    self.hists[role] = HistogramSet.attach(self.instance, role)
                except SegmentError:
                    pass

    def snapshot(self) -> dict:
        """Everything `mm status` shows, as plain data. `info` is the instance's published
        instrument table and latency ceiling (None until a process has published it)."""
        self._attach_lazily()
        if self.info is None:
            self.info = instance_info.read(self.instance)
        now = time.monotonic()
        kill = self.ctl.killed()
        pause = self.ctl.paused()
        out = {"instance": self.instance, "kill": KILL_REASONS.get(kill, str(kill)) if kill else None,
               "pause": PAUSE_REASONS.get(pause, str(pause)) if pause else None,
               "processes": [], "rings": {}, "hops": {}, "counters": {}, "info": self.info}
        for role in ROLES:
            info = self.ctl.role_info(role)
            if info["pid"]:
                out["processes"].append(info)
            out["counters"][role] = self.ctl.counter_values(role)
        out["state"], out["why"] = engine_state(out)
        for name, r in self.rings.items():
            st = r.stats()
            t0, w0 = self._last.get(name, (now, st["written"]))
            st["rate"] = (st["written"] - w0) / (now - t0) if now > t0 else 0.0
            self._last[name] = (now, st["written"])
            out["rings"][name] = st
        for role, hs in self.hists.items():
            for name, h in hs.snapshots().items():
                out["hops"][f"{role}.{name}"] = {"count": h.count, "sum_ns": h.mean * h.count,
                                                  **{q: h.percentile(q) for q in HOP_QS}}
        return out

    def close(self) -> None:
        for r in self.rings.values():
            r.close()
        for h in self.hists.values():
            h.close()
        self.ctl.close()


# the sender's `paused` counter (engine/sender/process.py): 1 canceling, 2 confirmed, 3 resuming
_SENDER_PAUSE = {1: ("pausing", "mm kill: canceling every order"),
                 2: ("paused", "mm kill: every order confirmed gone, quoting stopped; "
                               "processes up (mm resume quotes again, mm stop stops)"),
                 3: ("resuming", "mm resume: reconciling with the venue before quoting")}


def engine_state(snap: dict) -> tuple[str, str]:
    """(state, why) of an instance from a snapshot: quoting, starting, pausing, paused,
    resuming, stopping, stopped. `why` is one plain sentence."""
    procs = [p for p in snap["processes"] if p["role"] != "supervisor"]
    alive = [p for p in procs if p["alive"]]
    supervisor = next((p for p in snap["processes"] if p["role"] == "supervisor"), None)
    if not alive and not (supervisor and supervisor["alive"]):
        ended = ", ".join(f"{p['role']} {p['state']}" for p in procs) or "no process ran"
        cause = f"kill switch: {snap['kill']}" if snap["kill"] else "no kill reason recorded"
        return "stopped", f"every process has ended ({ended}); {cause}"
    if snap["kill"]:
        return "stopping", f"kill switch: {snap['kill']}: canceling, confirming, ending"
    sender = snap["counters"].get("sender", {}).get("paused", 0)
    if snap["pause"]:
        return _SENDER_PAUSE.get(sender, _SENDER_PAUSE[1]) if sender in (1, 2) \
            else ("pausing", "mm kill: the sender has not confirmed yet")
    if sender == 3:
        return _SENDER_PAUSE[3]
    starting = [p["role"] for p in procs if p["state"] == "starting"]
    if starting or len(alive) < 3:
        return "starting", ("waiting for " + ", ".join(starting) if starting
                            else f"{len(alive)} of 3 processes up")
    return "quoting", "every process running"
