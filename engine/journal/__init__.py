"""The journal: every order request, venue answer and report, fill and decision of an instance,
in one SQLite file (WAL) under state_dir, written off the hot path and reconciled with the
venue's own trade list.

  records.JOURNAL_DTYPE   what the sender hands over (engine/journal/writer.py, one ring write
                          per event, never blocking)
  schema.sql, schema.py   the tables (plain SQL) and opening a file: create, migrate, refuse
  agent.py                the journal agent process: ring -> transactions, markouts, pruning
                          (its duty cycle; the life around it is engine/agent.py's)
  rows.py                 records -> rows, one transaction per batch; pruning by age
  placement.py            where the agent runs: off the trading cores, else SCHED_IDLE
  reconcile.py            the venue's trade list (Binance WS API myTrades) -> fills, once each
  markouts.py             mid after each fill from the book board
  queries.py              what `mm journal`, `mm report` and `mm status` read
"""
