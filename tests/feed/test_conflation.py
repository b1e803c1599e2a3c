"""A full md ring drops records, never the newest book: every book update also lands on the
book board (latest per instrument), ring records that could not be published are counted as
conflated and signalled to the reader; trades are never put on the board."""
from time import perf_counter_ns

from engine.feed.publish import open_sink
from engine.records import MD_BBO, MD_DTYPE, MD_TRADE, SIDE_BUY, VENUE_BINANCE
from engine.ring import Ring
from engine.ring.board import Board


def test_a_full_ring_keeps_the_newest_book_on_the_board(instance):
    md = Ring.open(instance, "md", MD_DTYPE, 4, "drop", role="producer")
    sink = open_sink(instance, md, ["BTCUSDT", "ETHUSDT"], VENUE_BINANCE, None)
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    board = Board.open(instance, 2, MD_DTYPE)
    try:
        sink.conn = 0
        for u in range(1, 21):                       # 20 updates into 4 slots, nobody reading
            sink.ts_arrival = perf_counter_ns()
            sink.emit(u % 2, MD_BBO, u, 1000 + u, 5, 2000 + u, 7, 0, 0, 0, 0)
        sink.emit(0, MD_TRADE, 99, 0, 0, 0, 0, 1500, 3, SIDE_BUY, 0)   # a trade: not state
        assert len(consumer.pop_many()) == 4         # the ring kept the oldest four ...
        assert sink.ring_full == 17 and sink.conflated == 16 and board.lost == 16
        newest = {i: board.get(i) for i in (0, 1)}   # ... the board the newest of each
        assert int(newest[0]["update_id"][0]) == 20 and int(newest[0]["bid_px"][0]) == 1020
        assert int(newest[1]["update_id"][0]) == 19 and int(newest[1]["ask_px"][0]) == 2019
        assert int(newest[0]["trade_px"][0]) == 0    # the trade did not touch the board
    finally:
        consumer.close()
        board.close()
        sink.close()
