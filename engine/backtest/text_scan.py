"""The common lines of a text capture, decoded by a compiled scanner (set-up, not timed; before
it, decoding was most of `mm backtest`'s time): Binance's combined bookTicker and trade frames
and, with depth, its diff-depth events and REST snapshots become records straight from the
bytes.

The scanner takes a line only when it decodes it exactly as the feed's adapter and the depth
reader would, with their checks and on their state (the adapter's last book and trade ids, the
sink's duplicate filter, the depth reader's last instrument). Any other line, and any line it
doubts (an unknown symbol, a decimal it would have to round, a crossed or backwards book, an
escape in a string, a key it does not know the meaning of), it hands back, and market_data
decodes that one line the old way. tests/backtest/test_text_scan.py holds both ways to equal
records on the corpus captures and on doctored lines.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.feed.fixed import INT64_MAX
from engine.records import MD_BBO, MD_DEPTH, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL

# scan() status
DONE, FULL, FALLBACK, BAD_LINE = 0, 1, 2, 3

# state words (one int64 array shared across calls)
S_DATA, S_RECORDS, S_DUPES, S_FRAMES, S_DEPTH_FRAMES, S_DEPTH_LEVELS, S_DEPTH_LAST, \
    S_LAST_TS, S_LINES, S_LINE_START, S_LINE_END, S_LINE_NEXT, S_WORDS = range(13)

# flags: the adapter's typed fast path is on (it reads bookTicker or trade); depth frames are read
F_FAST, F_DEPTH = 1, 2

EPOCH_MS_MAX = INT64_MAX // 1_000_000     # the adapters' EpochMs bound
_MAX18 = 10**17          # a mantissa below this can take one more digit without overflow
_NO = -1

_jit = njit(cache=True, nogil=True, fastmath=False)

_Q, _BS, _COLON, _COMMA, _LB, _RB, _LS, _RS = 34, 92, 58, 44, 123, 125, 91, 93


@_jit
def _uint(b, i, end):
    """A JSON unsigned integer of at most 18 digits at b[i]: (value, next index) or (-1, i)."""
    v = 0
    j = i
    while j < end and 48 <= b[j] <= 57:
        if j - i >= 18:
            return -1, i
        v = v * 10 + (b[j] - 48)
        j += 1
    if j == i or (b[i] == 48 and j - i > 1):       # JSON has no leading zeros
        return -1, i
    return v, j


@_jit
def _string_end(b, i, end):
    """b[i] is the first byte inside a string: the index of its closing quote, or -1 (an
    escape, a control byte or the end of the line first)."""
    j = i
    while j < end:
        c = b[j]
        if c == _Q:
            return j
        if c == _BS or c < 32:
            return -1
        j += 1
    return -1


@_jit
def _decimal(b, i, j, exp):
    """The decimal string b[i:j] ('digits' or 'digits.digits') as a mantissa at 10**exp, exactly
    as engine.feed.fixed.parse_fixed takes it; -1 for anything it would refuse or round (the
    adapter then decides and counts)."""
    if exp > 0 or i >= j:
        return -1
    m = 0
    k = i
    while k < j and 48 <= b[k] <= 57:
        if m >= _MAX18:
            return -1
        m = m * 10 + (b[k] - 48)
        k += 1
    if k == i:
        return -1
    want = -exp                      # fraction digits the exponent keeps
    got = 0
    if k < j:
        if b[k] != 46:               # '.'
            return -1
        k += 1
        if k == j:
            return -1
        while k < j:
            c = b[k]
            if c < 48 or c > 57:
                return -1
            if got < want:
                if m >= _MAX18:
                    return -1
                m = m * 10 + (c - 48)
                got += 1
            elif c != 48:            # a digit below the resolution: precision, not ours
                return -1
            k += 1
    while got < want:
        if m >= _MAX18:
            return -1
        m *= 10
        got += 1
    return m


@_jit
def _find(table, keys, klen, b, i, j, lower):
    """The instrument whose symbol is b[i:j] (upper case; `lower`: compare b upper-cased), -1
    if none. `table` is open addressing over FNV-1a of the upper-case symbol."""
    n = j - i
    h = np.uint32(2166136261)
    for k in range(i, j):
        c = b[k]
        if lower and 97 <= c <= 122:
            c -= 32
        h = (h ^ np.uint32(c)) * np.uint32(16777619)
    mask = len(table) - 1
    s = int(h) & mask
    while True:
        e = table[s]
        if e < 0:
            return -1
        if klen[e] == n:
            same = True
            for k in range(n):
                c = b[i + k]
                if lower and 97 <= c <= 122:
                    c -= 32
                if keys[e, k] != c:
                    same = False
                    break
            if same:
                return e
        s = (s + 1) & mask


@_jit
def _skip_value(b, i, end):
    """Past one scalar JSON value at b[i] (a plain string, an unsigned integer, true, false):
    the next index, or -1 for anything else."""
    if i >= end:
        return -1
    c = b[i]
    if c == _Q:
        e = _string_end(b, i + 1, end)
        return -1 if e < 0 else e + 1
    if c == 116 and i + 4 <= end and b[i + 1] == 114 and b[i + 2] == 117 and b[i + 3] == 101:
        return i + 4
    if c == 102 and i + 5 <= end and b[i + 1] == 97 and b[i + 2] == 108 and b[i + 3] == 115 \
            and b[i + 4] == 101:
        return i + 5
    v, k = _uint(b, i, end)
    return -1 if v < 0 else k


@_jit
def _key(b, i, end):
    """`"key":` at b[i]: (key start, key end, index of the value) or (-1, -1, -1)."""
    if i >= end or b[i] != _Q:
        return -1, -1, -1
    e = _string_end(b, i + 1, end)
    if e < 0 or e + 1 >= end or b[e + 1] != _COLON:
        return -1, -1, -1
    return i + 1, e, e + 2


@_jit
def _is(b, i, j, lit):
    if j - i != len(lit):
        return False
    for k in range(j - i):
        if b[i + k] != lit[k]:
            return False
    return True


@_jit
def _levels(b, i, end):
    """Past a JSON array of ["price","qty"] string pairs at b[i] (checked, not parsed): the
    index after it and the pair count, or (-1, 0)."""
    if i >= end or b[i] != _LS:
        return -1, 0
    i += 1
    n = 0
    if i < end and b[i] == _RS:
        return i + 1, 0
    while True:
        for part in range(2):
            want = _LS if part == 0 else _COMMA
            if i >= end or b[i] != want or i + 1 >= end or b[i + 1] != _Q:
                return -1, 0
            e = _string_end(b, i + 2, end)
            if e < 0:
                return -1, 0
            i = e + 1
        if i >= end or b[i] != _RS:
            return -1, 0
        i += 1
        n += 1
        if i < end and b[i] == _COMMA:
            i += 1
            continue
        if i < end and b[i] == _RS:
            return i + 1, n
        return -1, 0


@_jit
def _emit_levels(b, i, end, exp_p, exp_q, inst, side, out, n, ts, tv, kind):
    """The levels of a checked array at b[i] as MD_DEPTH records from out[n]: the new n, or -1
    when a decimal is not ours (nothing is kept then: the caller rolls back)."""
    i += 1
    if b[i] == _RS:
        return n
    while True:
        p0 = i + 2
        p1 = _string_end(b, p0, end)
        q0 = p1 + 3
        q1 = _string_end(b, q0, end)
        px = _decimal(b, p0, p1, exp_p)
        qty = _decimal(b, q0, q1, exp_q)
        if px < 0 or qty < 0 or n >= len(out):
            return -1
        _put(out[n], ts, 0, 0, 0, 0, 0, px, qty, inst, kind, side, tv)
        n += 1
        i = q1 + 2                   # past `"]`
        if b[i] == _COMMA:
            i += 1
            continue
        return n


@_jit
def _keep(st, sink_book, sink_trade, inst, kind, uid):
    """The sink's duplicate filter (market_data.RecordSink.emit): False for a repeated id."""
    last = sink_trade if kind & MD_TRADE else sink_book
    if uid != 0 and uid <= last[inst]:
        st[S_DUPES] += 1
        return False
    last[inst] = uid
    st[S_RECORDS] += 1
    return True


