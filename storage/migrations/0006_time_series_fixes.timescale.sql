-- TimescaleDB: two corrections to migration 2, made here so that databases which applied it
-- are corrected too.

-- 1. The weekly and monthly roll-ups refresh all of history. Real-time aggregation reads the
-- raw 1d candles only above the last materialised bucket, so a refresh window that stops
-- 35 days or 4 months back hid every older candle from the views after the first refresh:
-- replayed or imported history vanished. A refresh rematerialises only the buckets whose
-- candles changed since the last one (TimescaleDB logs the changed ranges), so a window
-- without a start costs little when little changed. A change older than the last refresh
-- shows within the hour; CALL refresh_continuous_aggregate('candles_1w', NULL, NULL) shows it
-- at once. The window ends a day back, so the open week and month come from real-time
-- aggregation.
SELECT remove_continuous_aggregate_policy('candles_1w', if_exists => true);
SELECT add_continuous_aggregate_policy('candles_1w',
    start_offset => NULL,
    end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
SELECT remove_continuous_aggregate_policy('candles_1mo', if_exists => true);
SELECT add_continuous_aggregate_policy('candles_1mo',
    start_offset => NULL,
    end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');

-- 2. create_hypertable added an index on ticks (ts_event DESC); the primary key leads with
-- ts_event and serves the same scans, so the second index only slowed tick writes. (Candles
-- keep theirs: their key leads with the instrument, and it is the scan by time across
-- instruments, like the plain mode's BRIN index.)
DROP INDEX IF EXISTS ticks_ts_event_idx;
