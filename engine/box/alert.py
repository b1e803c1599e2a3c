"""`mm alert`: the message systemd has written when an engine unit stops in a way a person must
hear about. mm-alert@.service runs it from the units' OnFailure= (a unit that will not be
restarted: exit 2 or 4, or restarts exhausted); the sender's ExecStopPost= runs it with
--if-status 3 (orders left that could not be confirmed canceled: the sender is restarted to
reconcile, and someone should look at the venue now).

One line at priority crit: to the journal when stdout is a journal stream (systemd sets
$JOURNAL_STREAM; the "<2>" prefix is the priority), to stderr otherwise. Point a pager at
`journalctl -p crit`, or replace ExecStart= of mm-alert@.service with a drop-in; the same
variables are in its environment ($MONITOR_UNIT, $MONITOR_EXIT_STATUS, ...).
"""
from __future__ import annotations

import os
import sys

from engine.exit_codes import (EXIT_CONFIG, EXIT_ERROR, EXIT_KILLED, EXIT_ORDERS_LEFT,
                               EXIT_PEER_LOST)

# What each exit status of an engine process (engine/exit_codes.py) means to the person paged.
MEANING = {
    str(EXIT_ERROR): "unexpected error; see `journalctl -u {unit}`",
    str(EXIT_CONFIG): "bad configuration or credentials; fix them, then `systemctl restart {unit}`",
    str(EXIT_ORDERS_LEFT): "open orders could NOT be confirmed canceled; check the venue now",
    str(EXIT_KILLED): "stopped by the kill switch; stays down until `mm resume --instance "
                      "{instance}`",
    str(EXIT_PEER_LOST): "a peer process of the instance was lost and restarts did not bring "
                         "it back",
}


def message(unit: str, result: str, code: str, status: str) -> str:
    """The alert line for `unit` that ended with `result` (systemd's service result) and
    `code`/`status` ($EXIT_CODE "exited"/"killed"/"dumped", $EXIT_STATUS number or signal)."""
    instance = unit.partition("@")[2].rpartition(".")[0] or "?"
    if code == "exited" and status in MEANING:
        why = MEANING[status].format(unit=unit, instance=instance)
        how = f"exit {status}"
    elif code in ("killed", "dumped"):
        why = "killed by a signal; systemd restarts it unless restarts are exhausted"
        how = f"signal {status}{' (core dumped)' if code == 'dumped' else ''}"
    else:
        why = "see `journalctl -u " + unit + "`"
        how = f"{code or 'no exit'} {status}".strip()
    return f"mm ALERT: {unit} stopped ({result or 'failed'}, {how}): {why}"


def main(unit: str | None = None, if_status: list[str] | None = None, env=None) -> int:
    env = os.environ if env is None else env
    unit = unit or env.get("MONITOR_UNIT", "") or "unknown unit"
    result = env.get("MONITOR_SERVICE_RESULT") or env.get("SERVICE_RESULT", "")
    code = env.get("MONITOR_EXIT_CODE") or env.get("EXIT_CODE", "")
    status = env.get("MONITOR_EXIT_STATUS") or env.get("EXIT_STATUS", "")
    if if_status and not (code == "exited" and status in if_status):
        return 0
    line = message(unit, result, code, status)
    if env.get("JOURNAL_STREAM"):
        print(f"<2>{line}", flush=True)
    else:
        print(line, file=sys.stderr, flush=True)
    return 0
