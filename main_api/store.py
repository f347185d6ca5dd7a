"""The SQL shell of the main API: one async psycopg pool, every query naming its account.

An account's id is in every ``WHERE``: another account's watchlist, alert or notification is
not found (404), never shown or changed. Writes that check a plan's limit run in one
transaction under the account's advisory lock, so two requests at once cannot both pass the
last free place. A database that cannot be reached, or a connection not had within ``wait``
seconds, is :class:`~main_api.errors.StoreUnavailableError` (503); the pool checks a connection
before handing it out, so the first request after the database is back succeeds.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.alerts import AlertFired, AlertSpec, Arming
from main_api.errors import ConflictError, NotFoundError, RefusedError, StoreUnavailableError
from main_api.settings import DEFAULT_SCHEMA, PlanLimits
from main_api.tables import (
    CHANGES_LOCK,
    DDL,
    FIRINGS_RECORD,
    NOTIFY_CHANNEL,
    SCHEMA_LOCK,
    STATUS_NOW,
    alert_of,
    alert_params,
    firing_of,
    firings_document,
    notification_of,
    watchlist_of,
)
from main_api.views import AlertView, Firing, Notification, Profile, Watchlist
from main_api.webhooks import tables as webhook_tables
from main_api.webhooks.event import event_body
from telemetry.pools import pool_watched

Connection = psycopg.AsyncConnection[DictRow]
MAX_PAGE: Final = 500
DEFAULT_PAGE: Final = 100
MAX_KNOWN: Final = 100_000
RECONNECT_TIMEOUT: Final = 5.0
"""Seconds the pool tries to replace a lost connection before it begins again (from its
shortest delay): a database back after an outage is used within seconds."""
STATEMENT_TIMEOUT_MS: Final = 5000
DEFAULT_PROFILE: Final = Profile(display_name="", time_zone="UTC", default_interval="1m")
_UNREACHABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)

_ALERT_SELECT: Final = "SELECT *, " + STATUS_NOW + " AS status_now FROM main_api_alerts"
_ACTIVE_COUNT: Final = (
    "SELECT count(*) AS n FROM main_api_alerts WHERE account = %(account)s"
    " AND alert_id <> %(alert_id)s AND " + STATUS_NOW + " = 'active'"
)


def new_id(prefix: str) -> str:
    """A fresh id the server assigns (``w-…`` for watchlists, ``a-…`` for alerts)."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