@_jit
def _object(b, i, end, K, V):
    """The keys of a flat JSON object at b[i] ('{' ...): K[k] = (key start, key end) and V[k] =
    the value's start, for at most len(K) keys; values are scalars or level arrays. Returns
    (index after '}', keys) or (-1, 0)."""
    if i >= end or b[i] != _LB:
        return -1, 0
    i += 1
    nk = 0
    while True:
        k0, k1, v = _key(b, i, end)
        if k0 < 0 or nk >= K.shape[0]:
            return -1, 0
        K[nk, 0] = k0
        K[nk, 1] = k1
        V[nk] = v
        nk += 1
        if v < end and b[v] == _LS:
            i, _ = _levels(b, v, end)
        else:
            i = _skip_value(b, v, end)
        if i < 0:
            return -1, 0
        if i < end and b[i] == _COMMA:
            i += 1
            continue
        if i < end and b[i] == _RB:
            return i + 1, nk
        return -1, 0


@_jit
def _line(b, p, end, ts, shift, flags, table, keys, klen, pexp, qexp, book_ids, trade_ids,
          sink_book, sink_trade, st, out, n, K, V, ST):
    """One frame b[p:end]: the new n (records written from out[n]), -1 to hand the line back
    (nothing written, no state changed) or -2 when out has no room for it."""
    combined = end - p > 22 and _is(b, p, p + 11, ST[0])           # {"stream":"
    stream0 = stream1 = 0
    if combined:
        stream0 = p + 11
        stream1 = _string_end(b, stream0, end)
        if stream1 < 0 or not _is(b, stream1, stream1 + 10, ST[1]):  # ","data":{
            return -1
        if b[end - 1] != _RB or _is(b, stream0, stream1, ST[2]):
            return -1
        e, nk = _object(b, stream1 + 9, end - 1, K, V)
        if e != end - 1:
            return -1
    else:
        if not (flags & F_DEPTH):
            return -1
        e, nk = _object(b, p, end, K, V)
        if e != end:
            return -1
    # the fields, each at most once; any key or string that reads "depthUpdate" makes the line
    # a depth frame (market_data reads depth by that test)
    sym0 = sym1 = -1
    u = t = E = T = -1
    sb = sB = sa = sA = sp = sq = lb = la = -1
    m = -1
    seen = 0
    depth_event = False
    snapshot = False
    for k in range(nk):
        k0, k1, v = K[k, 0], K[k, 1], V[k]
        c = b[k0] if k1 - k0 == 1 else 0
        bit = 0
        if c == 115:                                             # s
            if b[v] != _Q:
                return -1
            sym0, sym1 = v + 1, _string_end(b, v + 1, end)
            bit = 1
        elif c == 117 or c == 116 or c == 69 or c == 84:         # u t E T
            x, _ = _uint(b, v, end)
            if x < 0:
                return -1
            if c == 117:
                u, bit = x, 2
            elif c == 116:
                t, bit = x, 4
            elif c == 69:
                E, bit = x, 8
            else:
                T, bit = x, 16
        elif c == 98 or c == 97:                                 # b a: a price or levels
            if b[v] == _LS:
                if c == 98:
                    lb, bit = v, 32
                else:
                    la, bit = v, 64
            elif b[v] == _Q:
                if c == 98:
                    sb, bit = v, 128
                else:
                    sa, bit = v, 256
            else:
                return -1
        elif c == 66 or c == 65 or c == 112 or c == 113:         # B A p q
            if b[v] != _Q:
                return -1
            if c == 66:
                sB, bit = v, 512
            elif c == 65:
                sA, bit = v, 1024
            elif c == 112:
                sp, bit = v, 2048
            else:
                sq, bit = v, 4096
        elif c == 109:                                           # m
            if b[v] == 116:
                m = 1
            elif b[v] == 102:
                m = 0
            else:
                return -1
            bit = 8192
        elif k == 0 and not combined and _is(b, k0, k1, ST[3]):  # {"lastUpdateId" first
            x, _ = _uint(b, v, end)
            if x < 0:
                return -1
            snapshot, bit = True, 16384
        elif _is(b, k0, k1, ST[4]) or _is(b, k0, k1, ST[5]):     # bids asks
            if b[v] != _LS:
                return -1
            if b[k0] == 98:
                lb, bit = v, 32768
            else:
                la, bit = v, 65536
        elif _is(b, k0, k1, ST[2]) or _is(b, k0, k1, ST[3]) or b[v] == _LS:
            return -1                  # "depthUpdate" or "lastUpdateId" elsewhere, or an array
        elif b[v] == _Q:                                          # e, and keys no one reads
            v1 = _string_end(b, v + 1, end)
            if _is(b, v + 1, v1, ST[2]):
                if c != 101:
                    return -1
                depth_event = True
        if bit:
            if seen & bit:
                return -1                    # a repeated key: which one counts is theirs
            seen |= bit
    if snapshot:
        if not (flags & F_DEPTH) or depth_event or lb < 0 or la < 0:
            return -1
        inst = 0 if len(klen) == 1 else st[S_DEPTH_LAST]
        if inst < 0:
            return -1
        return _depth(b, lb, la, end, inst, pexp, qexp, st, sink_book, out, n, ts,
                      _venue_ns(E, shift), MD_DEPTH | MD_SNAPSHOT)
    if depth_event:
        if not (flags & F_DEPTH) or sym0 < 0 or lb < 0 or la < 0:
            return -1
        inst = _find(table, keys, klen, b, sym0, sym1, True)
        if inst < 0:
            return -1
        r = _depth(b, lb, la, end, inst, pexp, qexp, st, sink_book, out, n, ts,
                   _venue_ns(E, shift), MD_DEPTH)
        if r >= 0:
            st[S_DEPTH_LAST] = inst
        return r
    if not combined or not (flags & F_FAST) or lb >= 0 or la >= 0 or sym0 < 0:
        return -1
    if E > EPOCH_MS_MAX or T > EPOCH_MS_MAX:
        return -1
    inst = _find(table, keys, klen, b, sym0, sym1, False)
    if inst < 0:
        return -1
    last3 = b[end - 3]
    is_book = u >= 0 and sb >= 0 and sB >= 0 and sa >= 0 and sA >= 0
    is_trade = t >= 0 and sp >= 0 and sq >= 0 and m >= 0
    if last3 == _Q and is_book:
        pass                                    # the adapter's bookTicker fast path
    elif last3 == 101 and is_trade:             # its trade fast path ('e': true}} / false}})
        is_book = False
    else:                                       # its general path, routed by the stream name
        sym_len = klen[inst]
        if stream1 - stream0 <= sym_len or b[stream0 + sym_len] != 64:     # '@'
            return -1
        for k in range(sym_len):
            c = keys[inst, k]
            if 65 <= c <= 90:
                c += 32
            if b[stream0 + k] != c:
                return -1
        kind0 = stream0 + sym_len + 1
        if _is(b, kind0, stream1, ST[6]) and is_book:
            pass
        elif _is(b, kind0, stream1, ST[7]) and is_trade:
            is_book = False
        else:
            return -1
    if is_book:
        if u < book_ids[inst]:
            return -1
        bp = _decimal(b, sb + 1, _string_end(b, sb + 1, end), pexp[inst])
        bq = _decimal(b, sB + 1, _string_end(b, sB + 1, end), qexp[inst])
        ap = _decimal(b, sa + 1, _string_end(b, sa + 1, end), pexp[inst])
        aq = _decimal(b, sA + 1, _string_end(b, sA + 1, end), qexp[inst])
        if bp < 0 or bq < 0 or ap < 0 or aq < 0 or (bp >= ap and bq != 0 and aq != 0):
            return -1
        if n >= len(out):
            return -2
        book_ids[inst] = u
        st[S_DATA] += 1
        if _keep(st, sink_book, sink_trade, inst, MD_BBO, u):
            _put(out[n], ts, u, bp, bq, ap, aq, 0, 0, inst, MD_BBO, 0, _venue_ns(E, shift))
            n += 1
        return n
    if t <= trade_ids[inst]:
        return -1
    px = _decimal(b, sp + 1, _string_end(b, sp + 1, end), pexp[inst])
    qty = _decimal(b, sq + 1, _string_end(b, sq + 1, end), qexp[inst])
    if px < 0 or qty < 0:
        return -1
    if n >= len(out):
        return -2
    trade_ids[inst] = t
    st[S_DATA] += 1
    if _keep(st, sink_book, sink_trade, inst, MD_TRADE, t):
        _put(out[n], ts, t, 0, 0, 0, 0, px, qty, inst, MD_TRADE,
             SIDE_SELL if m == 1 else SIDE_BUY, _venue_ns(T if T > 0 else E, shift))
        n += 1
    return n


