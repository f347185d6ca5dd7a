-- TimescaleDB (2.13 or newer, preloaded): hypertables, compression, retention, and continuous
-- aggregates with the names and columns of the plain mode's views.
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- One-day chunks of ticks, seven-day chunks of candles. The primary keys hold the time
-- columns, as hypertables require.
SELECT create_hypertable('ticks', by_range('ts_event', INTERVAL '1 day'), migrate_data => true);
SELECT create_hypertable('candles', by_range('open_time', INTERVAL '7 days'), migrate_data => true);

-- Compression: ticks after 7 days, candles after 30 (the engine revises a candle only within
-- its horizon, an hour by default, so compressed chunks are rarely written). Segmented by
-- instrument, as every query names one.
ALTER TABLE ticks SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument',
    timescaledb.compress_orderby = 'ts_event, ts_event_ns, trade_id'
);
SELECT add_compression_policy('ticks', compress_after => INTERVAL '7 days');
ALTER TABLE candles SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'instrument, interval',
    timescaledb.compress_orderby = 'open_time'
);
SELECT add_compression_policy('candles', compress_after => INTERVAL '30 days');

-- Retention: raw ticks are dropped after 90 days, a chunk at a time; candles are kept.
SELECT add_retention_policy('ticks', drop_after => INTERVAL '90 days');

-- Weekly and monthly candles rolled up from the 1d candles. Real-time aggregation
-- (materialized_only = false) adds the buckets not yet materialised, so these views always
-- agree with the plain mode's. time_bucket weeks start on Monday; months are UTC months.
CREATE MATERIALIZED VIEW candles_1w
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    instrument,
    time_bucket(INTERVAL '1 week', open_time) AS open_time,
    first(open, open_time) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, open_time) AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(taker_buy_volume) AS taker_buy_volume,
    sum(trades)::bigint AS trades,
    min(first_trade_id) AS first_trade_id,
    max(last_trade_id) AS last_trade_id
FROM candles
WHERE interval = '1d'
GROUP BY instrument, time_bucket(INTERVAL '1 week', open_time)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_1w',
    start_offset => INTERVAL '35 days',
    end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');

CREATE MATERIALIZED VIEW candles_1mo
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    instrument,
    time_bucket(INTERVAL '1 month', open_time) AS open_time,
    first(open, open_time) AS open,
    max(high) AS high,
    min(low) AS low,
    last(close, open_time) AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(taker_buy_volume) AS taker_buy_volume,
    sum(trades)::bigint AS trades,
    min(first_trade_id) AS first_trade_id,
    max(last_trade_id) AS last_trade_id
FROM candles
WHERE interval = '1d'
GROUP BY instrument, time_bucket(INTERVAL '1 month', open_time)
WITH NO DATA;
SELECT add_continuous_aggregate_policy('candles_1mo',
    start_offset => INTERVAL '4 months',
    end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
