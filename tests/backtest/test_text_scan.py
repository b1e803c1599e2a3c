"""The compiled text-capture scanner (engine/backtest/text_scan.py) gives the records, counts
and errors the adapter path gives, line for line: on the corpus's live captures, and on lines
doctored to take every way back to the adapter (unknown symbols, crossed and backwards books,
repeated trades, decimals finer than the tick, escapes, the general path's routing by stream
name, raw and snapshot depth, decimals the depth reader stops at), across chunk and buffer
boundaries, in gzip and plain files."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from engine.backtest import market_data
from engine.config import load
from tests.support.hft_bridge import ENGINE_CONFIG

CAPTURES = ("binance/hftbacktest_spot_btcusdt_20240808.head.txt",
            "binance/hftbacktest_usdm_btcusdt_20240808.head.txt")

TWO = ENGINE_CONFIG.format(model="risk_averse") + """
[[instruments]]
symbol = "ETHUSDT"
base = "ETH"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.0001"
"""


def _cfg(tmp_path, text):
    p = tmp_path / "mm.toml"
    p.write_text(text)
    return load(p, env={})


def _both(monkeypatch, paths, cfg, depth):
    """(records, info) by the scanner, then by the adapter alone."""
    a = market_data.load(paths, cfg, depth)
    with monkeypatch.context() as m:
        m.setattr(market_data, "_scannable", lambda *args: False)
        b = market_data.load(paths, cfg, depth)
    return a, b


def _same(a, b):
    (ra, ia), (rb, ib) = a, b
    assert len(ra) == len(rb)
    for name in ra.dtype.names:
        assert (ra[name] == rb[name]).all(), name
    assert ia == ib


@pytest.mark.parametrize("depth", [True, False])
@pytest.mark.parametrize("capture", CAPTURES)
def test_the_corpus_captures_decode_to_the_adapters_records(corpus, tmp_path, monkeypatch,
                                                            capture, depth):
    cfg = _cfg(tmp_path, ENGINE_CONFIG.format(model="risk_averse"))
    a, b = _both(monkeypatch, [corpus / capture], cfg, depth)
    _same(a, b)
    assert len(a[0]) > 800


def _bt(u, sym="BTCUSDT", b="60000.00", bq="1.5", a="60000.01", aq="2"):
    return (f'{{"stream":"{sym.lower()}@bookTicker","data":{{"u":{u},"s":"{sym}","b":"{b}",'
            f'"B":"{bq}","a":"{a}","A":"{aq}"}}}}')


def _tr(t, sym="BTCUSDT", p="60000.00", q="0.1", m="true", tail=',"M":true', stream=None):
    stream = stream or f"{sym.lower()}@trade"
    return (f'{{"stream":"{stream}","data":{{"e":"trade","E":1,"s":"{sym}","t":{t},"p":"{p}",'
            f'"q":"{q}","T":2,"m":{m}{tail}}}}}')


def _depth(sym="BTCUSDT", bids='[["59999.99","1"]]', asks='[["60000.02","0"]]', raw=False):
    body = (f'{{"e":"depthUpdate","E":3,"s":"{sym}","U":1,"u":2,"b":{bids},"a":{asks}}}')
    return body if raw else f'{{"stream":"{sym.lower()}@depth@100ms","data":{body}}}'


LINES = [
    _bt(10), _bt(10), _bt(9), _bt(11, b="60000.02", a="60000.01"),          # dupe, back, crossed
    _bt(12, b="60000.001"), _bt(13, b="60000.000"), _bt(14, sym="XRPUSDT"),  # precision, unknown
    _bt(15, sym="ETHUSDT"), _bt(16, sym="ethusdt"), _bt(17, b="6e4"), _bt(18, b="-1"),
    _bt(19, b="01.5"), _bt(20, bq="1."), _bt(21, aq=".5"), _bt(22, b="60\\u00300.00"),
    _tr(5), _tr(5), _tr(4), _tr(6, m="false", tail=',"M":true,"X":"MARKET"'),   # general path
    _tr(7, tail=',"X":"MARKET"', stream="ethusdt@trade"),                     # symbol mismatch
    _tr(8, sym="ETHUSDT", tail=""), _tr(9, q="0.00001"), _tr(10, tail=',"t":11'),  # repeated key
    _tr(12, tail=',"X":"depthUpdate"'),                                       # is_depth text
    '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":30,"s":"BTCUSDT","b":"1.00",'
    '"B":"1","a":"2.00","A":"1","T":5,"E":6}}',                               # USD-M shape
    '{"lastUpdateId":40,"bids":[["59999.98","3"]],"asks":[["60000.03","4"]]}',
    _depth(), _depth(raw=True), _depth(sym="ETHUSDT"),
    '{"lastUpdateId":41,"bids":[["1.00","3"]],"asks":[]}',                    # ETH's, by the last
    _depth(bids='[["59999.99","1"],["59999.98","0.123456789"]]'),              # stops mid-frame
    _depth(bids="[]", asks="[]"), _depth(sym="XRPUSDT"), _bt(50),
    '{"result":null,"id":1}', "not json", '{"stream":"btcusdt@bookTicker","data":{"u":51}}',
    _bt(52) + " ", "", _bt(53),
] + [_bt(60 + k, sym) for k in range(10) for sym in ("BTCUSDT", "ETHUSDT")] + \
    [_tr(60 + k, m="false") for k in range(10)]


@pytest.mark.parametrize("depth", [True, False])
@pytest.mark.parametrize("gz", [True, False])
def test_doctored_lines_decode_as_the_adapter_decodes_them(tmp_path, monkeypatch, depth, gz):
    cfg = _cfg(tmp_path, TWO)
    text = "".join(f"{1_700_000_000_000_000_000 + 1000 * k} {line}\r\n"
                   for k, line in enumerate(LINES * 3))
    text += "\n\n1799999999999999999 " + _bt(99)         # no end of line at the end
    path = tmp_path / ("cap.txt.gz" if gz else "cap.txt")
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    monkeypatch.setattr(market_data, "SCAN_RECORDS", 4)    # out fills: FULL, then on
    seen = []
    real = market_data._text_chunks
    monkeypatch.setattr(market_data, "_text_chunks",
                        lambda p, size=None: (seen.append(1) or c for c in real(p, 700)))
    handed_back = []
    one = market_data._decode_one
    monkeypatch.setattr(market_data, "_decode_one",
                        lambda *args: handed_back.append(1) or one(*args))
    a, b = _both(monkeypatch, [path, path], cfg, depth)      # two files: the clock moves on
    _same(a, b)
    frames = sum(f["frames"] for f in a[1]["files"])
    scanned = frames - (len(handed_back) - frames)
    assert seen and scanned >= 40 and len(handed_back) > frames   # both ways were taken
    recs, info = a
    assert info["duplicates"] > 0 and len(recs) > 20
    if depth:
        assert info["depth_frames"] > 0 and info["depth_levels"] > 0


def test_a_line_without_its_arrival_time_is_refused_naming_it(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, TWO)
    path = tmp_path / "bad.txt"
    path.write_text(f"1 {_bt(1)}\n\n2 {_bt(2)}\n{_bt(3)}\n")
    with pytest.raises(market_data.CaptureFormatError, match=r"bad.txt:4: expected") as e:
        market_data.load([path], cfg)
    monkeypatch.setattr(market_data, "_scannable", lambda *args: False)
    with pytest.raises(market_data.CaptureFormatError) as e2:
        market_data.load([path], cfg)
    assert str(e.value) == str(e2.value)


def test_a_long_line_grows_the_buffer(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"1 " + b"x" * 5000 + b"\n2 y\n")
    chunks = [bytes(c) for c in market_data._text_chunks(path, 1024)]
    assert b"".join(chunks) == path.read_bytes()
    assert all(c.endswith(b"\n") for c in chunks)


def test_records_fill_a_preallocated_array_without_losing_order(tmp_path):
    out = np.zeros(3, market_data.REC_DTYPE)
    sink = market_data.RecordSink(1)
    sink.emit(0, 1, 5, 1, 1, 2, 1, 0, 0, 0, 0)
    out["update_id"] = [6, 7, 8]
    sink.extend(out[:2])
    sink.emit(0, 1, 9, 1, 1, 2, 1, 0, 0, 0, 0)
    assert sink.array()["update_id"].tolist() == [5, 6, 7, 9]