@_jit
def _venue_ns(ms, shift):
    """An exchange time in ms (-1 or 0: none) in ns on the capture's shifted clock (0: none)."""
    return ms * 1_000_000 + shift if ms > 0 else 0


@_jit
def _put(r, ts, uid, bp, bq, ap, aq, tp, tq, inst, kind, side, tv):
    r.ts = ts
    r.update_id = uid
    r.bid_px = bp
    r.bid_qty = bq
    r.ask_px = ap
    r.ask_qty = aq
    r.trade_px = tp
    r.trade_qty = tq
    r.instrument = inst
    r.kind = kind
    r.trade_side = side
    r.ts_venue = tv


@_jit
def _depth(b, lb, la, end, inst, pexp, qexp, st, sink_book, out, n, ts, tv, kind):
    """Bids then asks of one depth frame as MD_DEPTH records (update id 0: the sink keeps each
    one and its last book id becomes 0, as RecordSink does)."""
    _, nb = _levels(b, lb, end)
    _, na = _levels(b, la, end)
    if n + nb + na > len(out):
        return -2 if nb + na <= len(out) else -1
    n1 = _emit_levels(b, lb, end, pexp[inst], qexp[inst], inst, SIDE_BUY, out, n, ts, tv, kind)
    if n1 < 0:
        return -1
    n2 = _emit_levels(b, la, end, pexp[inst], qexp[inst], inst, SIDE_SELL, out, n1, ts, tv,
                      kind)
    if n2 < 0:
        return -1
    if n2 > n:
        sink_book[inst] = 0
    st[S_RECORDS] += n2 - n
    st[S_DEPTH_FRAMES] += 1
    st[S_DEPTH_LEVELS] += n2 - n
    return n2


