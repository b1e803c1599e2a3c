"""The C order path (engine._order): SHA-256 on both code paths equals hashlib, every rendered
request is byte-identical to the Python templates (HMAC signature included) and is a valid
masked WebSocket frame, and a ring batch leaves the sender in one write."""
import hashlib
import os
import random
import socket
import subprocess
import sys

import pytest

from engine import demo_keys
from engine.config import EngineConfig
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.records import ACTION_NEW, SIDE_BUY, SIDE_SELL
from engine.sender.venues.binance import encoding as bn
from engine.sender import keys
from engine.sender.venues.binance.gateway import BinanceGateway
from engine.sender.signing import HmacSigner

ODD = Instrument(symbol="SHIBUSDT", base="SHIB", quote="USDT", tick_size="0.00000001",
                 lot_size="1", price_exp=-8, qty_exp=0)


def unmask(buf: bytes, off: int = 0) -> tuple[bytes, int]:
    """(payload, next offset) of the client frame at `off`."""
    b = buf[off:]
    assert b[0] == 0x81 and b[1] & 0x80           # FIN + text, masked
    n, hl = b[1] & 0x7F, 2
    if n == 126:
        n, hl = int.from_bytes(b[2:4], "big"), 4
    mask = b[hl:hl + 4]
    body = bytes(x ^ mask[i % 4] for i, x in enumerate(b[hl + 4:hl + 4 + n]))
    return body, off + hl + 4 + n


@pytest.mark.parametrize("env", [{}, {"MM_NO_SHA_NI": "1"}])
def test_sha256_equals_hashlib_on_both_code_paths(env):
    code = ("import os, hashlib, random; from engine import _order as O\n"
            "r = random.Random(3)\n"
            "for n in list(range(260)) + [4095, 4096, 70000]:\n"
            "    d = r.randbytes(n)\n"
            "    assert O.sha256(d) == hashlib.sha256(d).digest(), n\n"
            "print(O.accelerated())\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    if env:
        assert out.stdout.strip() == "False"       # the portable path really ran


@pytest.mark.parametrize("auth", [bn.AUTH_HMAC, bn.AUTH_SESSION])
def test_rendered_frames_equal_the_python_templates(auth):
    instruments = DEFAULT_INSTRUMENTS + (ODD,)
    enc = bn.BinanceEncoder(instruments, demo_keys.DEMO_API_KEY, auth,
                            HmacSigner(demo_keys.DEMO_API_SECRET.encode()), None,
                            recv_window_ms=5000, resp_type="ACK")
    rng = random.Random(7)
    out, off, want = bytearray(64), 0, []
    for k in range(300):
        inst = rng.randrange(len(instruments))
        side, post = rng.choice((SIDE_BUY, SIDE_SELL)), rng.randrange(2)
        cid = b"tg-%d-%d" % (rng.randrange(10**13), rng.randrange(10**15))
        price, qty = rng.randrange(1, 10**12), rng.randrange(1, 10**9)
        ts, rid = 1_764_000_000_000 + k, rng.randrange(1, 10**9)
        kind = rng.randrange(4)
        if kind == 0:
            off = enc.place_into(out, off, rid, inst, side, post, cid, price, qty, ts)
            want.append(enc.place(rid, inst, side, post, cid, price, qty, ts))
        elif kind == 1:
            off = enc.replace_into(out, off, rid, inst, side, post, b"tg-1-2", cid, price, qty, ts)
            want.append(enc.replace(rid, inst, side, post, b"tg-1-2", cid, price, qty, ts))
        elif kind == 2:
            off = enc.cancel_into(out, off, rid, inst, cid, 0, ts)
            want.append(enc.cancel(rid, inst, cid, ts))
        else:
            vid = rng.randrange(1, 10**12)
            off = enc.cancel_into(out, off, rid, inst, cid, vid, ts)
            want.append(enc.cancel_by_id(rid, inst, vid, ts))
    got, pos = [], 0
    while pos < off:
        body, pos = unmask(bytes(out), pos)
        got.append(body)
    assert got == want
    if auth == bn.AUTH_HMAC:                    # the signature is the documented one
        import json
        req = json.loads(want[0])["params"]
        payload = "&".join(f"{k}={v}" for k, v in sorted(req.items()) if k != "signature")
        import hmac
        assert req["signature"] == hmac.new(demo_keys.DEMO_API_SECRET.encode(),
                                            payload.encode(), hashlib.sha256).hexdigest()


def test_a_ring_batch_leaves_in_one_write(monkeypatch):
    from engine.sender.config import SenderConfig
    cfg = EngineConfig(tag="mm", sender=SenderConfig(url="ws://127.0.0.1:1/ws-api/v3", auth="hmac"))
    gw = BinanceGateway(cfg, keys.load(cfg.sender, cfg.sender.url, env={}), _Sink())
    a, b = socket.socketpair()
    a.setblocking(False)
    gw.fd, gw._tr_buffered = a.fileno(), lambda: 0
    gw.ready = True
    writes = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(len(data)) or real(fd, data))
    gw.begin_batch()
    for n, side in ((1, SIDE_BUY), (2, SIDE_SELL)):     # both sides of one tick
        gw.on_intent((n, n, 0, 0, ACTION_NEW, side, 0, 1, 5_000_000 + n, 100, 9, 0, 0, 0, 0), 0)
    assert writes == []                                  # nothing written yet ...
    gw.end_batch()
    assert len(writes) == 1                              # ... then one write for both
    data = b.recv(65536)
    first, pos = unmask(data)
    second, pos = unmask(data, pos)
    assert b'"mm-9-1"' in first and b'"mm-9-2"' in second and pos == len(data)
    a.close()
    b.close()


class _Sink:
    def emit(self, *a, **k):
        return True
