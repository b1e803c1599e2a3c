"""The engine's own pipeline with multiprocessing.Queue in place of the shared-memory rings:
what the engine would be with the standard library's inter-process channel.

    python -m bench.baselines.mpqueue --md-url ws://127.0.0.1:PORT \
        --api-url ws://127.0.0.1:PORT/ws-api/v3 --tag mpq --config engine.toml

Three processes, as in the engine, each running the engine's own code for its step:
  feed    picows client, the engine's venue adapter (engine.feed.venues) decodes each frame to
          fixed-point integers -> put on the quoter's queue
  quoter  the engine's numba model (engine.quoter.model: on_md, on_fill, requote_dirty) on a
          QuoterState; takes every queued item, requotes once per batch -> intents on a queue
  sender  the engine's byte templates and HMAC signing (engine.sender.venues.binance) -> the WS API;
          answers go back to the quoter's queue as acks / rejects / cancels
The quoter reads one queue fed by both the feed and the sender (what an mp.Queue design does
naturally; the engine has two rings). Not ported: fills (no user-data stream: the model's
inventory stays flat), reconnects, the safety net; the bench cancels what is left at the end.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import signal
import sys
import threading
from time import perf_counter_ns, time_ns

from bench.baselines.common import (API_KEY, API_SECRET, announce_ready, parse_args,
                                    quiet_api_url)
from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ALL_INSTRUMENTS, FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_REJECT,
                            FILL_RESUME)
from engine.sender.venues.binance import encoding as bn
from engine.sender.venues.binance import wire
from engine.sender.signing import HmacSigner

MD, FILL = 0, 1               # first field of what the quoter's queue carries
READY_TIMEOUT_S = 120.0       # a cold numba cache compiles the model for tens of seconds


def _quiet_signals() -> None:
    """Children stop when the parent tells them (queue sentinel), not on a terminal's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# ---------------------------------------------------------------- feed
class _QueueSink:
    """The adapter's MdSink: one tuple per book event onto the quoter's queue."""

    def __init__(self, out: mp.Queue):
        self.put = out.put
        self.ts_arrival = 0

    def emit(self, instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, trade_px,
             trade_qty, trade_side, ts_venue) -> None:
        self.put((MD, instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty,
                  self.ts_arrival))


def feed_main(cfg_path: str, md_url: str, out: mp.Queue, ready, stop) -> None:
    _quiet_signals()
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    from engine.config import load
    from engine.feed.venues import make_adapter

    cfg = load(cfg_path)
    adapter = make_adapter(cfg.feed.venue, cfg.instruments, ("bookTicker",), log_skipped=False)
    sink = _QueueSink(out)
    text = WSMsgType.TEXT

    class Listener(WSListener):
        def on_ws_frame(self, transport, frame) -> None:
            sink.ts_arrival = perf_counter_ns()
            if frame.msg_type is text:
                adapter.decode(frame.get_payload_as_memoryview(), False, sink)

    async def run() -> None:
        ws, _ = await ws_connect(Listener, adapter.stream_url(md_url), enable_auto_pong=True)
        ready.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
        ws.disconnect()

    uvloop.run(run())


# ---------------------------------------------------------------- quoter
def quoter_main(cfg_path: str, inbox: mp.Queue, orders: mp.Queue, ready) -> None:
    _quiet_signals()
    from engine.config import load
    from engine.quoter import model
    from engine.quoter.process import warm_up
    from engine.quoter.state import QuoterState

    cfg = load(cfg_path)
    warm_up(cfg.quoter, cfg.instruments)
    st = QuoterState(cfg.quoter, cfg.instruments)
    arrays, want, out = st.arrays, st.want, st.out
    model.on_fill(arrays, 0, FILL_RESUME, 0, 0, 0, 0, 0, 0, perf_counter_ns())
    on_md, on_fill, requote_dirty = model.on_md, model.on_fill, model.requote_dirty
    get, get_nowait, put = inbox.get, inbox.get_nowait, orders.put
    ready.set()
    while True:
        batch = [get()]
        while True:                  # the batch: everything queued now, one requote after it
            try:
                batch.append(get_nowait())
            except queue.Empty:
                break
        now = perf_counter_ns()
        for item in batch:
            if item is None:
                put(None)
                return
            if item[0] == MD:
                _, i, kind, u, bp, bq, ap, aq, ts_arrival = item
                on_md(arrays, i, kind, u, bp, bq, ap, aq, ts_arrival, 0, now)
            else:
                _, kind, i, order_id, leaves = item
                on_fill(arrays, i, kind, order_id, 0, 0, 0, leaves, 0, now)
        n = requote_dirty(arrays, want, now, out, 0)
        for k in range(n):
            o = out[k]
            put((int(o["action"]), int(o["order_id"]), int(o["orig_order_id"]),
                 int(o["instrument"]), int(o["side"]), int(o["post_only"]), int(o["price"]),
                 int(o["qty"]), int(o["update_id"])))


