"""What a process's exit status means: one contract for the supervisor, systemd units
(RestartPreventExitStatus=, OnFailure=) and operators.

`mm run` (the supervisor) ends with the same numbers, judged for the whole engine; the README's
"Exit statuses" table has one row per case and tests/integration/test_exit_statuses.py one test
per row: 0 asked-for stop with every order confirmed gone; 1 the venue (orders or market data)
was never reached or a stage failed, nothing resting; 2 the configuration, the box or the venue
refused us (credentials, symbol, filters, every order refused, an IP ban); 3 orders may be
resting; 4 the drawdown limit stopped it. `mm kill` is a pause: no process exits for it."""
from __future__ import annotations

EXIT_OK = 0           # asked-for stop (duration, SIGTERM/SIGINT) with every order confirmed gone
EXIT_ERROR = 1        # unexpected error (a bug, shared memory that cannot be mapped)
EXIT_CONFIG = 2       # bad configuration or credentials: restarting will not help
EXIT_ORDERS_LEFT = 3  # stopped, but open orders could NOT be confirmed canceled (one still
                      # rests, or its outcome is unknown: a request unanswered, an order the
                      # venue cannot yet say is gone; the log names them): page a human
EXIT_KILLED = 4       # stopped by a latched kill switch (operator, drawdown, venue ban, venue
                      # refusal of our credentials/orders): stays down until `mm resume`
EXIT_PEER_LOST = 5    # a peer process died or stopped beating: orders were canceled and this
                      # process exits so that it is restarted with the others

MEANING = {EXIT_OK: "stopped cleanly", EXIT_ERROR: "unexpected error",
           EXIT_CONFIG: "bad configuration or credentials",
           EXIT_ORDERS_LEFT: "ORDERS MAY BE RESTING (cancel not confirmed)",
           EXIT_KILLED: "kill switch (latched: mm resume clears it)",
           EXIT_PEER_LOST: "a peer process was lost (restart)"}

# Statuses after which every order of the process is known to be gone.
ORDERS_CONFIRMED_GONE = (EXIT_OK, EXIT_KILLED, EXIT_PEER_LOST)
