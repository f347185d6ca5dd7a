"""The webhooks' tables and SQL (made with the main API's others, :func:`main_api.store.
create_tables`), and rows into views.

``main_api_webhooks``: an account's endpoints, each with its secret (kept to sign with; it is
shown once, when made or rotated, and never logged) and, after a rotation, the previous
secret until ``previous_until``. ``main_api_webhook_deliveries``: one row per firing and
endpoint (primary key ``(fire_id, webhook_id)``), inserted in the transaction that records the
firing (:data:`ENQUEUE`, set-wise: a round's firings at once), so a firing recorded once is
enqueued once.
"""

from __future__ import annotations

from typing import Final

import msgspec
from psycopg.rows import DictRow

from main_api.webhooks.schedule import DeliveryState
from main_api.webhooks.views import Delivery, Webhook

CHANNEL: Final = "main_api_webhooks"
"""``NOTIFY``'d when deliveries become due now (enqueued or replayed)."""

DDL: Final = """
CREATE TABLE IF NOT EXISTS main_api_webhooks (
    webhook_id text PRIMARY KEY, seq bigserial UNIQUE, account bigint NOT NULL,
    url text NOT NULL, secret text NOT NULL, previous_secret text, previous_until bigint,
    created_at bigint NOT NULL, updated_at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS main_api_webhooks_account ON main_api_webhooks (account, seq);
CREATE TABLE IF NOT EXISTS main_api_webhook_deliveries (
    fire_id text NOT NULL,
    webhook_id text NOT NULL REFERENCES main_api_webhooks ON DELETE CASCADE,
    seq bigserial UNIQUE, account bigint NOT NULL, body bytea NOT NULL, state text NOT NULL,
    attempts integer NOT NULL, next_at bigint, last_status integer, last_error text,
    replays integer NOT NULL DEFAULT 0, created_at bigint NOT NULL, updated_at bigint NOT NULL,
    delivered_at bigint, PRIMARY KEY (fire_id, webhook_id));
CREATE INDEX IF NOT EXISTS main_api_webhook_deliveries_due
    ON main_api_webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS main_api_webhook_deliveries_account
    ON main_api_webhook_deliveries (account, state, seq);
"""

ENQUEUE: Final = (
    "INSERT INTO main_api_webhook_deliveries (fire_id, webhook_id, account, body, state,"
    " attempts, next_at, created_at, updated_at) SELECT e.fire_id, w.webhook_id, w.account,"
    " e.body, 'pending', 0, %(now)s, %(now)s, %(now)s FROM unnest(%(fire_ids)s::text[],"
    " %(accounts)s::bigint[], %(bodies)s::bytea[]) WITH ORDINALITY AS e(fire_id, account, body, n)"
    " JOIN main_api_webhooks AS w ON w.account = e.account ORDER BY e.n, w.seq"
    " ON CONFLICT DO NOTHING"
)
"""The deliveries of a round's new firings (``fire_ids`` with their ``accounts`` and webhook
``bodies``), one per endpoint each account has, in the firings' transaction."""

CLAIM: Final = (
    "UPDATE main_api_webhook_deliveries AS d SET attempts = d.attempts + 1,"
    " next_at = %(lease_until)s, updated_at = %(now)s FROM main_api_webhooks AS w"
    " WHERE w.webhook_id = d.webhook_id AND (d.fire_id, d.webhook_id) IN ("
    "  SELECT fire_id, webhook_id FROM main_api_webhook_deliveries"
    "  WHERE state = 'pending' AND next_at <= %(now)s ORDER BY next_at LIMIT %(limit)s"
    "  FOR UPDATE SKIP LOCKED)"
    " RETURNING d.fire_id, d.webhook_id, d.body, d.attempts, w.url, w.secret,"
    " CASE WHEN w.previous_until > %(now)s THEN w.previous_secret END AS previous_secret"
)
"""Take the due deliveries (others' claims are skipped, not waited for): each counts one
more attempt and is held (due again at ``lease_until``) while it is tried."""

FINISH: Final = (
    "UPDATE main_api_webhook_deliveries SET state = %(state)s, next_at = %(next_at)s,"
    " last_status = %(status)s, last_error = %(error)s, updated_at = %(now)s,"
    " delivered_at = CASE WHEN %(state)s = 'delivered' THEN %(now)s END"
    " WHERE fire_id = %(fire_id)s AND webhook_id = %(webhook_id)s"
    " AND attempts = %(attempts)s AND state = 'pending'"
)
"""An attempt's end, unless the delivery moved on meanwhile (its lease ran out and another
attempt took it, or it was replayed)."""

REPLAY: Final = (
    "UPDATE main_api_webhook_deliveries SET state = 'pending', attempts = 0,"
    " next_at = %(now)s, replays = replays + 1, updated_at = %(now)s"
    " WHERE account = %(account)s AND state = 'dead'"
    " AND (%(webhook_id)s::text IS NULL OR webhook_id = %(webhook_id)s)"
    " AND (%(fire_id)s::text IS NULL OR fire_id = %(fire_id)s) RETURNING *"
)


def webhook_of(row: DictRow) -> Webhook:
    return Webhook(
        webhook_id=row["webhook_id"], url=row["url"], created_at=row["created_at"],
        updated_at=row["updated_at"], previous_secret_until=row["previous_until"],
    )  # fmt: skip


def delivery_of(row: DictRow) -> Delivery:
    return Delivery(
        seq=row["seq"], webhook_id=row["webhook_id"], fire_id=row["fire_id"],
        state=DeliveryState(row["state"]), attempts=row["attempts"],
        next_at=row["next_at"] if row["state"] == DeliveryState.PENDING else None,
        last_status=row["last_status"], last_error=row["last_error"], replays=row["replays"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        delivered_at=row["delivered_at"], event=msgspec.Raw(bytes(row["body"])),
    )  # fmt: skip
