-- Read forms of each candle, written at upsert time (storage/candle_rows.py), so that the
-- history API reads a page without formatting numbers (docs/history-api.md, "Speed"):
--   price_scale, size_scale  the candle's decimal places (its prices', its volumes');
--   packed                   its integers as 16 big-endian int64 words (PACKED_WORDS): open
--                            time in ns, the scales, open, high, low, close, volume,
--                            quote_volume, trades, vwap, taker_buy_volume as scaled integers,
--                            first and last trade id (-2^63 for none), status (0 open,
--                            1 closed, 2 revised), revision. NULL when a value exceeds 64 bits;
--   json                     the candle as the API's JSON object.
-- The columns stay nullable in both modes: TimescaleDB adds nullable columns to compressed
-- hypertables but not NOT NULL ones without a default, and rows written by plain SQL leave
-- them NULL. Readers check and fall back to the numerics for such a page.

ALTER TABLE candles
    ADD COLUMN price_scale smallint,
    ADD COLUMN size_scale  smallint,
    ADD COLUMN packed      bytea,
    ADD COLUMN json        text;
COMMENT ON COLUMN candles.packed IS
    'The candle as 16 big-endian int64 words for fast reads (see storage/candle_rows.py).';
COMMENT ON COLUMN candles.json IS 'The candle as the history API''s JSON object.';

-- One word: a decimal at a given number of places, or NULL when it does not fit 64 bits.
CREATE OR REPLACE FUNCTION pg_temp.mdp_word(value numeric, places integer) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN abs(value * 10::numeric ^ places) < 9223372036854775808
                THEN int8send((value * 10::numeric ^ places)::bigint) END
$$;

-- Existing rows, from their numerics: the same bytes and text as the Python writer's.
UPDATE candles SET (price_scale, size_scale, packed, json) = (
    SELECT ps, ss,
        int8send((extract(epoch FROM open_time) * 1000000000)::bigint)
        || int8send(ps::bigint) || int8send(ss::bigint)
        || pg_temp.mdp_word(open, ps) || pg_temp.mdp_word(high, ps)
        || pg_temp.mdp_word(low, ps) || pg_temp.mdp_word(close, ps)
        || pg_temp.mdp_word(volume, ss) || pg_temp.mdp_word(quote_volume, ps + ss)
        || int8send(trades)
        || pg_temp.mdp_word(vwap, ps + 4) || pg_temp.mdp_word(taker_buy_volume, ss)
        || int8send(coalesce(first_trade_id, -9223372036854775808))
        || int8send(coalesce(last_trade_id, -9223372036854775808))
        || int8send(CASE status WHEN 'open' THEN 0 WHEN 'closed' THEN 1 ELSE 2 END::bigint)
        || int8send(revision::bigint),
        concat('{"instrument":"', instrument, '","interval":"', interval,
            '","open_time":"',
            to_char(open_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            '","open":"', open, '","high":"', high, '","low":"', low, '","close":"', close,
            '","volume":"', volume, '","quote_volume":"', quote_volume,
            '","trades":', trades, ',"vwap":"', vwap,
            '","taker_buy_volume":"', taker_buy_volume,
            '","first_trade_id":', coalesce(first_trade_id::text, 'null'),
            ',"last_trade_id":', coalesce(last_trade_id::text, 'null'),
            ',"status":"', status, '","revision":', revision, '}')
    FROM (
        SELECT greatest(scale(open), scale(high), scale(low), scale(close))::smallint AS ps,
               greatest(scale(volume), scale(taker_buy_volume))::smallint AS ss
    ) AS scales
);

DROP FUNCTION pg_temp.mdp_word(numeric, integer);

-- A page of packed rows is read from this index alone (an index-only scan, where the rows'
-- pages are all-visible: vacuumed since their last write, as closed ranges soon are): half
-- the work of visiting each row in the table. It holds what that read needs besides the
-- key: the packed words and the time of the last change (the page's ETag).
CREATE INDEX candles_packed ON candles (instrument, interval, open_time)
    INCLUDE (packed, updated_at);
