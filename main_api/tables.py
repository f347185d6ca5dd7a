"""The main API's tables (schema ``main_api`` by default; every table is prefixed
``main_api_``) and the pure parts of the SQL shell: rows into views, a firing into its rows.

Alerts carry ``change_seq``, from the sequence ``main_api_change_seq``: every change of an
alert (created, replaced, deleted, fired for good) takes the next number, under one lock
(:data:`CHANGES_LOCK`) held to its commit, so numbers are committed in order and a reader that
has seen ``n`` has seen everything before it (:mod:`main_api.changes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec
from psycopg.rows import DictRow

from core.alerts import AlertFired, AlertSpec, Arming, Condition, Source
from main_api.views import AlertStatus, AlertView, Firing, Notification, Watchlist

NOTIFY_CHANNEL: Final = "main_api_alerts"
"""``NOTIFY``'d with the new ``change_seq`` on each alert change."""
SCHEMA_LOCK: Final = "main_api.schema"
CHANGES_LOCK: Final = "main_api.changes"

DDL: Final = """
CREATE SEQUENCE IF NOT EXISTS main_api_change_seq;
CREATE TABLE IF NOT EXISTS main_api_profiles (
    account bigint PRIMARY KEY, display_name text NOT NULL, time_zone text NOT NULL,
    default_interval text NOT NULL, updated_at bigint NOT NULL);
CREATE TABLE IF NOT EXISTS main_api_watchlists (
    watchlist_id text PRIMARY KEY, account bigint NOT NULL, name text NOT NULL,
    position integer NOT NULL, instruments text[] NOT NULL,
    created_at bigint NOT NULL, updated_at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS main_api_watchlists_account ON main_api_watchlists (account, position);
CREATE TABLE IF NOT EXISTS main_api_alerts (
    alert_id text PRIMARY KEY, seq bigserial UNIQUE, account bigint NOT NULL,
    instrument text NOT NULL, condition text NOT NULL, threshold numeric NOT NULL,
    source text NOT NULL, interval text, window_s integer NOT NULL, arming text NOT NULL,
    cooldown_s integer NOT NULL, expires_at bigint, status text NOT NULL,
    created_at bigint NOT NULL, updated_at bigint NOT NULL, change_seq bigint NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS main_api_alerts_account ON main_api_alerts (account, seq);
CREATE TABLE IF NOT EXISTS main_api_fired (
    fire_id text PRIMARY KEY, seq bigserial UNIQUE, alert_id text NOT NULL,
    account bigint NOT NULL, instrument text NOT NULL, condition text NOT NULL,
    threshold numeric NOT NULL, price numeric NOT NULL, ts bigint NOT NULL, trade_id bigint,
    candle_open_time bigint, gap boolean NOT NULL, recorded_at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS main_api_fired_alert ON main_api_fired (account, alert_id, seq);
CREATE TABLE IF NOT EXISTS main_api_notifications (
    fire_id text PRIMARY KEY, seq bigserial UNIQUE, account bigint NOT NULL,
    alert_id text NOT NULL, instrument text NOT NULL, condition text NOT NULL,
    threshold numeric NOT NULL, price numeric NOT NULL, ts bigint NOT NULL,
    gap boolean NOT NULL, read_at bigint, created_at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS main_api_notifications_account
    ON main_api_notifications (account, seq);
CREATE INDEX IF NOT EXISTS main_api_notifications_unread
    ON main_api_notifications (account) WHERE read_at IS NULL;
CREATE TABLE IF NOT EXISTS main_api_evaluator_states (
    owner text NOT NULL, topic text NOT NULL, partition integer NOT NULL, epoch bigint NOT NULL,
    next_offset bigint NOT NULL, change_seq bigint NOT NULL, snapshot bytea,
    updated_at bigint NOT NULL, PRIMARY KEY (owner, topic, partition));
CREATE TABLE IF NOT EXISTS main_api_evaluator_rows (
    owner text NOT NULL, topic text NOT NULL, partition integer NOT NULL, kind text NOT NULL,
    id text NOT NULL, data bytea NOT NULL, PRIMARY KEY (owner, topic, partition, kind, id))
    WITH (fillfactor = 50);
CREATE TABLE IF NOT EXISTS main_api_relay (name text PRIMARY KEY, seq bigint NOT NULL);
"""

NOTIFICATION_COLUMNS: Final = (
    "fire_id", "account", "alert_id", "instrument", "condition", "threshold", "price", "ts",
    "gap", "created_at",
)  # fmt: skip


STATUS_NOW: Final = (
    "CASE WHEN status = 'active' AND expires_at IS NOT NULL AND expires_at <= %(now)s"
    " THEN 'expired' ELSE status END"
)
"""An alert's status as read at ``now``: an active alert past ``expires_at`` is expired."""


def spec_of(row: DictRow) -> AlertSpec:
    return AlertSpec(
        alert_id=row["alert_id"], account=row["account"], instrument=row["instrument"],
        condition=Condition(row["condition"]), threshold=Decimal(row["threshold"]),
        source=Source(row["source"]), interval=row["interval"], window_s=row["window_s"],
        arming=Arming(row["arming"]), cooldown_s=row["cooldown_s"], expires_at=row["expires_at"],
    )  # fmt: skip


def alert_of(row: DictRow) -> AlertView:
    """A row read with its status as ``status_now``."""
    return AlertView.of(
        spec_of(row), AlertStatus(row["status_now"]), row["created_at"], row["updated_at"]
    )


