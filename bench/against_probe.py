"""A look inside a running engine of ANY version, run by that version's own Python (the A/B
bench starts it with the ref's venv, and with the working tree's for its own engine, so both
are read alike). It imports only that version's `engine` package, never `bench`.

    <venv>/bin/python -c "$(cat bench/against_probe.py)" INSTANCE

One JSON line out per line in:
  "state"  {"running": bool, "pids": {role: pid}}            (all roles running?)
  "snap"   {"hists": {"role.name": [[low_ns, width_ns, count], ...]}, "counters": {...}}
           (non-empty buckets; empty when this version cannot be read that way)
EOF ends it. Errors are answered as {"error": "..."}, never raised: an old version that lacks
an API gives the A/B bench less to show, not a failure.
"""
import json
import sys


def _control(instance):
    from engine.control import ROLES, Control

    return Control.attach(instance), ROLES


def _state(instance, cache):
    if "ctl" not in cache:
        cache["ctl"], cache["roles"] = _control(instance)
    ctl, roles = cache["ctl"], cache["roles"]
    infos = {r: ctl.role_info(r) for r in roles}
    # the trading roles decide; a helper role (the journal agent) may be disabled
    trading = [i for r, i in infos.items() if r in ("feed", "quoter", "sender")] or infos.values()
    running = all(str(i.get("state")) in ("running", "2") for i in trading)
    return {"running": running, "pids": {r: int(ctl.pid(r)) for r in roles if ctl.pid(r)}}


def _snap(instance, cache):
    from engine.latency.histogram import HistogramSet, bucket_bounds

    if "hists" not in cache:
        roles = cache.get("roles") or _control(instance)[1]
        cache["hists"] = {}
        for role in roles:
            try:
                cache["hists"][role] = HistogramSet.attach(instance, role)
            except Exception:       # a role without histograms in this version
                pass
        cache["low"], cache["width"] = bucket_bounds()
    low, width = cache["low"], cache["width"]
    out = {}
    for role, hs in cache["hists"].items():
        for name, h in hs.snapshots().items():
            b = h.buckets
            nz = b.nonzero()[0]
            out[f"{role}.{name}"] = [[int(low[i]), int(width[i]), int(b[i])] for i in nz]
    counters = {}
    ctl = cache.get("ctl")
    if ctl is not None:
        for role in cache["roles"]:
            try:
                counters[role] = ctl.counter_values(role)
            except Exception:
                pass
    return {"hists": out, "counters": counters}


def main(instance):
    cache = {}
    for line in sys.stdin:
        op = line.strip()
        try:
            reply = _state(instance, cache) if op == "state" else _snap(instance, cache)
        except Exception as e:      # noqa: BLE001 - any version's failure is an answer
            cache.pop("ctl", None)
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


main(sys.argv[1])
