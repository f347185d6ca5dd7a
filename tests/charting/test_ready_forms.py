"""Pages built from the rows' ready forms equal pages built from candles, whatever the path:
one statement or many chunks, packed words or Decimals, forms present or missing."""

from __future__ import annotations

import msgspec
import numpy as np
import psycopg
import pyarrow as pa
import pytest

from charting.candle_formats import CANDLE_FIELDS, Scales, arrow_schema
from core.candles import Candle
from core.present.packed import (
    GAP_FLAG,
    PACKED_DTYPE,
    STATUSES,
    decimal_array,
    decimal_batch,
    pack_candle,
    pack_candles,
    packed_batch,
    packed_rows,
)
from core.present.text import CandleRecord
from storage import PostgresStore
from storage.times import at_or_after
from tests.charting.conftest import MakeClient
from tests.charting.data import (
    INSTRUMENT,
    MINUTE,
    T0,
    from_arrow,
    from_csv,
    from_json,
    from_parquet,
    normal,
    series,
)

CLOSED = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026-01-01",
          "end": "2026-01-01T05:00:00Z"}  # fmt: skip


def schema_for(candles: list[Candle]) -> pa.Schema:
    return arrow_schema(Scales.of(candles))


def test_the_json_record_holds_the_api_columns_in_order() -> None:
    assert CandleRecord.__struct_fields__ == CANDLE_FIELDS


def test_packed_and_decimal_batches_are_equal_across_scales() -> None:
    candles = series(400, gap_every=9, flag_every=6)  # finer scales half way; flat; one open
    assert len({c.price_scale for c in candles}) == 2
    schema = schema_for(candles)
    rows = pack_candles(candles)
    assert rows is not None
    packed = packed_batch(rows, schema, INSTRUMENT, "1m")
    assert packed.equals(decimal_batch(candles, schema, INSTRUMENT, "1m"))
    assert packed.column(CANDLE_FIELDS.index("first_trade_id")).null_count > 0
    assert packed.column(CANDLE_FIELDS.index("gap")).to_pylist() == [c.gap for c in candles]
    assert packed.column(CANDLE_FIELDS.index("status")).to_pylist() == [
        c.status.value for c in candles
    ]


def test_the_status_word_holds_the_status_and_the_gap_flag() -> None:
    candles = series(4, flat_every=0)  # closed, closed, closed, open
    flagged = [msgspec.structs.replace(c, gap=True) for c in candles]
    rows = pack_candles([*candles[:2], *flagged[2:]])
    assert rows is not None
    assert rows["status"].tolist() == [1, 1, GAP_FLAG | 1, GAP_FLAG | 0]
    batch = packed_batch(rows, schema_for(candles), INSTRUMENT, "1m")
    assert batch.column(CANDLE_FIELDS.index("status")).to_pylist() == ["closed"] * 3 + ["open"]
    assert batch.column(CANDLE_FIELDS.index("gap")).to_pylist() == [False, False, True, True]
    for word in (GAP_FLAG << 1, len(STATUSES), -1):
        broken = rows.copy()
        broken["status"][0] = word
        with pytest.raises(ValueError, match="status"):
            packed_batch(broken, schema_for(candles), INSTRUMENT, "1m")


def test_a_rescaled_value_beyond_64_bits_is_exact() -> None:
    raw = np.array([123, 9 * 10**17, 5], dtype=np.int64)
    own = np.array([0, 0, 4], dtype=np.int64)
    kind = pa.decimal128(38, 8)
    values = decimal_array(raw, own, kind).to_pylist()
    expected = [pa.scalar(v, kind).as_py() for v in (123, 9 * 10**17)]
    assert values[:2] == expected
    assert str(values[2]) == "0.00050000"