def alert_params(spec: AlertSpec) -> dict[str, Any]:
    return {
        "alert_id": spec.alert_id, "account": spec.account, "instrument": spec.instrument,
        "condition": spec.condition.value, "threshold": spec.threshold,
        "source": spec.source.value, "interval": spec.interval, "window_s": spec.window_s,
        "arming": spec.arming.value, "cooldown_s": spec.cooldown_s, "expires_at": spec.expires_at,
    }  # fmt: skip


def watchlist_of(row: DictRow) -> Watchlist:
    return Watchlist(
        watchlist_id=row["watchlist_id"], name=row["name"], instruments=list(row["instruments"]),
        position=row["position"], created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


def firing_of(row: DictRow) -> Firing:
    return Firing(
        seq=row["seq"], fire_id=row["fire_id"], alert_id=row["alert_id"],
        instrument=row["instrument"], condition=Condition(row["condition"]),
        threshold=row["threshold"], price=row["price"], ts=row["ts"], trade_id=row["trade_id"],
        candle_open_time=row["candle_open_time"], gap=row["gap"],
    )  # fmt: skip


def notification_of(row: DictRow) -> Notification:
    return Notification(
        seq=row["seq"], fire_id=row["fire_id"], alert_id=row["alert_id"],
        instrument=row["instrument"], condition=Condition(row["condition"]),
        threshold=row["threshold"], price=row["price"], ts=row["ts"], gap=row["gap"],
        read=row["read_at"] is not None, read_at=row["read_at"],
    )  # fmt: skip


def fired_of(row: DictRow) -> AlertFired:
    """The firing a ``main_api_fired`` row keeps."""
    return AlertFired(
        fire_id=row["fire_id"], alert_id=row["alert_id"], account=row["account"],
        instrument=row["instrument"], condition=Condition(row["condition"]),
        threshold=Decimal(row["threshold"]), price=Decimal(row["price"]), ts=row["ts"],
        trade_id=row["trade_id"], candle_open_time=row["candle_open_time"], gap=row["gap"],
    )  # fmt: skip


FIRED_COLUMNS: Final = (
    "fire_id", "alert_id", "account", "instrument", "condition", "threshold", "price", "ts",
    "trade_id", "candle_open_time", "gap", "recorded_at",
)  # fmt: skip
# The columns a firing's document fills (each an :class:`AlertFired` field of that name, read
# back as this SQL type); the last, ``recorded_at``, is the statement's own ``%(now)s``.
_FIRED_FIELDS: Final = FIRED_COLUMNS[:-1]
_FIRED_TYPES: Final = (
    "text", "text", "bigint", "text", "text", "numeric", "numeric", "bigint", "bigint", "bigint",
    "boolean",
)  # fmt: skip
_json: Final = msgspec.json.Encoder(decimal_format="string")


def firings_document(events: Sequence[AlertFired]) -> str:
    """The fired rows of ``events`` (their :class:`AlertFired` fields, named as the
    ``main_api_fired`` columns bar ``recorded_at``) as one JSON array, in order, for
    :data:`FIRINGS_RECORD`; a ``fire_id`` repeated in ``events`` is kept once (its first).
    One parameter the server takes apart, rather than an array per column built and sent
    value by value (a storm's round holds thousands)."""
    firsts: dict[str, AlertFired] = {}
    for event in events:
        firsts.setdefault(event.fire_id, event)
    return _json.encode(list(firsts.values())).decode()


_FIELDS: Final = ", ".join(
    f"(e.doc ->> '{name}')::{kind}" for name, kind in zip(_FIRED_FIELDS, _FIRED_TYPES, strict=True)
)
_NOTIFIED: Final = ", ".join(NOTIFICATION_COLUMNS[:-1])
FIRINGS_RECORD: Final = (
    "WITH f AS (INSERT INTO main_api_fired (" + ", ".join(FIRED_COLUMNS) + ") SELECT "
    + _FIELDS + ", %(now)s FROM jsonb_array_elements(%(firings)s::jsonb) WITH ORDINALITY"
    " AS e(doc, n) ORDER BY e.n ON CONFLICT DO NOTHING RETURNING seq, "
    + ", ".join(FIRED_COLUMNS) + "),"
    " n AS (INSERT INTO main_api_notifications (" + _NOTIFIED + ", created_at) SELECT "
    + _NOTIFIED + ", recorded_at FROM f ORDER BY seq ON CONFLICT DO NOTHING),"
    " o AS (UPDATE main_api_alerts AS a SET status = 'fired', updated_at = %(now)s,"
    " change_seq = nextval('main_api_change_seq') FROM f"
    " WHERE a.alert_id = ANY(ARRAY(SELECT alert_id FROM f)) AND a.alert_id = f.alert_id"
    " AND a.account = f.account AND a.status = 'active' AND a.arming = %(once)s"
    " RETURNING a.change_seq)"
    " SELECT f.seq, f.fire_id, EXISTS (SELECT FROM main_api_webhooks AS w"
    " WHERE w.account = f.account) AS hooked, (SELECT max(change_seq) FROM o) AS changed,"
    " (SELECT coalesce(max(seq), 0) FROM main_api_fired) AS after FROM f ORDER BY f.seq"
)  # fmt: skip
"""A round's firings in one statement, with the parameters ``firings``
(:func:`firings_document`), ``now`` and ``once``: the fired rows, ``seq`` in their order (a
``fire_id`` already there is dropped), and for the new ones only their notifications and the
end of the ``once`` alerts among them (each a change of the feed). One row per new firing, in
``seq`` order: its ``seq`` and ``fire_id``, whether its account has a webhook endpoint
(``hooked``), the last change number taken (``changed``, NULL when no alert ended) and the
highest ``seq`` committed before the statement (``after``: the statement's snapshot does not
see its own rows, and the change feed's lock, held, keeps every other writer out)."""
