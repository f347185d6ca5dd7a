-- The tables, the same in both modes (plain PostgreSQL and TimescaleDB).
-- Prices and sizes are NUMERIC written as exact decimal text: a value keeps its decimal places
-- ("1.50" stays "1.50"), which is how the readers restore the fixed-point scales.

-- One row per venue trade. ts_event and ts_recv are timestamptz for SQL users (truncated to
-- the microsecond, PostgreSQL's resolution); ts_event_ns and ts_recv_ns hold the exact UTC
-- nanoseconds. A trade is identified by (instrument, ts_event_ns, trade_id): the key that
-- makes a replayed write change nothing. The key leads with time, not the instrument:
-- trades arrive in time order, so its b-tree grows at its right edge, which costs writes far
-- less than inserting into the middle of every instrument's range (see docs/storage.md);
-- readers of one instrument's range filter on the key's last column. It holds ts_event
-- because a TimescaleDB hypertable needs its time column in every unique index; ts_event
-- follows from ts_event_ns, so it changes neither what is unique nor the order.
CREATE TABLE ticks (
    instrument  text        NOT NULL,
    trade_id    bigint      NOT NULL CHECK (trade_id >= 0),
    price       numeric     NOT NULL CHECK (price > 0),
    size        numeric     NOT NULL CHECK (size > 0),
    side        smallint    NOT NULL CHECK (side BETWEEN -1 AND 1),
    ts_event    timestamptz NOT NULL,
    ts_recv     timestamptz NOT NULL,
    ts_event_ns bigint      NOT NULL CHECK (ts_event_ns > 0),
    ts_recv_ns  bigint      NOT NULL CHECK (ts_recv_ns > 0),
    trades      bigint      NOT NULL DEFAULT 1 CHECK (trades >= 1),
    CONSTRAINT ticks_pkey PRIMARY KEY (ts_event, ts_event_ns, trade_id, instrument)
);
COMMENT ON TABLE ticks IS 'Trades; side is -1 sell, 0 unknown, 1 buy (the aggressor).';
COMMENT ON COLUMN ticks.ts_event IS 'Venue time, truncated to the microsecond (exact: ts_event_ns).';
COMMENT ON COLUMN ticks.ts_event_ns IS 'Venue time, exact UTC nanoseconds since the epoch.';

-- One row per candle, in its latest revision. open_time is exact (intervals are whole
-- seconds); close_time = open_time + the interval (exclusive).
CREATE TABLE candles (
    instrument       text        NOT NULL,
    interval         text        NOT NULL,
    open_time        timestamptz NOT NULL,
    close_time       timestamptz NOT NULL,
    open             numeric     NOT NULL,
    high             numeric     NOT NULL,
    low              numeric     NOT NULL,
    close            numeric     NOT NULL,
    volume           numeric     NOT NULL,
    quote_volume     numeric     NOT NULL,
    vwap             numeric     NOT NULL,
    taker_buy_volume numeric     NOT NULL,
    trades           bigint      NOT NULL CHECK (trades >= 0),
    first_trade_id   bigint,
    last_trade_id    bigint,
    revision         integer     NOT NULL CHECK (revision >= 0),
    status           text        NOT NULL CHECK (status IN ('open', 'closed', 'revised')),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT candles_pkey PRIMARY KEY (instrument, interval, open_time),
    CHECK (low <= open AND open <= high AND low <= close AND close <= high)
);
COMMENT ON TABLE candles IS
    'OHLCV bars per instrument and interval; a row holds the highest revision written.';

-- Ticks the platform refused, with the reason: nothing accepted vanishes. Instrument and
-- trade id are there when known; payload is the tick as JSON, or the raw input text.
CREATE TABLE rejected_ticks (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    instrument  text,
    trade_id    bigint,
    reason      text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    payload     text,
    -- A known trade rejected for the same reason twice (a replay) is one row; NULLs are
    -- distinct, so rejects without an instrument or trade id are never merged.
    CONSTRAINT rejected_ticks_once UNIQUE (instrument, trade_id, reason)
);
CREATE INDEX rejected_ticks_rejected_at ON rejected_ticks (rejected_at);

-- Where each consumer group stands in each topic partition, written in the same transaction
-- as the rows those messages produced: the writer resumes exactly after the last write.
CREATE TABLE consumer_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL CHECK (partition >= 0),
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT consumer_offsets_pkey PRIMARY KEY (group_id, topic, partition)
);

-- Every instrument written, so that listing them does not scan the ticks.
CREATE TABLE instruments (
    instrument text        PRIMARY KEY,
    first_seen timestamptz NOT NULL DEFAULT now()
);
