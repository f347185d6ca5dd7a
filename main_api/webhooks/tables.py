"""The webhooks' tables and SQL (made with the main API's others, :func:`main_api.store.
create_tables`), and rows into views.

``main_api_webhooks``: an account's endpoints, each with its secret (kept to sign with; it is
shown once, when made or rotated, and never logged) and, after a rotation, the previous
secret until ``previous_until``, and while one of its deliveries is being tried, until when
that attempt holds it (``busy_until``). ``main_api_webhook_deliveries``: one row per firing and
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
    created_at bigint NOT NULL, updated_at bigint NOT NULL, busy_until bigint);
ALTER TABLE main_api_webhooks ADD COLUMN IF NOT EXISTS busy_until bigint;
CREATE INDEX IF NOT EXISTS main_api_webhooks_account ON main_api_webhooks (account, seq);
CREATE INDEX IF NOT EXISTS main_api_webhooks_busy ON main_api_webhooks (busy_until)
    WHERE busy_until IS NOT NULL;
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
CREATE INDEX IF NOT EXISTS main_api_webhook_deliveries_delivered
    ON main_api_webhook_deliveries (delivered_at) WHERE state = 'delivered';
CREATE INDEX IF NOT EXISTS main_api_webhook_deliveries_dead
    ON main_api_webhook_deliveries (updated_at) WHERE state = 'dead';
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
    "WITH due AS ("
    "  SELECT d.fire_id, d.webhook_id, d.next_at, d.seq FROM main_api_webhook_deliveries AS d"
    "  JOIN main_api_webhooks AS w ON w.webhook_id = d.webhook_id"
    "  WHERE d.state = 'pending' AND d.next_at <= %(now)s"
    "  AND (w.busy_until IS NULL OR w.busy_until <= %(now)s)"
    "  ORDER BY d.next_at, d.seq LIMIT %(scan)s FOR UPDATE OF d SKIP LOCKED),"
    " first AS (SELECT DISTINCT ON (webhook_id) fire_id, webhook_id, next_at, seq FROM due"
    "  ORDER BY webhook_id, next_at, seq),"
    " free AS (SELECT w.webhook_id FROM main_api_webhooks AS w JOIN first AS f"
    "  ON f.webhook_id = w.webhook_id WHERE w.busy_until IS NULL OR w.busy_until <= %(now)s"
    "  ORDER BY f.next_at, f.seq LIMIT %(limit)s FOR NO KEY UPDATE OF w SKIP LOCKED),"
    " taken AS (UPDATE main_api_webhooks AS w SET busy_until = %(lease_until)s FROM free"
    "  WHERE w.webhook_id = free.webhook_id"
    "  RETURNING w.webhook_id, w.url, w.secret, w.previous_secret, w.previous_until)"
    " UPDATE main_api_webhook_deliveries AS d SET attempts = d.attempts + 1,"
    " next_at = %(lease_until)s, updated_at = %(now)s FROM first JOIN taken AS w"
    " ON w.webhook_id = first.webhook_id"
    " WHERE d.fire_id = first.fire_id AND d.webhook_id = first.webhook_id"
    " RETURNING d.fire_id, d.webhook_id, d.body, d.attempts, w.url, w.secret,"
    " CASE WHEN w.previous_until > %(now)s THEN w.previous_secret END AS previous_secret"
)
"""Take due deliveries, at most one per endpoint and none of an endpoint with one in flight
(its ``busy_until`` is ahead): of each endpoint the one due first (then the oldest), of
those the ``limit`` due first. Deliveries and endpoints another worker holds are skipped,
not waited for; an endpoint freed by a worker after this statement's snapshot is checked
again as it is locked (so two workers never have one endpoint in flight at once). Each
taken delivery counts one more attempt and it and its endpoint are held (until
``lease_until``) while it is tried."""

FINISH: Final = (
    "WITH freed AS (UPDATE main_api_webhooks SET busy_until = NULL"
    " WHERE webhook_id = %(webhook_id)s AND busy_until = %(lease_until)s)"
    " UPDATE main_api_webhook_deliveries SET state = %(state)s, next_at = %(next_at)s,"
    " last_status = %(status)s, last_error = %(error)s, updated_at = %(now)s,"
    " delivered_at = CASE WHEN %(state)s = 'delivered' THEN %(now)s END"
    " WHERE fire_id = %(fire_id)s AND webhook_id = %(webhook_id)s"
    " AND attempts = %(attempts)s AND state = 'pending'"
)
"""An attempt's end, unless the delivery moved on meanwhile (its lease ran out and another
attempt took it, or it was replayed); its endpoint is free again (unless another attempt
holds it now)."""

NEXT_DUE: Final = (
    "SELECT LEAST((SELECT d.next_at FROM main_api_webhook_deliveries AS d"
    "  JOIN main_api_webhooks AS w ON w.webhook_id = d.webhook_id WHERE d.state = 'pending'"
    "  AND (w.busy_until IS NULL OR w.busy_until <= %(now)s) ORDER BY d.next_at LIMIT 1),"
    " (SELECT min(busy_until) FROM main_api_webhooks WHERE busy_until > %(now)s)) AS at"
)
"""When a delivery may next be taken: the first due of an endpoint with no attempt in
flight, or the soonest end of an attempt's hold (at the latest, it is free then)."""

PRUNE: Final = (
    "WITH delivered AS (SELECT fire_id, webhook_id FROM main_api_webhook_deliveries"
    "  WHERE state = 'delivered' AND delivered_at < %(delivered_before)s"
    "  LIMIT %(limit)s FOR UPDATE SKIP LOCKED),"
    " dead AS (SELECT fire_id, webhook_id FROM main_api_webhook_deliveries"
    "  WHERE state = 'dead' AND updated_at < %(dead_before)s"
    "  LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    " DELETE FROM main_api_webhook_deliveries AS d"
    " USING (SELECT * FROM delivered UNION ALL SELECT * FROM dead) AS old"
    " WHERE d.fire_id = old.fire_id AND d.webhook_id = old.webhook_id"
)
"""Delete up to ``limit`` deliveries delivered before ``delivered_before`` and up to
``limit`` dead letters dead since before ``dead_before`` (rows another worker is deleting
are skipped)."""

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
