"""The auth service's tables (``storage/migrations/0007_auth.sql``) through psycopg 3.

Each method is one transaction. A database that is away (stopped, restarting, unreachable,
no connection free within ``wait`` seconds) raises
:class:`~storage.unavailable.DatabaseUnavailableError`, which the app answers with 503; the
pool replaces dead connections by itself, so the first call after the database is back
succeeds. Revocations are written in the transaction of the change they record
(``auth_revocations``, the outbox of ``auth.events``).

Times cross this module as UNIX seconds (ints) and are stored as ``timestamptz``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from auth.families import FamilyPolicy, Outcome, RefreshFamily
from auth.signing import SigningKey
from core.auth_events import AuthEvent, EventKind
from core.secrets import Secret
from storage.unavailable import unavailable_as_error
from telemetry.pools import pool_watched

Connection = psycopg.AsyncConnection[dict[str, Any]]

DEFAULT_WAIT: Final = 5.0
"""Seconds a call waits for a live connection before the database counts as unavailable."""
RECONNECT_TIMEOUT: Final = 5.0
"""Seconds the pool tries to replace a lost connection before it gives that attempt up."""
_EPOCH: Final = "extract(epoch FROM {})::bigint"


class AccountExistsError(Exception):
    """An account with this email exists already."""


@dataclass(frozen=True, slots=True)
class Account:
    account_id: int
    email: str
    password_hash: str
    plan: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never its secret. ``secret_hash`` stays inside the service."""

    key_id: str
    account_id: int
    name: str
    scopes: tuple[str, ...]
    secret_hash: bytes
    created_at: int
    rotated_at: int | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class Revocation:
    """What to record on ``auth_revocations`` (and publish on ``auth.events``)."""

    kind: EventKind
    subject: str
    account_id: int
    until: int
    reason: str = ""
    plan: str | None = None


_ACCOUNT: Final = "account_id, email, password_hash, plan, disabled_at IS NOT NULL AS disabled"
_KEY: Final = f"""key_id, account_id, name, scopes, secret_hash,
    {_EPOCH.format("created_at")} AS created_at, {_EPOCH.format("rotated_at")} AS rotated_at,
    revoked_at IS NOT NULL AS revoked"""
_FAMILY: Final = f"""family_id, account_id, current_hash, revoked,
    {_EPOCH.format("started_at")} AS started_at,
    {_EPOCH.format("token_expires_at")} AS token_expires_at,
    {_EPOCH.format("family_expires_at")} AS family_expires_at"""
_SIGNING: Final = f"""kid, private_pem, public_pem, {_EPOCH.format("created_at")} AS created_at,
    {_EPOCH.format("signs_from")} AS signs_from, {_EPOCH.format("retired_at")} AS retired_at"""


