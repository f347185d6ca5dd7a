"""Migrations: re-runnable, concurrent-safe, versioned, and the mode they choose."""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from core.intervals import Interval
from storage import StorageMode, latest_version, migrate, schema_state
from storage.migrate import MigrationError, MigrationReport
from storage.migrations import Migration, migrations, sql_text
from storage.modes import HOW_TO_ENABLE_TIMESCALEDB, choose_mode, detect_mode
from tests.storage.schemas import MIGRATE_MODULE, migrated_to, use_plan


def state(url: str) -> tuple[int, StorageMode | None]:
    with psycopg.connect(url) as conn:
        found = schema_state(conn)
    return found.version, found.mode


def timescale_loadable(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return detect_mode(conn).mode is StorageMode.TIMESCALE


def test_a_new_database_is_at_version_zero(fresh_database: str) -> None:
    assert state(fresh_database) == (0, None)


def test_migrating_twice_gives_the_same_version_without_error(fresh_database: str) -> None:
    first = migrate(fresh_database)
    again = migrate(fresh_database)
    assert first.applied == tuple(range(1, latest_version() + 1))
    assert again.applied == ()
    assert first.version == again.version == latest_version()
    assert state(fresh_database) == (latest_version(), first.mode)


def test_two_migrators_at_once_apply_each_migration_once(fresh_database: str) -> None:
    reports: list[MigrationReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(migrate(fresh_database))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    applied = sorted(v for report in reports for v in report.applied)
    assert applied == list(range(1, latest_version() + 1))
    assert {report.version for report in reports} == {latest_version()}


def test_migrate_accepts_an_open_connection_and_gives_it_back_as_it_was(
    fresh_database: str,
) -> None:
    with psycopg.connect(fresh_database) as conn:
        report = migrate(conn)
        assert not conn.autocommit
    assert report.version == latest_version()


def test_without_timescaledb_the_plain_mode_is_chosen_and_recorded(fresh_database: str) -> None:
    if timescale_loadable(fresh_database):
        pytest.skip("this server can load TimescaleDB: plain mode is not what it gets")
    report = migrate(fresh_database)
    assert report.mode is StorageMode.PLAIN
    assert "timescaledb" in report.reason
    assert state(fresh_database) == (latest_version(), StorageMode.PLAIN)
    with psycopg.connect(fresh_database) as conn:
        modes = conn.execute("SELECT DISTINCT mode FROM schema_migrations").fetchall()
    assert modes == [("plain",)]


@pytest.mark.parametrize(
    ("available", "installed", "preload", "mode"),
    [
        (False, False, "", StorageMode.PLAIN),
        (True, False, "", StorageMode.PLAIN),  # CREATE EXTENSION would end the session
        (True, False, "pg_stat_statements", StorageMode.PLAIN),
        (True, False, "timescaledb", StorageMode.TIMESCALE),
        (True, False, "pg_stat_statements, timescaledb", StorageMode.TIMESCALE),
        (True, False, '"$libdir/timescaledb"', StorageMode.TIMESCALE),
        (True, False, "timescaledb_toolkit", StorageMode.PLAIN),
        (False, False, "timescaledb", StorageMode.PLAIN),  # preloaded, but no extension files
        (True, True, "timescaledb", StorageMode.TIMESCALE),
        (True, True, "", StorageMode.TIMESCALE),  # the database has it: it stays TimescaleDB
    ],
)
def test_timescaledb_is_chosen_only_when_it_can_be_loaded(
    available: bool, installed: bool, preload: str, mode: StorageMode
) -> None:
    assert choose_mode(available, installed, preload).mode is mode


def test_installed_but_not_preloaded_says_in_one_line_how_to_enable_timescaledb() -> None:
    choice = choose_mode(available=True, installed=False, shared_preload_libraries="")
    assert choice.mode is StorageMode.PLAIN
    assert "\n" not in choice.reason
    assert choice.reason.endswith(HOW_TO_ENABLE_TIMESCALEDB)
    assert "shared_preload_libraries" in HOW_TO_ENABLE_TIMESCALEDB


@pytest.mark.parametrize("given", ["url", "connection"])
def test_a_migration_that_loses_its_connection_reports_its_own_error(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """As CREATE EXTENSION timescaledb does without preloading: its FATAL ends the session, and
    the error raised is the migration's, not the lock's release on a closed connection."""
    dying = Migration(1, "dies", "SELECT pg_terminate_backend(pg_backend_pid())")
    use_plan(monkeypatch, lambda mode: [dying])
    own_error = r"^migration 1 \(dies, plain mode\) failed and was rolled back: "
    if given == "url":
        with pytest.raises(MigrationError, match=own_error):
            migrate(fresh_database, StorageMode.PLAIN)
    else:
        with psycopg.connect(fresh_database) as conn:
            with pytest.raises(MigrationError, match=own_error):
                migrate(conn, StorageMode.PLAIN)
            assert conn.closed
    assert state(fresh_database) == (0, None)


def test_a_database_keeps_the_mode_it_started_with(migrated_database: str) -> None:
    recorded = state(migrated_database)[1]
    assert recorded is not None
    other = StorageMode.TIMESCALE if recorded is StorageMode.PLAIN else StorageMode.PLAIN
    with pytest.raises(MigrationError, match=f"set up in {recorded} mode"):
        migrate(migrated_database, other)
    assert migrate(migrated_database, recorded).applied == ()


def test_a_failing_migration_is_rolled_back_whole_and_reported_in_one_line(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration(
        2,
        "broken",
        "CREATE TABLE half_done (x integer);"
        " DO $$ BEGIN RAISE EXCEPTION 'broken' USING HINT = E'first\\nsecond'; END $$",
    )
    use_plan(monkeypatch, lambda mode: [*migrations(mode)[:1], broken])
    with pytest.raises(
        MigrationError, match=r"^migration 2 \(broken, plain mode\) failed"
    ) as error:
        migrate(fresh_database, StorageMode.PLAIN)
    assert "\n" not in str(error.value)
    assert state(fresh_database) == (1, StorageMode.PLAIN)
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_timescale_mode_asked_of_a_server_that_cannot_load_it_is_refused_before_migrating(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_preloaded = choose_mode(available=True, installed=False, shared_preload_libraries="")
    monkeypatch.setattr(MIGRATE_MODULE, "detect_mode", lambda conn: not_preloaded)
    with pytest.raises(MigrationError, match=r"^timescale mode was asked for, but ") as error:
        migrate(fresh_database, StorageMode.TIMESCALE)
    assert str(error.value).endswith(HOW_TO_ENABLE_TIMESCALEDB)
    assert state(fresh_database) == (0, None)


def test_a_migration_changed_after_it_was_applied_is_refused(migrated_database: str) -> None:
    with psycopg.connect(migrated_database) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after this database applied it"):
        migrate(migrated_database)


def test_a_database_newer_than_the_code_is_refused(migrated_database: str) -> None:
    with psycopg.connect(migrated_database) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, mode, checksum)"
            " SELECT 99, 'future', mode, '' FROM schema_migrations WHERE version = 1"
        )
    with pytest.raises(MigrationError, match="newer than this code"):
        migrate(migrated_database)


def test_both_modes_have_every_migration_numbered_without_gaps() -> None:
    for mode in StorageMode:
        versions = [m.version for m in migrations(mode)]
        assert versions == list(range(1, latest_version() + 1))


# -- the plain mode's roll-up views -----------------------------------------------------------


def test_weekly_and_monthly_views_roll_up_the_daily_candles(migrated_database: str) -> None:
    day = Interval.parse("1d")
    # 2026-01-25 is a Sunday: its week starts on Monday 2026-01-19; 2026-02-01 opens February.
    rows = [
        ("2026-01-25", "10.00", "12.00", "9.00", "11.00", "1.5", 3, 100, 102),
        ("2026-01-26", "11.00", "15.00", "10.50", "14.00", "2.25", 4, 103, 106),
        ("2026-02-01", "14.00", "14.50", "8.00", "9.00", "0.5", 1, 107, 107),
    ]
    with psycopg.connect(migrated_database) as conn:
        for date, o, h, lo, c, volume, trades, first, last in rows:
            conn.execute(
                """
                INSERT INTO candles (instrument, interval, open_time, close_time, open, high,
                    low, close, volume, quote_volume, vwap, taker_buy_volume, trades,
                    first_trade_id, last_trade_id, revision, status)
                VALUES ('TEST:ABC', %s, %s::timestamptz, %s::timestamptz + interval '1 day',
                    %s, %s, %s, %s, %s, %s::numeric * %s::numeric, %s, 0, %s, %s, %s, 0, 'closed')
                """,
                (day.label, date, date, o, h, lo, c, volume, volume, c, c, trades, first, last),
            )
        weeks = conn.execute(
            "SELECT to_char(open_time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), open, high, low,"
            " close, volume, trades, first_trade_id, last_trade_id"
            " FROM candles_1w ORDER BY open_time"
        ).fetchall()
        months = conn.execute(
            "SELECT to_char(open_time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), open, close, trades"
            " FROM candles_1mo ORDER BY open_time"
        ).fetchall()
    assert weeks == [
        ("2026-01-19", Decimal("10.00"), Decimal("12.00"), Decimal("9.00"), Decimal("11.00"),
         Decimal("1.5"), 3, 100, 102),
        ("2026-01-26", Decimal("11.00"), Decimal("15.00"), Decimal("8.00"), Decimal("9.00"),
         Decimal("2.75"), 5, 103, 107),
    ]  # fmt: skip
    assert months == [
        ("2026-01-01", Decimal("10.00"), Decimal("14.00"), 7),
        ("2026-02-01", Decimal("14.00"), Decimal("9.00"), 1),
    ]


# -- the TimescaleDB mode: its DDL read here, run where the extension is --------------------


def view_columns(sql: str) -> dict[str, list[str]]:
    """Each view's name and its column aliases, in order, from CREATE [MATERIALIZED] VIEW."""
    views = {}
    pattern = r"CREATE (?:MATERIALIZED )?VIEW (\w+)\b(.*?)\bFROM candles"
    for name, body in re.findall(pattern, sql, re.S):
        views[name] = re.findall(r"\bAS (\w+),?\s*$", body, re.M)
    return views


def test_both_modes_create_the_same_views_with_the_same_columns() -> None:
    plain = view_columns(sql_text(2, StorageMode.PLAIN))
    timescale = view_columns(sql_text(2, StorageMode.TIMESCALE))
    assert set(plain) == {"candles_1w", "candles_1mo"}
    assert plain == timescale
    assert plain["candles_1w"][:6] == ["open_time", "open", "high", "low", "close", "volume"]


def test_timescale_ddl_makes_hypertables_keyed_by_their_time_column() -> None:
    tables = sql_text(1, StorageMode.TIMESCALE)
    ddl = sql_text(2, StorageMode.TIMESCALE)
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb" in ddl
    hypertables = dict(re.findall(r"create_hypertable\('(\w+)', by_range\('(\w+)'", ddl))
    assert hypertables == {"ticks": "ts_event", "candles": "open_time"}
    for table, time_column in hypertables.items():  # every unique key must hold the time
        key = re.search(rf"CONSTRAINT {table}_pkey PRIMARY KEY \(([^)]*)\)", tables)
        assert key is not None
        assert time_column in [column.strip() for column in key.group(1).split(",")]
    ticks = re.search(r"CREATE TABLE ticks \((.*?)\n\);", tables, re.S)
    assert ticks is not None
    assert "UNIQUE" not in ticks.group(1)  # the primary key is the only unique index


def test_timescale_ddl_sets_compression_retention_and_refresh_policies() -> None:
    ddl = sql_text(2, StorageMode.TIMESCALE)
    compressed = re.findall(r"ALTER TABLE (\w+) SET \(\s*timescaledb\.compress,", ddl)
    assert compressed == ["ticks", "candles"]
    assert re.findall(r"add_compression_policy\('(\w+)'", ddl) == ["ticks", "candles"]
    assert re.findall(r"add_retention_policy\('(\w+)'", ddl) == ["ticks"]
    aggregates = re.findall(r"CREATE MATERIALIZED VIEW (\w+)\s+WITH \(timescaledb.continuous", ddl)
    assert aggregates == ["candles_1w", "candles_1mo"]
    assert re.findall(r"add_continuous_aggregate_policy\('(\w+)'", ddl) == aggregates
    # A migration runs in a transaction: continuous aggregates must be created WITH NO DATA.
    assert ddl.count("WITH NO DATA") == len(aggregates)
    assert "time_bucket(INTERVAL '1 week', open_time)" in ddl


def test_migration_5_adds_the_gap_flag_as_compressed_hypertables_allow() -> None:
    ddl = sql_text(5, StorageMode.TIMESCALE)
    assert ddl == sql_text(5, StorageMode.PLAIN)  # one file for both modes
    # TimescaleDB (2.6+) adds a column to a compressed hypertable only nullable, or NOT NULL
    # with a default; the plain-SQL readers also rely on the default.
    added = re.findall(r"ADD COLUMN (\w+) ([^;]*);", ddl)
    assert added == [("gap", "boolean NOT NULL DEFAULT false")]
    assert "create_hypertable" not in ddl  # feed_gaps is small: a plain table in both modes


def test_migration_6_refreshes_all_history_and_leaves_the_ticks_their_key_alone() -> None:
    ddl = sql_text(6, StorageMode.TIMESCALE)
    removed = re.findall(r"remove_continuous_aggregate_policy\('(\w+)'", ddl)
    added = re.findall(r"add_continuous_aggregate_policy\('(\w+)',\s+start_offset => NULL,", ddl)
    assert removed == added == ["candles_1w", "candles_1mo"]
    assert re.findall(r"DROP INDEX IF EXISTS (\w+);", ddl) == ["ticks_ts_event_idx"]
    plain = sql_text(6, StorageMode.PLAIN).splitlines()
    assert all(line.startswith("--") for line in plain if line.strip())  # nothing to correct


@pytest.fixture
def timescale_database(fresh_database: str) -> str:
    """:func:`fresh_database`, where the server can load TimescaleDB (else the test skips)."""
    if not timescale_loadable(fresh_database):
        pytest.skip(
            "TimescaleDB cannot be loaded by this PostgreSQL server (no timescaledb in"
            " pg_available_extensions, or not in shared_preload_libraries); point DATABASE_URL"
            " at a TimescaleDB server to run this test"
        )
    return fresh_database


def test_timescale_mode_on_a_server_with_timescaledb(timescale_database: str) -> None:
    report = migrate(timescale_database)
    assert report.mode is StorageMode.TIMESCALE
    with psycopg.connect(timescale_database) as conn:
        hypertables = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = current_schema() ORDER BY 1"
        ).fetchall()
        jobs = conn.execute(  # ours, not TimescaleDB's own (telemetry, job history)
            "SELECT proc_name, count(*) FROM timescaledb_information.jobs"
            " WHERE hypertable_schema = current_schema() GROUP BY 1 ORDER BY 1"
        ).fetchall()
        conn.execute("SELECT * FROM candles_1w, candles_1mo")
    assert hypertables == [("candles",), ("ticks",)]
    assert dict(jobs) == {"policy_compression": 2, "policy_refresh_continuous_aggregate": 2,
                          "policy_retention": 1}  # fmt: skip


def insert_daily_candles(url: str, first_day: int, last_day: int) -> None:
    """1d candles of two instruments for the days ``first_day`` to ``last_day`` after today
    (negative: before), their values varying from day to day."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO candles (instrument, interval, open_time, close_time, open, high, low,
                close, volume, quote_volume, vwap, taker_buy_volume, trades, first_trade_id,
                last_trade_id, revision, status)
            SELECT instrument, '1d', day, day + interval '1 day', 100 + n %% 7, 120 + n %% 13,
                90 - n %% 5, 100 + n %% 11, n, 100 * n, 100, n / 2, n, 10 * n, 10 * n + 9, 0,
                'closed'
            FROM unnest(ARRAY['TEST:ABC', 'TEST:XYZ']) AS instrument,
                generate_series(date_trunc('day', now(), 'UTC') + %s * interval '1 day',
                                date_trunc('day', now(), 'UTC') + %s * interval '1 day',
                                interval '1 day') AS day,
                LATERAL (SELECT extract(epoch FROM day)::bigint / 86400 AS n) AS numbered
            """,
            (first_day, last_day),
        )


def run_refresh_policies(url: str) -> None:
    """Run the roll-ups' refresh jobs now, as TimescaleDB's scheduler would (and keep the
    scheduler from running them meanwhile: it waits for a refresh it has begun)."""
    with psycopg.connect(url, autocommit=True) as conn:
        jobs = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE hypertable_schema ="
            " current_schema() AND proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchall()
        assert len(jobs) == 2
        for (job,) in jobs:
            conn.execute("SELECT alter_job(%s, scheduled => false)", (job,))
            for attempt in itertools.count():
                try:
                    conn.execute("CALL run_job(%s)", (job,))
                    break
                except psycopg.errors.LockNotAvailable:
                    if attempt == 100:
                        raise
                    time.sleep(0.1)


def assert_roll_ups_as_in_plain_mode(url: str) -> None:
    """Each roll-up view reads as the plain mode's view would on the same 1d candles."""
    plain = sql_text(2, StorageMode.PLAIN)
    with psycopg.connect(url) as conn:
        for view in ("candles_1w", "candles_1mo"):
            found = re.search(rf"CREATE VIEW {view} AS\n(.*?);", plain, re.S)
            assert found is not None
            order = " ORDER BY instrument, open_time"
            expected = conn.execute(f"SELECT * FROM ({found.group(1)}) AS p{order}").fetchall()
            assert conn.execute(f"SELECT * FROM {view}{order}").fetchall() == expected, view


def test_the_roll_ups_keep_all_history_through_their_refreshes(timescale_database: str) -> None:
    migrate(timescale_database)
    insert_daily_candles(timescale_database, -400, -1)  # more than either policy's old window
    run_refresh_policies(timescale_database)
    assert_roll_ups_as_in_plain_mode(timescale_database)
    insert_daily_candles(timescale_database, -700, -401)  # a backfill, older than the refresh
    with psycopg.connect(timescale_database) as conn:  # and a revision of an old candle
        conn.execute(
            "UPDATE candles SET high = high + 50, revision = 1 WHERE instrument = 'TEST:ABC'"
            " AND open_time = date_trunc('day', now(), 'UTC') - interval '300 days'"
        )
    run_refresh_policies(timescale_database)
    assert_roll_ups_as_in_plain_mode(timescale_database)


def test_a_timescaledb_database_migrated_before_the_corrections_gets_them(
    timescale_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with migrated_to(timescale_database, 5, monkeypatch, StorageMode.TIMESCALE):
        insert_daily_candles(timescale_database, -400, -1)
        run_refresh_policies(timescale_database)  # the old window: older weeks were lost
    assert migrate(timescale_database).applied == tuple(range(6, latest_version() + 1))
    run_refresh_policies(timescale_database)
    assert_roll_ups_as_in_plain_mode(timescale_database)
    assert tick_indexes(timescale_database) == ["ticks_pkey"]


def tick_indexes(url: str) -> list[str]:
    """The indexes of ``ticks`` and of its chunks, the chunks' under the root's name."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            r"""
            SELECT DISTINCT regexp_replace(i.relname, '^(_hyper_\d+_\d+_chunk_|\d+_)', '')
            FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'ticks'::regclass OR x.indrelid IN (
                SELECT format('%I.%I', chunk_schema, chunk_name)::regclass
                FROM timescaledb_information.chunks
                WHERE hypertable_schema = current_schema() AND hypertable_name = 'ticks')
            ORDER BY 1
            """
        ).fetchall()
    return [name for (name,) in rows]


def test_the_ticks_primary_key_is_their_only_index(timescale_database: str) -> None:
    migrate(timescale_database)
    with psycopg.connect(timescale_database) as conn:
        conn.execute(
            "INSERT INTO ticks (instrument, trade_id, price, size, side, ts_event, ts_recv,"
            " ts_event_ns, ts_recv_ns, trades) SELECT 'TEST:ABC', n, 1, 1, 1,"
            " to_timestamp(n * 86400), to_timestamp(n * 86400), n * 86400 * 10^9,"
            " n * 86400 * 10^9, 1 FROM generate_series(20000, 20003) AS n"
        )  # four days: four chunks
    assert tick_indexes(timescale_database) == ["ticks_pkey"]


def test_timescaledb_in_another_schema_than_the_search_path(postgres_url: str) -> None:
    """The extension in ``public`` and ``search_path`` set to the application's schema in the
    URL: both modes migrate, the TimescaleDB one calling the extension where it is."""
    name = f"mdp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        admin = make_conninfo(postgres_url, dbname=name)
        if not timescale_loadable(admin):
            pytest.skip("TimescaleDB cannot be loaded by this PostgreSQL server")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb SCHEMA public")
            conn.execute("CREATE SCHEMA app; CREATE SCHEMA other")
        for schema, mode in (("app", StorageMode.TIMESCALE), ("other", StorageMode.PLAIN)):
            url = make_conninfo(admin, options=f"-c search_path={schema}")
            assert migrate(url, mode).version == latest_version()
            assert state(url) == (latest_version(), mode)
        app = make_conninfo(admin, options="-c search_path=app")
        insert_daily_candles(app, -60, -1)
        assert_roll_ups_as_in_plain_mode(app)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