# ---------------------------------------------------------------- sender
class _Sender:
    """Intents -> signed frames; answers -> acks / rejects / cancels for the quoter."""

    def __init__(self, cfg, tag: str, quoter_inbox: mp.Queue, text):
        self.text = text
        self.enc = bn.BinanceEncoder(cfg.instruments, API_KEY, bn.AUTH_HMAC,
                                     HmacSigner(API_SECRET.encode()))
        self.cid = tag.encode() + b"-%d-%d"
        self.cids: dict[int, bytes] = {}            # order id -> client id of live orders
        self.qtys: dict[int, int] = {}              # order id -> quantity
        # request id -> (inst, order id, ok, fail, replaced order id or 0)
        self.requests: dict[int, tuple] = {}
        self.put = quoter_inbox.put
        self.transport = None
        self.rid = 0

    def on_intent(self, intent: tuple) -> None:
        action, order_id, orig, inst, side, post_only, price, qty, u = intent
        rid = self.rid = self.rid + 1
        ts = time_ns() // 1_000_000
        enc = self.enc
        if action == ACTION_NEW or action == ACTION_REPLACE:
            cid = self.cid % (u, order_id)
            if action == ACTION_NEW:
                frame = enc.place(rid, inst, side, post_only, cid, price, qty, ts)
            else:
                old = self.cids.get(orig)
                if old is None:              # its answer was a refusal: nothing to replace
                    self.put((FILL, FILL_REJECT, inst, order_id, 0))
                    return
                frame = enc.replace(rid, inst, side, post_only, old, cid, price, qty, ts)
            self.cids[order_id] = cid
            self.qtys[order_id] = qty
            self.requests[rid] = (inst, order_id, FILL_ACK, FILL_REJECT,
                                  orig if action == ACTION_REPLACE else 0)
        elif action == ACTION_CANCEL:
            old = self.cids.pop(orig, None)
            if old is None:
                return
            frame = enc.cancel(rid, inst, old, ts)
            self.requests[rid] = (inst, orig, FILL_CANCELED, FILL_CANCELED, 0)
        elif action == ACTION_CANCEL_ALL:
            for i in (range(len(enc.instruments)) if inst == ALL_INSTRUMENTS else (inst,)):
                self.transport.send(self.text, enc.cancel_all(rid, i, ts))
            return
        else:
            return
        self.transport.send(self.text, frame)

    def on_answer(self, payload: bytes) -> None:
        fr = wire.FRAME.decode(payload)
        req = self.requests.pop(fr.id, None) if isinstance(fr.id, int) else None
        if req is None:
            return
        inst, order_id, ok, fail, replaced = req
        if replaced:                 # the engine's contract: the old order's fate comes first
            if fr.status == 200:
                self.cids.pop(replaced, None)
                self.put((FILL, FILL_CANCELED, inst, replaced, 0))
            else:
                self.put((FILL, FILL_CANCEL_REJECT, inst, replaced, self.qtys.get(replaced, 0)))
        if fr.status != 200:
            self.cids.pop(order_id, None)
        self.put((FILL, ok if fr.status == 200 else fail, inst, order_id,
                  self.qtys.get(order_id, 0)))


def sender_main(cfg_path: str, api_url: str, tag: str, orders: mp.Queue,
                quoter_inbox: mp.Queue, ready) -> None:
    _quiet_signals()
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    from engine.config import load

    sender = _Sender(load(cfg_path), tag, quoter_inbox, WSMsgType.TEXT)

    class Listener(WSListener):
        def on_ws_frame(self, transport, frame) -> None:
            if frame.msg_type is sender.text:
                sender.on_answer(frame.get_payload_as_bytes())

    async def run() -> None:
        loop = asyncio.get_running_loop()
        sender.transport, _ = await ws_connect(Listener, quiet_api_url(api_url),
                                               enable_auto_pong=True)
        done = loop.create_future()

        def intake() -> None:        # mp.Queue.get blocks: a thread hands intents to the loop
            while True:
                intent = orders.get()
                if intent is None:
                    loop.call_soon_threadsafe(done.set_result, None)
                    return
                loop.call_soon_threadsafe(sender.on_intent, intent)
        threading.Thread(target=intake, daemon=True).start()
        ready.set()
        await done
        sender.transport.disconnect()

    uvloop.run(run())


# ---------------------------------------------------------------- the parent
def main(argv=None) -> int:
    a = parse_args("python -m bench.baselines.mpqueue", argv,
                   config=(str, None, "engine TOML file (quoter model parameters, instruments)"))
    ctx = mp.get_context("fork")
    inbox, orders = ctx.Queue(), ctx.Queue()
    stop_feed = ctx.Event()
    ready = [ctx.Event() for _ in range(3)]
    procs = [
        ctx.Process(target=sender_main, name="mpq-sender",
                    args=(a.config, a.api_url, a.tag, orders, inbox, ready[0])),
        ctx.Process(target=quoter_main, name="mpq-quoter",
                    args=(a.config, inbox, orders, ready[1])),
        ctx.Process(target=feed_main, name="mpq-feed",
                    args=(a.config, a.md_url, inbox, ready[2], stop_feed)),
    ]
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    status = 0
    try:
        for p, r in zip(procs, ready):   # gateway first, data last, as the engine starts
            p.start()
            if not _wait_ready(r, p, stopping):
                status = 1
                return status
        announce_ready()
        stopping.wait(a.duration)
        dead = [p.name for p in procs if not p.is_alive()]
        if dead and not stopping.is_set():
            print(f"mpqueue: {', '.join(dead)} exited early", file=sys.stderr)
            status = 1
    finally:
        stop_feed.set()              # feed first; the quoter's sentinel then stops the sender
        inbox.put(None)
        for p in reversed(procs):
            if p.pid is None:            # never started (an earlier one failed to)
                continue
            p.join(5.0)
            if p.is_alive():
                p.terminate()
                p.join(5.0)
    return status


def _wait_ready(ready, proc, stopping: threading.Event) -> bool:
    waited = 0.0
    while waited < READY_TIMEOUT_S and not stopping.is_set():
        if ready.wait(0.1):
            return True
        if not proc.is_alive():
            print(f"mpqueue: {proc.name} exited with status {proc.exitcode} while starting",
                  file=sys.stderr)
            return False
        waited += 0.1
    return False


if __name__ == "__main__":
    sys.exit(main())