class AuthStore:
    """Open with :meth:`open`; it owns its pool for the ``async with`` block."""

    def __init__(self, pool: AsyncConnectionPool[Connection], wait: float) -> None:
        self._pool = pool
        self._wait = wait

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, *, max_size: int = 4, timeout: float = 30.0, wait: float = DEFAULT_WAIT
    ) -> AsyncIterator[AuthStore]:
        """``timeout`` bounds the opening (the database must answer then); afterwards a call
        that gets no live connection within ``wait`` seconds raises
        :class:`DatabaseUnavailableError`."""
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url, min_size=1, max_size=max_size, open=False, timeout=wait, name="auth",
            kwargs={"row_factory": dict_row, "application_name": "mdp-auth"},
            check=AsyncConnectionPool.check_connection, reconnect_timeout=RECONNECT_TIMEOUT,
        )  # fmt: skip
        with unavailable_as_error():
            await pool.open(wait=True, timeout=timeout)
        try:
            with pool_watched(pool):
                yield cls(pool, wait)
        finally:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        with unavailable_as_error():
            async with self._pool.connection(timeout=self._wait) as conn, conn.transaction():
                yield conn

    async def _one(self, query: Any, params: Any = None) -> dict[str, Any] | None:
        async with self._transaction() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchone()

    async def ping(self) -> None:
        """Raise :class:`DatabaseUnavailableError` unless the database answers."""
        await self._one("SELECT 1")

    # -- accounts -------------------------------------------------------------------------

    async def create_account(self, email: str, password_hash: str, plan: str) -> Account:
        try:
            row = await self._one(
                "INSERT INTO auth_accounts (email, password_hash, plan) VALUES (%s, %s, %s)"
                f" RETURNING {_ACCOUNT}",
                (email, password_hash, plan),
            )
        except psycopg.errors.UniqueViolation:
            raise AccountExistsError(email) from None
        assert row is not None
        return Account(**row)

    async def account_by_email(self, email: str) -> Account | None:
        row = await self._one(f"SELECT {_ACCOUNT} FROM auth_accounts WHERE email = %s", (email,))
        return None if row is None else Account(**row)

    async def account(self, account_id: int) -> Account | None:
        row = await self._one(
            f"SELECT {_ACCOUNT} FROM auth_accounts WHERE account_id = %s", (account_id,)
        )
        return None if row is None else Account(**row)

    async def set_plan(self, email: str, plan: str, until: int) -> Account | None:
        """Move the account to ``plan``; recorded as ``entitlements-changed``."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE auth_accounts SET plan = %s, plan_changed_at = now() WHERE email = %s"
                f" RETURNING {_ACCOUNT}",
                (plan, email),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            account = Account(**row)
            await _record(
                conn,
                Revocation("entitlements-changed", f"account:{account.account_id}",
                           account.account_id, until, "plan changed", plan),
            )  # fmt: skip
            return account

    async def disable_account(self, email: str, until: int) -> Account | None:
        """Disable the account and end its sessions; recorded as ``account-disabled``."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE auth_accounts SET disabled_at = coalesce(disabled_at, now())"
                f" WHERE email = %s RETURNING {_ACCOUNT}",
                (email,),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            account = Account(**row)
            await conn.execute(
                "UPDATE auth_refresh_families SET revoked = 'account disabled'"
                " WHERE account_id = %s AND revoked IS NULL",
                (account.account_id,),
            )
            subject = f"account:{account.account_id}"
            await _record(conn, Revocation("account-disabled", subject, account.account_id, until))
            return account

    # -- refresh-token families -----------------------------------------------------------

    async def start_family(self, family: RefreshFamily) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO auth_refresh_families (family_id, account_id, current_hash,"
                " started_at, token_expires_at, family_expires_at)"
                " VALUES (%s, %s, %s, to_timestamp(%s), to_timestamp(%s), to_timestamp(%s))",
                (family.family_id, family.account_id, family.current_hash, family.started_at,
                 family.token_expires_at, family.family_expires_at),
            )  # fmt: skip
            await _remember_token(conn, family)

    async def use_refresh(
        self, presented: bytes, following: bytes, now: int, policy: FamilyPolicy, until: int
    ) -> tuple[RefreshFamily, Outcome] | None:
        """Hand in a refresh token (its hash): what :meth:`RefreshFamily.use` decides, stored
        (the family's row is locked for the decision); None for a token never issued."""
        async with self._transaction() as conn:
            family = await _family_of(conn, presented)
            if family is None:
                return None
            after, outcome = family.use(presented, following, now, policy)
            if outcome is Outcome.ROTATED:
                await conn.execute(
                    "UPDATE auth_refresh_families SET current_hash = %s,"
                    " token_expires_at = to_timestamp(%s) WHERE family_id = %s",
                    (after.current_hash, after.token_expires_at, after.family_id),
                )
                await _remember_token(conn, after)
            elif outcome is Outcome.REUSED:
                await _revoke_family(conn, after, until)
            return after, outcome

    async def end_family(self, presented: bytes, reason: str, until: int) -> RefreshFamily | None:
        """Revoke the family of a refresh token (a logout); None for a token never issued."""
        async with self._transaction() as conn:
            family = await _family_of(conn, presented)
            if family is None:
                return None
            if family.revoked is None:
                family = family.revoke(reason)
                await _revoke_family(conn, family, until)
            return family

    async def family_live(self, family_id: str) -> bool:
        row = await self._one(
            "SELECT 1 FROM auth_refresh_families WHERE family_id = %s AND revoked IS NULL",
            (family_id,),
        )
        return row is not None

    # -- API keys -------------------------------------------------------------------------

    async def create_key(
        self, account_id: int, key_id: str, name: str, scopes: tuple[str, ...], secret: bytes
    ) -> ApiKey:
        row = await self._one(
            "INSERT INTO auth_api_keys (key_id, account_id, name, scopes, secret_hash)"
            f" VALUES (%s, %s, %s, %s, %s) RETURNING {_KEY}",
            (key_id, account_id, name, list(scopes), secret),
        )
        assert row is not None
        return _api_key(row)

    async def keys(self, account_id: int) -> list[ApiKey]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"SELECT {_KEY} FROM auth_api_keys WHERE account_id = %s ORDER BY created_at",
                (account_id,),
            )
            return [_api_key(row) for row in await cursor.fetchall()]

    async def key(self, key_id: str) -> ApiKey | None:
        row = await self._one(f"SELECT {_KEY} FROM auth_api_keys WHERE key_id = %s", (key_id,))
        return None if row is None else _api_key(row)

    async def rotate_key(self, key_id: str, secret: bytes, account_id: int | None) -> ApiKey | None:
        """A new secret for a live key (of ``account_id`` when given); None when none such."""
        row = await self._one(
            "UPDATE auth_api_keys SET secret_hash = %s, rotated_at = now()"
            " WHERE key_id = %s AND revoked_at IS NULL"
            " AND (%s::bigint IS NULL OR account_id = %s)"
            f" RETURNING {_KEY}",
            (secret, key_id, account_id, account_id),
        )
        return None if row is None else _api_key(row)

    async def revoke_key(self, key_id: str, until: int, account_id: int | None) -> ApiKey | None:
        """Revoke a key (of ``account_id`` when given); recorded as ``key-revoked``."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE auth_api_keys SET revoked_at = coalesce(revoked_at, now())"
                " WHERE key_id = %s AND (%s::bigint IS NULL OR account_id = %s)"
                f" RETURNING {_KEY}",
                (key_id, account_id, account_id),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            key = _api_key(row)
            await _record(conn, Revocation("key-revoked", f"key:{key_id}", key.account_id, until))
            return key

    # -- signing keys ---------------------------------------------------------------------

    async def signing_keys(self) -> list[SigningKey]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"SELECT {_SIGNING} FROM auth_signing_keys ORDER BY created_at DESC"
            )
            return [_signing_key(row) for row in await cursor.fetchall()]

    async def add_signing_key(
        self, make: Callable[[], SigningKey], *, retire_others: bool, forget_before: int
    ) -> SigningKey | None:
        """Store ``make()`` as the signing key. ``retire_others``: a rotation (the live keys
        retire when the new one starts signing); otherwise only when no key is live (the
        first start; None when one is). Keys retired before ``forget_before`` are deleted.
        One writer at a time."""
        async with self._transaction() as conn:
            await conn.execute("LOCK TABLE auth_signing_keys IN SHARE ROW EXCLUSIVE MODE")
            cursor = await conn.execute(
                "SELECT 1 FROM auth_signing_keys WHERE retired_at IS NULL LIMIT 1"
            )
            if not retire_others and await cursor.fetchone() is not None:
                return None
            key = make()
            await conn.execute(
                "UPDATE auth_signing_keys SET retired_at = to_timestamp(%s)"
                " WHERE retired_at IS NULL",
                (key.signs_from,),
            )
            await conn.execute(
                "DELETE FROM auth_signing_keys WHERE retired_at < to_timestamp(%s)",
                (forget_before,),
            )
            await conn.execute(
                "INSERT INTO auth_signing_keys (kid, private_pem, public_pem, created_at,"
                " signs_from) VALUES (%s, %s, %s, to_timestamp(%s), to_timestamp(%s))",
                (key.kid, key.private_pem.reveal(), key.public_pem, key.created_at, key.signs_from),
            )
            return key

    async def prune(self, now: int) -> int:
        """Delete the sessions that can never be used again (expired, or revoked with their
        current token expired; their tokens go with them) and the published revocations
        whose tokens have all expired. Returns how many sessions went."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM auth_refresh_families WHERE family_expires_at < to_timestamp(%s)"
                " OR (revoked IS NOT NULL AND token_expires_at < to_timestamp(%s))",
                (now, now),
            )
            await conn.execute(
                "DELETE FROM auth_revocations WHERE published_at IS NOT NULL"
                " AND until < to_timestamp(%s)",
                (now,),
            )
            return cursor.rowcount

    # -- the outbox of auth.events --------------------------------------------------------

    async def unpublished(self, limit: int = 100) -> list[AuthEvent]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "SELECT revocation_id AS id, kind, subject, account_id, plan, reason,"
                f" {_EPOCH.format('at')} AS at, {_EPOCH.format('until')} AS until"
                " FROM auth_revocations WHERE published_at IS NULL"
                " ORDER BY revocation_id LIMIT %s",
                (limit,),
            )
            return [AuthEvent(**row) for row in await cursor.fetchall()]

    async def mark_published(self, ids: list[int]) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE auth_revocations SET published_at = now() WHERE revocation_id = ANY(%s)",
                (ids,),
            )


