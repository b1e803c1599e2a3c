-- The journal of one engine instance: SQLite, WAL mode, one file per instance
-- (<state_dir>/<instance>.journal.sqlite). Plain SQL so a central database can ingest it.
-- Conventions: *_ns columns are nanoseconds since the Unix epoch (UTC); prices, quantities and
-- commissions are exact decimal strings as the venue writes them (price in the quote asset,
-- qty in the base asset); side is BUY or SELL; client_id is <tag>-<u>-<n>, order_id its n.
-- Version 1. A file of another version is migrated (schema.py MIGRATIONS) or refused.

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER NOT NULL,           -- one row: the layout this file follows
    applied_ns  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (            -- instance, tag, venue, created_ns, ...
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every request the sender put on the wire.
CREATE TABLE IF NOT EXISTS requests (
    id            INTEGER PRIMARY KEY,
    ts_ns         INTEGER NOT NULL,          -- when the sender wrote it
    kind          TEXT NOT NULL,             -- new | replace | cancel | cancel_all
    symbol        TEXT NOT NULL,
    order_id      INTEGER,                   -- the order placed (new, replace) or canceled
    orig_order_id INTEGER,                   -- replace: the order it replaces
    client_id     TEXT,
    side          TEXT,
    price         TEXT,
    qty           TEXT
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts_ns);
CREATE INDEX IF NOT EXISTS requests_order ON requests (order_id);

-- Every answer and report as the sender applied it to its order table, and the sender's own
-- signals to the quoter: ack | trade | reject | canceled | position | resume | cancel_reject
-- | unknown | reset.
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    ts_ns       INTEGER NOT NULL,
    ts_venue_ns INTEGER,
    kind        TEXT NOT NULL,
    symbol      TEXT,
    order_id    INTEGER,
    side        TEXT,
    price       TEXT,
    qty         TEXT,                        -- trade: this fill; position: the base position
    cum_qty     TEXT,
    leaves_qty  TEXT,
    code        INTEGER                      -- reject / cancel_reject: venue or LOCAL_* code
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ns);
CREATE INDEX IF NOT EXISTS events_order ON events (order_id);

-- Every fill of ours, exactly once, keyed as the venue keys its trade list (myTrades: id per
-- symbol; a self-trade is one id with two orders). Written from the execution report, or from
-- myTrades when the report never reached the journal; the venue's figures win.
CREATE TABLE IF NOT EXISTS fills (
    symbol           TEXT NOT NULL,
    trade_id         INTEGER NOT NULL,
    venue_order_id   INTEGER NOT NULL,
    order_id         INTEGER,               -- n of our client id (NULL: not known yet)
    client_id        TEXT,
    side             TEXT NOT NULL,
    price            TEXT NOT NULL,
    qty              TEXT NOT NULL,
    quote_qty        TEXT,
    commission       TEXT,
    commission_asset TEXT,
    is_maker         INTEGER,
    ts_ns            INTEGER NOT NULL,        -- venue trade time
    source           TEXT NOT NULL,           -- report | mytrades
    confirmed        INTEGER NOT NULL DEFAULT 0,  -- 1: seen in the venue's trade list
    mid_at_fill      REAL,                    -- book mid when the journal saw it (quote asset)
    mid_100ms        REAL,                    -- markouts: the mid after 100 ms, 1 s, 5 s, 30 s
    mid_1s           REAL,
    mid_5s           REAL,
    mid_30s          REAL,
    PRIMARY KEY (symbol, trade_id, venue_order_id)
);
CREATE INDEX IF NOT EXISTS fills_ts ON fills (ts_ns);

-- What the engine decided about the venue's truth, and operator / safety events:
-- unknown_resolved | stranger_canceled | divergence | position_repaired | fill_from_venue
-- | ring_gap | kill | pause | resumed | reset | journal_start.
CREATE TABLE IF NOT EXISTS decisions (
    id        INTEGER PRIMARY KEY,
    ts_ns     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    symbol    TEXT,
    order_id  INTEGER,
    detail    TEXT
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions (ts_ns);