@_jit
def scan(b, pos, shift, flags, table, keys, klen, pexp, qexp, book_ids, trade_ids, sink_book,
         sink_trade, st, out, K, V, ST):
    """Decode the lines of b from pos into out: (status, pos, records written). DONE: every
    line taken. FULL: out has no room for the line at pos. FALLBACK: the line at pos is the
    caller's; BAD_LINE: it is not '<arrival ns> <frame>'. Both leave its span in
    st[S_LINE_START:S_LINE_NEXT + 1]. st[S_LINES] counts the physical lines taken."""
    n = 0
    size = len(b)
    big = (2**63 - 1 - 9) // 10
    while pos < size:
        e = pos
        while e < size and b[e] != 10:
            e += 1
        nxt = e + 1
        while e > pos and b[e - 1] == 13:
            e -= 1
        if e == pos:
            st[S_LINES] += 1
            pos = nxt
            continue
        st[S_LINE_START] = pos
        st[S_LINE_END] = e
        st[S_LINE_NEXT] = nxt
        ts = 0
        k = pos
        while k < e and 48 <= b[k] <= 57:
            if ts > big:
                return FALLBACK, pos, n          # past int64: Python's int takes it
            ts = ts * 10 + (b[k] - 48)
            k += 1
        if k == pos or k == e or b[k] != 32:
            return BAD_LINE, pos, n
        r = _line(b, k + 1, e, ts + shift, shift, flags, table, keys, klen, pexp, qexp,
                  book_ids, trade_ids, sink_book, sink_trade, st, out, n, K, V, ST)
        if r == -2:
            return FULL, pos, n
        if r < 0:
            return FALLBACK, pos, n
        n = r
        st[S_LINES] += 1
        st[S_FRAMES] += 1
        st[S_LAST_TS] = ts
        pos = nxt
    return DONE, pos, n


def literals() -> tuple:
    """The byte strings _line compares with (numba takes a tuple of arrays)."""
    return tuple(np.frombuffer(s, np.uint8) for s in (
        b'{"stream":"', b'","data":{', b"depthUpdate", b"lastUpdateId", b"bids", b"asks",
        b"bookTicker", b"trade"))


def symbol_table(symbols: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(table, keys, lengths) for _find: open addressing over FNV-1a, upper-case keys."""
    keys = [s.upper().encode() for s in symbols]
    width = max([len(k) for k in keys] + [1])
    kb = np.zeros((len(keys), width), np.uint8)
    for i, k in enumerate(keys):
        kb[i, :len(k)] = np.frombuffer(k, np.uint8)
    size = 1
    while size < 2 * len(keys) + 2:
        size *= 2
    table = np.full(size, -1, np.int64)
    for i, k in enumerate(keys):
        h = 2166136261
        for c in k:
            h = ((h ^ c) * 16777619) & 0xFFFFFFFF
        s = h & (size - 1)
        while table[s] >= 0:
            s = (s + 1) & (size - 1)
        table[s] = i
    return table, kb, np.array([len(k) for k in keys], np.int64)
