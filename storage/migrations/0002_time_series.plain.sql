-- Plain PostgreSQL: ordinary tables. The primary keys are the b-trees that the range
-- queries use (ticks: time first; candles: instrument, interval, time); a BRIN index serves
-- scans of candles across instruments by time at almost no cost to writes. The roll-ups are
-- plain views with the names and columns of the TimescaleDB continuous aggregates, computed
-- when read from the 1d candles.
CREATE INDEX candles_open_time_brin ON candles USING brin (open_time);

-- Weeks start on Monday 00:00 UTC (as time_bucket's do); months on the 1st, 00:00 UTC.
CREATE VIEW candles_1w AS
SELECT
    instrument,
    date_trunc('week', open_time, 'UTC') AS open_time,
    (array_agg(open ORDER BY open_time))[1] AS open,
    max(high) AS high,
    min(low) AS low,
    (array_agg(close ORDER BY open_time DESC))[1] AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(taker_buy_volume) AS taker_buy_volume,
    sum(trades)::bigint AS trades,
    min(first_trade_id) AS first_trade_id,
    max(last_trade_id) AS last_trade_id
FROM candles
WHERE interval = '1d'
GROUP BY instrument, date_trunc('week', open_time, 'UTC');

CREATE VIEW candles_1mo AS
SELECT
    instrument,
    date_trunc('month', open_time, 'UTC') AS open_time,
    (array_agg(open ORDER BY open_time))[1] AS open,
    max(high) AS high,
    min(low) AS low,
    (array_agg(close ORDER BY open_time DESC))[1] AS close,
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(taker_buy_volume) AS taker_buy_volume,
    sum(trades)::bigint AS trades,
    min(first_trade_id) AS first_trade_id,
    max(last_trade_id) AS last_trade_id
FROM candles
WHERE interval = '1d'
GROUP BY instrument, date_trunc('month', open_time, 'UTC');