async def _record(conn: Connection, revocation: Revocation) -> None:
    await conn.execute(
        "INSERT INTO auth_revocations (kind, subject, account_id, plan, reason, until)"
        " VALUES (%s, %s, %s, %s, %s, to_timestamp(%s))",
        (revocation.kind, revocation.subject, revocation.account_id, revocation.plan,
         revocation.reason, revocation.until),
    )  # fmt: skip
    await conn.execute("NOTIFY auth_revocations")


async def _family_of(conn: Connection, token: bytes) -> RefreshFamily | None:
    cursor = await conn.execute(
        f"SELECT {_FAMILY} FROM auth_refresh_families WHERE family_id ="
        " (SELECT family_id FROM auth_refresh_tokens WHERE token_hash = %s) FOR UPDATE",
        (token,),
    )
    row = await cursor.fetchone()
    return None if row is None else RefreshFamily(**row)


async def _remember_token(conn: Connection, family: RefreshFamily) -> None:
    await conn.execute(
        "INSERT INTO auth_refresh_tokens (token_hash, family_id) VALUES (%s, %s)",
        (family.current_hash, family.family_id),
    )


async def _revoke_family(conn: Connection, family: RefreshFamily, until: int) -> None:
    await conn.execute(
        "UPDATE auth_refresh_families SET revoked = %s WHERE family_id = %s",
        (family.revoked, family.family_id),
    )
    subject = f"session:{family.family_id}"
    await _record(
        conn,
        Revocation("session-revoked", subject, family.account_id, until, family.revoked or ""),
    )


def _api_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(**(row | {"scopes": tuple(row["scopes"])}))


def _signing_key(row: dict[str, Any]) -> SigningKey:
    return SigningKey(**(row | {"private_pem": Secret(row["private_pem"])}))
