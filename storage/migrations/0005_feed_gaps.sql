-- Feed gaps (core.gaps.FeedGap): spans of venue time in which trades of an instrument may be
-- missing, because a live connector was disconnected or saw the venue's trade numbering skip.
-- Stored so that "no trades" and "the feed was down" stay apart after the fact: each candle
-- carries the engine's flag, and the spans themselves are kept here.

-- The flag of each candle: its interval overlaps a feed gap. The engine's flag is the one of
-- the latest revision, so the upsert rewrites it with the rest. NOT NULL with a default is a
-- change of the catalogue only in PostgreSQL, and TimescaleDB (2.6+) allows it on compressed
-- hypertables.
ALTER TABLE candles ADD COLUMN gap boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN candles.gap IS
    'Whether the candle''s interval overlaps a feed gap: trades may be missing from it.';

-- The stored JSON form ends with the new field, as the writer now writes it. jsonb would
-- reorder the keys (the order is the API's), so the text gets it before its closing brace.
-- The packed form keeps its 16 words: the flag is bit 8 of the status word, 0 here. On
-- TimescaleDB (2.11+ writes compressed chunks) this decompresses the rows it rewrites; the
-- compression policy compresses them again.
UPDATE candles SET json = left(json, -1) || ',"gap":false}'
WHERE json IS NOT NULL AND right(json, 1) = '}';

-- One row per gap. The span is half open, [start_ns, end_ns), in exact UTC nanoseconds of
-- venue time; start_time and end_time are the same span as timestamptz for SQL users,
-- widened to whole microseconds (start truncated, end rounded up). noticed is when the
-- connector noticed (its ts_recv; NULL when it did not say). The key makes a replayed write
-- change nothing: the same instrument, span and reason is the same gap.
CREATE TABLE feed_gaps (
    instrument text        NOT NULL,
    start_time timestamptz NOT NULL,
    end_time   timestamptz NOT NULL,
    start_ns   bigint      NOT NULL CHECK (start_ns > 0),
    end_ns     bigint      NOT NULL,
    reason     text        NOT NULL,
    detail     text        NOT NULL DEFAULT '',
    noticed    timestamptz,
    noticed_ns bigint,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feed_gaps_pkey PRIMARY KEY (instrument, start_ns, end_ns, reason),
    CHECK (end_ns > start_ns)
);
COMMENT ON TABLE feed_gaps IS
    'Spans of venue time in which trades of an instrument may be missing (see docs/storage.md).';

-- The key is also the read index: one instrument's gaps overlapping a range are those that
-- start before its end and end after its start, so a read walks the key from the instrument's
-- first gap up to the range's end, filtering on end_ns within the index. Gaps are rare (a few
-- per venue and day at worst), so the walk is short.
