-- Stream processors' saved state: the candle engine's checkpoint under its consumer group name,
-- so that a restart continues its open candles, clocks and recent trade ids exactly.
CREATE TABLE checkpoints (
    name     text        PRIMARY KEY,
    data     bytea       NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE checkpoints IS 'Opaque state blobs of stream processors (see docs/storage.md).';
