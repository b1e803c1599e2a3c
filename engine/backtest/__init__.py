"""`mm backtest`: replay captures through the quoter's compiled core and strategy, with the
simulator's fill model standing in for the venue, in one process, as fast as the CPU allows.

  market_data.py  capture files -> the md records the live feed would have published
  venue.py        the simulator's matching rules (engine/sim/exchange.py), compiled: resting
                  orders, queue positions, fills, and the fill records the sender would emit
  replay.py       the event loop: market events, intents reaching the venue after the
                  feed-to-order latency, venue answers reaching the quoter after the response
                  latency, the quoter's timers; the same model.py calls as the live loop
  report.py       PnL, inventory, fills, spread captured, drawdown: summary, JSON, PNG
"""