class MainStore:
    """The main API's reads and writes on ``pool`` (its connections' ``search_path`` starts
    with the schema: :meth:`open` makes such a pool)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Connection],
        *,
        wait: float = 2.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._pool = pool
        self._wait = wait
        self.clock = clock
        self._known: set[str] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        schema: str = DEFAULT_SCHEMA,
        *,
        max_size: int = 8,
        timeout: float = 10.0,
        wait: float = 2.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> AsyncIterator[MainStore]:
        """The store on a pool of its own, its tables made if missing, open for the block."""
        await create_tables(url, schema, timeout)
        pool = schema_pool(url, schema, max_size=max_size, timeout=timeout, name="main-api")
        await pool.open(wait=True, timeout=timeout)
        try:
            with pool_watched(pool):
                yield cls(pool, wait=wait, clock=clock)
        finally:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.connection(timeout=self._wait) as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise StoreUnavailableError(f"the main API's database: {exc}") from None

    @contextlib.asynccontextmanager
    async def _locked(self, account: int) -> AsyncIterator[Connection]:
        """A transaction holding ``account``'s lock."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('main_api.account:' || %s, 0))",
                (str(account),),
            )
            yield conn

    async def _rows(self, query: LiteralString, params: Any) -> list[DictRow]:
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    # the same, for the stores built on this one (main_api.webhooks.store)
    connection = _connection
    locked = _locked
    rows = _rows

    async def ping(self) -> None:
        """Return when the database answers (:class:`StoreUnavailableError` when not)."""
        await self._rows("SELECT 1", ())

    async def has_instrument(self, instrument: str) -> bool:
        """Whether the platform has ``instrument``: a row in the storage's ``instruments``
        table, in the same database (instruments are never removed, so a yes is kept)."""
        if instrument in self._known:
            return True
        try:
            rows = await self._rows(
                "SELECT 1 FROM instruments WHERE instrument = %s", (instrument,)
            )
        except psycopg.errors.UndefinedTable:
            raise StoreUnavailableError(
                "the database has no instruments table (run mdp db migrate)"
            ) from None
        if rows and len(self._known) < MAX_KNOWN:
            self._known.add(instrument)
        return bool(rows)

    # -- profile ----------------------------------------------------------------------------

    async def profile(self, account: int) -> Profile:
        """The account's profile (the defaults until it is first set)."""
        rows = await self._rows("SELECT * FROM main_api_profiles WHERE account = %s", (account,))
        if not rows:
            return DEFAULT_PROFILE
        row = rows[0]
        return Profile(display_name=row["display_name"], time_zone=row["time_zone"],
                       default_interval=row["default_interval"])  # fmt: skip

    async def put_profile(self, account: int, changes: dict[str, str]) -> Profile:
        """The profile with ``changes`` (checked) applied; the fields not named keep theirs
        (the defaults on the first write)."""
        rows = await self._rows(
            "INSERT INTO main_api_profiles AS p (account, display_name, time_zone,"
            " default_interval, updated_at) VALUES (%(account)s,"
            " coalesce(%(display_name)s, %(d_name)s), coalesce(%(time_zone)s, %(d_zone)s),"
            " coalesce(%(default_interval)s, %(d_interval)s), %(now)s)"
            " ON CONFLICT (account) DO UPDATE SET"
            " display_name = coalesce(%(display_name)s, p.display_name),"
            " time_zone = coalesce(%(time_zone)s, p.time_zone),"
            " default_interval = coalesce(%(default_interval)s, p.default_interval),"
            " updated_at = excluded.updated_at RETURNING *",
            {"account": account, "display_name": changes.get("display_name"),
             "time_zone": changes.get("time_zone"),
             "default_interval": changes.get("default_interval"),
             "d_name": DEFAULT_PROFILE.display_name, "d_zone": DEFAULT_PROFILE.time_zone,
             "d_interval": DEFAULT_PROFILE.default_interval, "now": self.clock()},
        )  # fmt: skip
        row = rows[0]
        return Profile(display_name=row["display_name"], time_zone=row["time_zone"],
                       default_interval=row["default_interval"])  # fmt: skip

    # -- watchlists -------------------------------------------------------------------------

    async def watchlists(self, account: int) -> list[Watchlist]:
        """The account's watchlists in their order."""
        rows = await self._rows(
            "SELECT * FROM main_api_watchlists WHERE account = %s"
            " ORDER BY position, created_at LIMIT 1000",
            (account,),
        )
        return [watchlist_of(row) for row in rows]

    async def watchlist(self, account: int, watchlist_id: str) -> Watchlist:
        rows = await self._rows(
            "SELECT * FROM main_api_watchlists WHERE account = %s AND watchlist_id = %s",
            (account, watchlist_id),
        )
        if not rows:
            raise _no_watchlist(watchlist_id)
        return watchlist_of(rows[0])

    async def create_watchlist(
        self, account: int, name: str, instruments: list[str], limits: PlanLimits, plan: str
    ) -> Watchlist:
        """A new watchlist, last in the order, if the plan allows one more (its instruments
        are checked: :meth:`main_api.app._Api.check_instruments`)."""
        async with self._locked(account) as conn:
            cursor = await conn.execute(
                "SELECT count(*) AS n, coalesce(max(position) + 1, 0) AS next"
                " FROM main_api_watchlists WHERE account = %s",
                (account,),
            )
            counted = await cursor.fetchone()
            assert counted is not None
            if counted["n"] >= limits.watchlists:
                raise RefusedError(
                    "plan-limit", "watchlists",
                    f"the {plan} plan allows {limits.watchlists} watchlists",
                    limit=limits.watchlists, plan=plan,
                )  # fmt: skip
            now = self.clock()
            cursor = await conn.execute(
                "INSERT INTO main_api_watchlists (watchlist_id, account, name, position,"
                " instruments, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " RETURNING *",
                (new_id("w"), account, name, counted["next"], instruments, now, now),
            )
            row = await cursor.fetchone()
            assert row is not None
            return watchlist_of(row)

    async def update_watchlist(
        self,
        account: int,
        watchlist_id: str,
        *,
        name: str | None,
        instruments: list[str] | None,
    ) -> Watchlist:
        """Rename the watchlist, or set its instruments (checked, in the order given), or
        both."""
        rows = await self._rows(
            "UPDATE main_api_watchlists SET name = coalesce(%(name)s, name),"
            " instruments = coalesce(%(instruments)s, instruments), updated_at = %(now)s"
            " WHERE account = %(account)s AND watchlist_id = %(id)s RETURNING *",
            {"name": name, "instruments": instruments, "now": self.clock(), "account": account,
             "id": watchlist_id},
        )  # fmt: skip
        if not rows:
            raise _no_watchlist(watchlist_id)
        return watchlist_of(rows[0])

    async def reorder_watchlists(self, account: int, order: list[str]) -> list[Watchlist]:
        """The watchlists in ``order``, which must name each of the account's exactly once."""
        async with self._locked(account) as conn:
            cursor = await conn.execute(
                "SELECT watchlist_id FROM main_api_watchlists WHERE account = %s", (account,)
            )
            held = {row["watchlist_id"] for row in await cursor.fetchall()}
            unknown = [item for item in order if item not in held]
            if unknown:
                raise _no_watchlist(unknown[0], "order")
            if len(order) != len(held):
                raise ConflictError(
                    "incomplete-order", "order", "the order must list every watchlist once"
                )
            await conn.execute(
                "UPDATE main_api_watchlists AS w SET position = o.position - 1, updated_at = %s"
                " FROM unnest(%s::text[]) WITH ORDINALITY AS o(watchlist_id, position)"
                " WHERE w.account = %s AND w.watchlist_id = o.watchlist_id",
                (self.clock(), order, account),
            )
        return await self.watchlists(account)

    async def delete_watchlist(self, account: int, watchlist_id: str) -> None:
        rows = await self._rows(
            "DELETE FROM main_api_watchlists WHERE account = %s AND watchlist_id = %s"
            " RETURNING watchlist_id",
            (account, watchlist_id),
        )
        if not rows:
            raise _no_watchlist(watchlist_id)

    # -- alerts -----------------------------------------------------------------------------

    async def alerts(
        self, account: int, *, status: str | None, limit: int, after: int
    ) -> tuple[list[AlertView], int | None]:
        """A page of the account's alerts, oldest first (``status``: only those; without it,
        all but the deleted), and the cursor of the next page."""
        rows = await self._rows(
            _ALERT_SELECT + " WHERE account = %(account)s AND seq > %(after)s"
            " AND (" + STATUS_NOW + " = %(status)s OR (%(status)s IS NULL"
            " AND status <> 'deleted')) ORDER BY seq LIMIT %(limit)s",
            {"account": account, "after": after, "limit": limit, "status": status,
             "now": self.clock()},
        )  # fmt: skip
        return [alert_of(row) for row in rows], rows[-1]["seq"] if len(rows) == limit else None

    async def alert(self, account: int, alert_id: str) -> AlertView:
        """One of the account's alerts (a deleted one too: its history stays readable)."""
        rows = await self._rows(
            _ALERT_SELECT + " WHERE account = %(account)s AND alert_id = %(id)s",
            {"account": account, "id": alert_id, "now": self.clock()},
        )
        if not rows:
            raise _no_alert(alert_id)
        return alert_of(rows[0])

    async def create_alert(self, spec: AlertSpec, limits: PlanLimits, plan: str) -> AlertView:
        """Keep ``spec`` (its id fresh), active, if the plan allows one more active alert."""
        async with self._locked(spec.account) as conn:
            await self._check_alerts(conn, spec, limits, plan)
            now = self.clock()
            await _change(conn)
            cursor = await conn.execute(
                "INSERT INTO main_api_alerts (alert_id, account, instrument, condition,"
                " threshold, source, interval, window_s, arming, cooldown_s, expires_at, status,"
                " created_at, updated_at, change_seq) VALUES (%(alert_id)s, %(account)s,"
                " %(instrument)s, %(condition)s, %(threshold)s, %(source)s, %(interval)s,"
                " %(window_s)s, %(arming)s, %(cooldown_s)s, %(expires_at)s, 'active', %(now)s,"
                " %(now)s, nextval('main_api_change_seq')) RETURNING *, 'active' AS status_now",
                {**alert_params(spec), "now": now},
            )
            row = await cursor.fetchone()
            assert row is not None
            await _notify(conn, row["change_seq"])
            return alert_of(row)

    async def replace_alert(self, spec: AlertSpec, limits: PlanLimits, plan: str) -> AlertView:
        """Replace what the alert asks (active again, a new arming); 404 for a deleted one."""
        async with self._locked(spec.account) as conn:
            await self._check_alerts(conn, spec, limits, plan)
            await _change(conn)
            cursor = await conn.execute(
                "UPDATE main_api_alerts SET instrument = %(instrument)s,"
                " condition = %(condition)s, threshold = %(threshold)s, source = %(source)s,"
                " interval = %(interval)s, window_s = %(window_s)s, arming = %(arming)s,"
                " cooldown_s = %(cooldown_s)s, expires_at = %(expires_at)s, status = 'active',"
                " updated_at = %(now)s, change_seq = nextval('main_api_change_seq')"
                " WHERE account = %(account)s AND alert_id = %(alert_id)s"
                " AND status <> 'deleted' RETURNING *, 'active' AS status_now",
                {**alert_params(spec), "now": self.clock()},
            )
            row = await cursor.fetchone()
            if row is None:
                raise _no_alert(spec.alert_id)
            await _notify(conn, row["change_seq"])
            return alert_of(row)

    async def delete_alert(self, account: int, alert_id: str) -> None:
        """Mark the alert deleted (a change the evaluator follows); 404 if it already is."""
        async with self._locked(account) as conn:
            await _change(conn)
            cursor = await conn.execute(
                "UPDATE main_api_alerts SET status = 'deleted', updated_at = %s,"
                " change_seq = nextval('main_api_change_seq')"
                " WHERE account = %s AND alert_id = %s AND status <> 'deleted'"
                " RETURNING change_seq",
                (self.clock(), account, alert_id),
            )
            row = await cursor.fetchone()
            if row is None:
                raise _no_alert(alert_id)
            await _notify(conn, row["change_seq"])

    async def _check_alerts(
        self, conn: Connection, spec: AlertSpec, limits: PlanLimits, plan: str
    ) -> None:
        cursor = await conn.execute(
            _ACTIVE_COUNT,
            {"account": spec.account, "alert_id": spec.alert_id, "now": self.clock()},
        )
        counted = await cursor.fetchone()
        assert counted is not None
        if counted["n"] >= limits.alerts:
            raise RefusedError(
                "plan-limit", "alerts", f"the {plan} plan allows {limits.alerts} active alerts",
                limit=limits.alerts, plan=plan,
            )  # fmt: skip

    async def fired(self, account: int, alert_id: str, limit: int, after: int) -> list[Firing]:
        """The alert's firings, oldest first (404 if the account has no such alert)."""
        await self.alert(account, alert_id)
        rows = await self._rows(
            "SELECT * FROM main_api_fired WHERE account = %s AND alert_id = %s AND seq > %s"
            " ORDER BY seq LIMIT %s",
            (account, alert_id, after, limit),
        )
        return [firing_of(row) for row in rows]

    # -- notifications ----------------------------------------------------------------------

    async def notifications(
        self, account: int, *, unread: bool, limit: int, before: int | None
    ) -> tuple[list[Notification], int]:
        """A page of the account's notifications, newest first, and how many are unread."""
        rows = await self._rows(
            "SELECT * FROM main_api_notifications WHERE account = %(account)s"
            " AND (%(before)s::bigint IS NULL OR seq < %(before)s)"
            " AND (NOT %(unread)s OR read_at IS NULL) ORDER BY seq DESC LIMIT %(limit)s",
            {"account": account, "before": before, "unread": unread, "limit": limit},
        )
        counted = await self._rows(
            "SELECT count(*) AS n FROM main_api_notifications"
            " WHERE account = %s AND read_at IS NULL",
            (account,),
        )
        return [notification_of(row) for row in rows], int(counted[0]["n"])

    async def mark_read(self, account: int, fire_id: str) -> Notification:
        """Mark one notification read (again: nothing changes)."""
        rows = await self._rows(
            "UPDATE main_api_notifications SET read_at = coalesce(read_at, %s)"
            " WHERE account = %s AND fire_id = %s RETURNING *",
            (self.clock(), account, fire_id),
        )
        if not rows:
            raise NotFoundError("unknown-notification", "fire_id", f"no notification {fire_id}")
        return notification_of(rows[0])

    async def mark_all_read(self, account: int) -> int:
        """Mark every unread notification read; how many were."""
        rows = await self._rows(
            "UPDATE main_api_notifications SET read_at = %s"
            " WHERE account = %s AND read_at IS NULL RETURNING fire_id",
            (self.clock(), account),
        )
        return len(rows)

    # -- firings ----------------------------------------------------------------------------

    async def record_firing(self, event: AlertFired) -> bool:
        """Keep ``event``'s fired row and its notification, once: a repeat of its ``fire_id``
        (a replay, a second evaluator) changes nothing. A ``once`` alert that fired is over
        (status ``fired``, a change the evaluators follow). Its webhook deliveries, one per
        endpoint of the account, are enqueued in the same transaction. Whether it was new."""
        async with self.transaction() as conn:
            return bool(await record_firings_in(conn, [event], self.clock()))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection in a transaction, committed at the end of the block (the alert
        evaluator's rounds: its state and its firings together)."""
        async with self._connection() as conn, conn.transaction():
            yield conn

    # -- the change feed --------------------------------------------------------------------

    async def changed_rows(self, seq: int, limit: int) -> list[DictRow]:
        """Alerts whose last change is numbered after ``seq``, in that order."""
        return await self._rows(
            "SELECT * FROM main_api_alerts WHERE change_seq > %s ORDER BY change_seq LIMIT %s",
            (seq, limit),
        )


def schema_pool(
    url: str, schema: str, *, max_size: int, timeout: float, name: str
) -> AsyncConnectionPool[Connection]:
    """A pool, not yet open, of autocommit connections with dict rows whose ``search_path``
    starts with ``schema`` and whose statements time out, each checked before it is lent."""

    async def configure(conn: Connection) -> None:
        await conn.execute(
            "SELECT set_config('search_path', quote_ident(%s) || ', '"
            " || current_setting('search_path'), false),"
            " set_config('statement_timeout', %s, false)",
            (schema, str(STATEMENT_TIMEOUT_MS)),
        )

    return AsyncConnectionPool(
        url, min_size=1, max_size=max_size, open=False,
        kwargs={"autocommit": True, "row_factory": dict_row}, configure=configure,
        check=AsyncConnectionPool.check_connection, timeout=timeout, name=name,
        reconnect_timeout=RECONNECT_TIMEOUT,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :func:`record_firings` recorded: the firings new to the database, each with its
    ``seq``, in ``seq`` order (a ``fire_id`` already there is left out), and the highest
    ``seq`` committed before them (``after``; 0 when none). Under the change feed's lock no
    other row comes between: ``(after, new[-1] seq]`` are these rows and no others."""

    new: list[tuple[int, AlertFired]] = field(default_factory=list)
    after: int = 0


async def record_firings_in(
    conn: Connection, events: Sequence[AlertFired], now_ns: int
) -> list[str]:
    """:func:`record_firings`, the ``fire_id`` of each firing new to the database, in order."""
    return [event.fire_id for _, event in (await record_firings(conn, events, now_ns)).new]


async def record_firings(conn: Connection, events: Sequence[AlertFired], now_ns: int) -> Recorded:
    """Record ``events`` (a round's firings, or one: :meth:`MainStore.record_firing`) in the
    caller's transaction ``conn``, set-wise: one statement (:data:`FIRINGS_RECORD`) keeps the
    fired rows, keyed by ``fire_id`` (a repeat, from a replay or another evaluator, is
    dropped), and for the new ones only their notifications and the end of the ``once``
    alerts among them; then the webhook deliveries of the new firings whose account has an
    endpoint (their bodies built for those only), one statement when there are any. The
    change feed's lock is taken once, first, so fired rows' ``seq`` commit in order too (the
    relay to ``alerts.events`` reads them by ``seq``). What it recorded (:class:`Recorded`):
    the evaluator hands the new firings to the relay once the transaction has committed."""
    if not events:
        return Recorded()
    await _change(conn)
    params = {"firings": firings_document(events), "now": now_ns, "once": Arming.ONCE.value}
    rows = await (await conn.execute(FIRINGS_RECORD, params)).fetchall()
    if not rows:
        return Recorded()
    firsts: dict[str, AlertFired] = {}
    for event in events:
        firsts.setdefault(event.fire_id, event)
    new = Recorded([(row["seq"], firsts[row["fire_id"]]) for row in rows], rows[0]["after"])
    hooked = [row["fire_id"] for row in rows if row["hooked"]]
    if hooked:
        hooks = {
            "fire_ids": hooked, "accounts": [firsts[fire_id].account for fire_id in hooked],
            "bodies": [event_body(firsts[fire_id], now_ns) for fire_id in hooked], "now": now_ns,
        }  # fmt: skip
        if (await conn.execute(webhook_tables.ENQUEUE, hooks)).rowcount:
            await conn.execute("SELECT pg_notify(%s, '')", (webhook_tables.CHANNEL,))
    changed = rows[0]["changed"]
    if changed is not None:
        await _notify(conn, changed)
    return new


async def _change(conn: Connection) -> None:
    """Take the change feed's lock (to the commit): change numbers commit in order."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (CHANGES_LOCK,))


async def _notify(conn: Connection, seq: int) -> None:
    await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(seq)))


async def create_tables(url: str, schema: str, timeout: float = 10.0) -> None:
    """The schema and its tables, made if missing (several processes at once: one makes
    them)."""
    try:
        connecting = psycopg.AsyncConnection.connect(url, connect_timeout=int(timeout))
        async with await connecting as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (SCHEMA_LOCK,)
            )
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            await conn.execute(
                sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema))
            )
            await conn.execute(DDL)
            await conn.execute(webhook_tables.DDL)
    except _UNREACHABLE as exc:
        raise StoreUnavailableError(f"the main API's database: {exc}") from None


def _no_watchlist(watchlist_id: str, field: str = "watchlist_id") -> NotFoundError:
    return NotFoundError("unknown-watchlist", field, f"no watchlist {watchlist_id[:64]}")


def _no_alert(alert_id: str) -> NotFoundError:
    return NotFoundError("unknown-alert", "alert_id", f"no alert {alert_id[:64]}")
