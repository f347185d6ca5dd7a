"""A long page read in two halves at once equals the page read in one statement."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from core.present import ReadForm
from storage import PostgresStore
from storage.pg_pages import HALVES_FROM, candle_params, read_page, read_part
from storage.times import END_OF_TIME, at_or_after
from tests.charting.data import INSTRUMENT, MINUTE, T0, series

ROWS = max(HALVES_FROM, 2_500)
FORMS = [ReadForm.PACKED, ReadForm.JSON]


def one_statement(conn: psycopg.Connection[Any], form: ReadForm, start: int, rows: int) -> Any:
    return read_part(conn, form, candle_params(INSTRUMENT, MINUTE, start, END_OF_TIME), rows)


def halves(conn: psycopg.Connection[Any], form: ReadForm, start: int, rows: int) -> Any:
    page = read_page(conn, form, INSTRUMENT, MINUTE, start, END_OF_TIME, rows)
    assert conn.info.transaction_status is TransactionStatus.IDLE  # its transaction is over
    return page


@pytest.mark.parametrize("form", FORMS)
async def test_a_dense_page_in_halves_equals_one_statement(
    store: PostgresStore, migrated_database: str, form: ReadForm
) -> None:
    # Scales get finer half way and every ninth candle is flagged: both halves differ.
    await store.write(candles=series(ROWS + 300, open_last=False, flag_every=9))
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        for start in (T0, T0 + 17 * MINUTE.ns + 5):  # on and off the minute
            whole = one_statement(conn, form, start, ROWS)
            assert whole.rows == ROWS
            assert whole.after is not None
            assert halves(conn, form, start, ROWS) == whole
        # The range ends inside the second half: the page is short, with no next page.
        short = one_statement(conn, form, T0 + 400 * MINUTE.ns, ROWS)
        assert short.rows == ROWS + 300 - 400
        assert short.after is None
        assert halves(conn, form, T0 + 400 * MINUTE.ns, ROWS) == short


@pytest.mark.parametrize("form", FORMS)
async def test_a_sparse_first_half_is_made_up_after_the_second(
    store: PostgresStore, migrated_database: str, form: ReadForm
) -> None:
    # Every third minute has no candle: the first half of the span holds a third too few,
    # so the rows still wanted are read after the second half.
    await store.write(candles=series(2 * ROWS, gap_every=3, open_last=True))
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        whole = one_statement(conn, form, T0, ROWS)
        assert whole.rows == ROWS
        assert halves(conn, form, T0, ROWS) == whole
        last = one_statement(conn, form, T0 + 2 * ROWS * MINUTE.ns, ROWS)  # holds the open one
        assert last.has_open
        assert 0 < last.rows < ROWS
        assert halves(conn, form, T0 + 2 * ROWS * MINUTE.ns, ROWS) == last


@pytest.mark.parametrize("form", FORMS)
async def test_candles_closer_than_an_interval_are_read_whole(
    store: PostgresStore, migrated_database: str, form: ReadForm
) -> None:
    # A plain SQL writer put extra rows half a minute after the first half's candles:
    # the first half holds more rows than half the page.
    await store.write(candles=series(ROWS + 200, open_last=False))
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'candles' ORDER BY ordinal_position"
            )
        ]
        shifted = ", ".join(
            "open_time + interval '30 seconds'"
            if name == "open_time"
            else "NULL"  # the ready forms hold the old open time: as if never written
            if name in ("packed", "json")
            else name
            for name in columns
        )
        conn.execute(
            f"INSERT INTO candles ({', '.join(columns)}) SELECT {shifted} FROM candles"
            " WHERE open_time < %s",
            (at_or_after(T0 + ROWS // 2 * MINUTE.ns),),
        )
        whole = one_statement(conn, form, T0, ROWS)
        assert whole.rows == ROWS
        assert halves(conn, form, T0, ROWS) == whole