def test_candles_beyond_64_bits_take_the_decimal_road() -> None:
    big = msgspec.structs.replace(
        series(3, open_last=False)[0], volume_raw=10**15, taker_buy_volume_raw=1,
        quote_volume_raw=10**25, trades=3, first_trade_id=1, last_trade_id=3,
    )  # fmt: skip
    assert pack_candle(big) is None
    assert pack_candles([big]) is None
    batch = decimal_batch([big], schema_for([big]), INSTRUMENT, "1m")
    assert batch.column(CANDLE_FIELDS.index("quote_volume"))[0].as_py() == big.quote_volume


def test_packed_rows_are_checked_for_whole_rows_in_order() -> None:
    rows = pack_candles(series(3, open_last=False))
    assert rows is not None
    with pytest.raises(ValueError, match="bytes each"):
        packed_rows(rows.tobytes()[:-1])
    with pytest.raises(ValueError, match="open-time order"):
        packed_rows(rows[::-1].tobytes())
    assert packed_rows(b"").dtype == PACKED_DTYPE


@pytest.mark.parametrize("fmt", ["json", "arrow", "parquet", "csv"])
async def test_a_page_read_in_chunks_equals_the_page_read_in_one_statement(
    store: PostgresStore, make_client: MakeClient, fmt: str
) -> None:
    await store.write(candles=series(250, open_last=False, flag_every=6))
    one = make_client(intervals=(MINUTE,), cache_bytes=0)
    whole = await one.get("/v1/candles", params=CLOSED | {"format": fmt})
    chunked = make_client(intervals=(MINUTE,), chunk_rows=7, cache_bytes=0)
    parts = await chunked.get("/v1/candles", params=CLOSED | {"format": fmt})
    assert whole.status_code == parts.status_code == 200
    assert whole.headers["etag"] == parts.headers["etag"]
    if fmt == "arrow":  # a record batch per chunk: the same table
        assert from_arrow(whole.content) == from_arrow(parts.content)
        assert len(from_arrow(whole.content)) == 250
    elif fmt == "parquet":  # a row group per chunk: the same table
        assert from_parquet(whole.content) == from_parquet(parts.content)
    else:
        assert whole.content == parts.content


async def test_rows_without_their_ready_forms_are_served_from_the_numerics(
    store: PostgresStore, make_client: MakeClient, migrated_database: str
) -> None:
    candles = series(120, flag_every=5)
    await store.write(candles=candles)
    with psycopg.connect(migrated_database) as conn:  # as a plain SQL writer leaves them
        conn.execute(
            "UPDATE candles SET packed = NULL, json = NULL, price_scale = NULL,"
            " size_scale = NULL WHERE open_time < %s",
            (at_or_after(T0 + 30 * MINUTE.ns),),
        )
    expected = [normal(c) for c in candles]
    params = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026", "limit": "1000"}
    for chunk in (10_000, 16):
        client = make_client(intervals=(MINUTE,), chunk_rows=chunk)
        body = (await client.get("/v1/candles", params=params)).json()
        assert from_json(body) == expected
        arrow = (await client.get("/v1/candles", params=params | {"format": "arrow"})).content
        assert from_arrow(arrow) == expected
        csv = (await client.get("/v1/candles", params=params | {"format": "csv"})).text
        assert from_csv(csv) == expected


@pytest.mark.parametrize("fmt", ["json", "arrow", "csv"])
async def test_a_flagged_open_candle_is_still_open(
    store: PostgresStore, make_client: MakeClient, fmt: str
) -> None:
    candles = series(20, flag_every=1)  # every candle flagged, the last one open
    await store.write(candles=candles)
    client = make_client(intervals=(MINUTE,))
    params = {"instrument": INSTRUMENT, "interval": "1m", "start": "2026", "format": fmt}
    response = await client.get("/v1/candles", params=params)
    assert response.headers["cache-control"] == "no-store"
    if fmt == "json":
        found = from_json(response.json())
    elif fmt == "arrow":
        found = from_arrow(response.content)
    else:
        found = from_csv(response.text)
    assert found == [normal(c) for c in candles]
