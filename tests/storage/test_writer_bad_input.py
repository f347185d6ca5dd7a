"""The storage writer against bad input on a real PostgreSQL: a NUL byte quoted in a reject
is stored escaped, and a row the database refuses all the same is skipped, logged with where
it was, while the rest of its batch is stored once and the writer goes on."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import msgspec
import psycopg
import pytest

from core import codecs
from core.topics import CANDLES, TICKS, TICKS_REJECTED
from ingest.files import ReadReport
from ingest.files.reader import read_ticks
from ingest.pacing import paced
from ingest.publisher import FeedPublisher
from storage import PostgresStore
from storage.writer import StorageWriter
from streams.memory import MemoryBus
from tests.storage.factories import batch, candle, gap, tick

FOREVER = 2**62
BINANCE = "BTCUSDT-aggTrades-2026-01-01.csv"
NUL_ROW = "2,9\x0042.5,0.1,2,2,1767225600100000,True,True\n"
GOOD_ROWS = (
    "1,87648.21,0.08185,1,1,1767225600039409,True,True\n",
    "3,87648.22,0.00013,3,3,1767225600272386,False,True\n",
)


async def drained(writer: StorageWriter) -> StorageWriter:
    writer.drain()
    await asyncio.wait_for(writer.run(), 30)
    return writer


async def test_a_file_row_with_a_nul_byte_is_stored_as_an_escaped_reject_and_the_rest_flows(
    migrated_database: str, tmp_path: Path
) -> None:
    path = tmp_path / BINANCE
    path.write_text(GOOD_ROWS[0] + NUL_ROW + GOOD_ROWS[1])
    async with MemoryBus(partitions=1) as bus, PostgresStore.open(migrated_database) as store:
        publisher = FeedPublisher(bus)  # what `mdp ingest --replay` and `mdp up` publish with
        report = ReadReport(on_bad=publisher.bad_row)
        await publisher.run(paced(read_ticks(path, report=report), None))
        writer = await drained(StorageWriter(bus, store))
        stored = await store.ticks("BINANCE:BTCUSDT", 0, FOREVER)
        (rejection,) = await store.rejections()
    assert (writer.stats.ticks, writer.stats.rejections, writer.stats.refused) == (2, 1, 0)
    assert stored.trade_id.tolist() == [1, 3]
    assert rejection.reason == "bad_row"
    assert rejection.detail == (rf"ingest: price '9\x0042.5' is not a decimal number [{BINANCE}:2]")


async def test_a_reject_on_the_bus_with_nul_bytes_from_an_older_producer_is_stored_escaped(
    migrated_database: str,
) -> None:
    """A record written before rejects were escaped: decoding escapes it."""
    value = msgspec.msgpack.encode(
        {"v": 1, "reason": "bad_row", "detail": "size '1\x00'", "source": "ingest",
         "payload": b"1,1\x00,x", "origin": "a\x00.csv:3"}
    )  # fmt: skip
    async with MemoryBus(partitions=1) as bus, PostgresStore.open(migrated_database) as store:
        await bus.topic(TICKS_REJECTED).publish(b"", value)
        writer = await drained(StorageWriter(bus, store))
        (rejection,) = await store.rejections()
    assert writer.stats.rejections == 1
    assert rejection.detail == r"ingest: size '1\x00' [a\x00.csv:3]"
    assert rejection.payload == r"1,1\x00,x"


REFUSE_MARKED = """
CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.detail LIKE '%refuse me%' THEN
        RAISE EXCEPTION 'value refused by the test' USING ERRCODE = 'data_exception';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_marked BEFORE INSERT ON rejected_ticks
    FOR EACH ROW EXECUTE FUNCTION refuse_marked();
"""


def reject(detail: str) -> bytes:
    return codecs.encode_rejected(
        codecs.RejectedMessage(reason="bad_row", detail=detail, source="ingest")
    )


async def test_a_row_the_database_refuses_is_skipped_and_logged_and_the_rest_stored_once(
    migrated_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refuses a value (SQLSTATE 22, as it does a NUL in text): the writer does
    not stop, and does not meet that record again at its next start."""
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute(REFUSE_MARKED)
    key = codecs.instrument_key("TEST:BTCUSD")
    async with MemoryBus(partitions=1) as bus, PostgresStore.open(migrated_database) as store:
        for n in range(3):
            await bus.topic(TICKS).publish(key, codecs.encode_tick_batch(batch(tick(n, n))))
        await bus.topic(TICKS).publish(key, codecs.encode_feed_gap(gap(10, 20)))
        await bus.topic(CANDLES).publish(key, codecs.encode_candle(candle(1)))
        for detail in ("first", "refuse me", "third"):
            await bus.topic(TICKS_REJECTED).publish(b"", reject(detail))
        with caplog.at_level(logging.ERROR, logger="storage.writer"):
            writer = await drained(StorageWriter(bus, store))
        offsets = await store.stored_offsets(writer.offsets_key)
        ticks = await store.ticks("TEST:BTCUSD", 0, FOREVER)
        rejections = await store.rejections()
        gaps = await store.gaps("TEST:BTCUSD", 0, FOREVER)
    stats = writer.stats
    assert (stats.ticks, stats.gaps, stats.candles, stats.rejections) == (3, 1, 1, 2)
    assert stats.refused == 1
    assert ticks.trade_id.tolist() == [0, 1, 2]
    assert [r.detail for r in rejections] == ["ingest: first", "ingest: third"]
    assert len(gaps) == 1
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "the database refused a row of the record at md.ticks.rejected/0/1; skipped it" in line
    assert "value refused by the test" in line
    # the refused record's offset is stored with the rest: a restart does not read it again
    assert offsets == {(TICKS, 0): 4, (CANDLES, 0): 1, (TICKS_REJECTED, 0): 3}
