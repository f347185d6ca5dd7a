"""The alert evaluator's durable state, in the main API's schema: per consumer group, bus and
partition, the next offset the state covers and the last alert change it applied
(``main_api_evaluator_states``), claimed with an ``epoch``; and the evaluator's rows
(``main_api_evaluator_rows``: one per alert, one per stream, see
:class:`~main_api.alerts.evaluator.AlertEvaluator`), so that a round stores the rows it
changed and not every alert of the partition.

- :func:`claim` takes a partition's row for a new owner, in one statement: it bumps the epoch
  and returns what was stored, then reads the partition's evaluator rows. An owner that lost
  the partition (a rebalance it has not seen yet) still holds the old epoch, and its next
  :func:`save` changes no row: it is fenced (:class:`FencedError`), and its whole
  transaction, rows and firings included, is rolled back.
- :func:`save` is called in the round's transaction with the firings
  (:func:`main_api.store.record_firings_in`): offsets, the changed rows and fired marks commit
  together. The offsets' row is updated first: it holds the partition's lock to the commit,
  so a new owner's :func:`claim` reads the rows of a round whole or not at all.
- A state stored before the rows existed (a whole snapshot, ``snapshot``) is still read; the
  first save after it stores every row and clears it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from main_api.alerts.evaluator import Delta
from main_api.store import Connection

ALERT: Final = "alert"
STREAM: Final = "stream"
"""The kinds of evaluator rows."""

_CLAIM: Final = (
    "INSERT INTO main_api_evaluator_states AS s (owner, topic, partition, epoch, next_offset,"
    " change_seq, snapshot, updated_at) VALUES (%(owner)s, %(topic)s, %(partition)s, 1, 0, 0,"
    " NULL, %(now)s) ON CONFLICT (owner, topic, partition) DO UPDATE SET epoch = s.epoch + 1,"
    " updated_at = excluded.updated_at RETURNING epoch, next_offset, change_seq, snapshot"
)
_ROWS: Final = (
    "SELECT kind, data FROM main_api_evaluator_rows"
    " WHERE owner = %(owner)s AND topic = %(topic)s AND partition = %(partition)s"
)
_SAVE: Final = (
    "UPDATE main_api_evaluator_states AS s SET next_offset = v.next_offset,"
    " change_seq = v.change_seq, snapshot = NULL, updated_at = %s"
    " FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::bigint[], %s::bigint[])"
    " AS v (topic, partition, epoch, next_offset, change_seq)"
    " WHERE s.owner = %s AND s.topic = v.topic AND s.partition = v.partition"
    " AND s.epoch = v.epoch RETURNING s.topic, s.partition"
)
_UPSERT: Final = (
    "INSERT INTO main_api_evaluator_rows (owner, topic, partition, kind, id, data)"
    " SELECT %s, * FROM unnest(%b::text[], %b::integer[], %b::text[], %b::text[], %b::bytea[])"
    " ON CONFLICT (owner, topic, partition, kind, id) DO UPDATE SET data = excluded.data"
)
_DELETE: Final = (
    "DELETE FROM main_api_evaluator_rows WHERE owner = %s AND kind = 'alert'"
    " AND (topic, partition, id) IN (SELECT * FROM unnest(%b::text[], %b::integer[], %b::text[]))"
)


class FencedError(RuntimeError):
    """Another owner claimed the partition since this one did: its state is not ours."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What :func:`claim` found: the epoch now ours, the offsets' row, and the evaluator's
    rows (``alerts``, ``streams``), or a whole ``snapshot`` stored before the rows existed.
    No snapshot and no rows: nothing stored yet."""

    epoch: int
    next_offset: int
    change_seq: int
    snapshot: bytes | None = None
    alerts: Sequence[bytes] = ()
    streams: Sequence[bytes] = ()


@dataclass(frozen=True, slots=True)
class Saved:
    """One moved partition's part of a round: its claim, its offsets' row and its delta."""

    topic: str
    partition: int
    epoch: int
    next_offset: int
    change_seq: int
    delta: Delta


async def claim(conn: Connection, owner: str, topic: str, partition: int, now_ns: int) -> Stored:
    """Take ``(topic, partition)``'s row for a new owner (made when missing)."""
    key = {"owner": owner, "topic": topic, "partition": partition}
    cursor = await conn.execute(_CLAIM, key | {"now": now_ns})
    row = await cursor.fetchone()
    assert row is not None
    snapshot = row["snapshot"]
    alerts: list[bytes] = []
    streams: list[bytes] = []
    if snapshot is None:
        cursor = await conn.execute(_ROWS, key)
        for kind, data in [(r["kind"], bytes(r["data"])) for r in await cursor.fetchall()]:
            (alerts if kind == ALERT else streams).append(data)
    return Stored(
        row["epoch"], row["next_offset"], row["change_seq"],
        None if snapshot is None else bytes(snapshot), alerts, streams,
    )  # fmt: skip


async def save(conn: Connection, owner: str, saved: Iterable[Saved], now_ns: int) -> None:
    """Store each partition's offsets and changed rows, if its epoch is still the row's;
    :class:`FencedError` when one is not. Whatever the number of partitions: one statement
    for the offsets, one for the rows upserted and, when alerts are gone, one to delete
    theirs."""
    parts = list(saved)
    if not parts:
        return
    offsets = [(p.topic, p.partition, p.epoch, p.next_offset, p.change_seq) for p in parts]
    cursor = await conn.execute(_SAVE, [now_ns, *map(list, zip(*offsets, strict=True)), owner])
    ours = {(row["topic"], row["partition"]) for row in await cursor.fetchall()}
    for part in parts:
        if (part.topic, part.partition) not in ours:
            raise FencedError(f"{part.topic}[{part.partition}] was claimed by another evaluator")
    kept: list[tuple[str, int, str, str, bytes]] = []
    gone: list[tuple[str, int, str]] = []
    for part in parts:
        topic, partition = part.topic, part.partition
        for alert_id, data in part.delta.alerts.items():
            if data is None:
                gone.append((topic, partition, alert_id))
            else:
                kept.append((topic, partition, ALERT, alert_id, data))
        kept += [(topic, partition, STREAM, i, data) for i, data in part.delta.streams.items()]
    if kept:
        await conn.execute(_UPSERT, [owner, *map(list, zip(*kept, strict=True))])
    if gone:
        await conn.execute(_DELETE, [owner, *map(list, zip(*gone, strict=True))])


async def last_change(conn: Connection) -> int:
    """The number of the last alert change committed."""
    cursor = await conn.execute("SELECT coalesce(max(change_seq), 0) AS seq FROM main_api_alerts")
    row = await cursor.fetchone()
    assert row is not None
    return int(row["seq"])


async def fired_armings(conn: Connection, alerts: Iterable[tuple[int, str]]) -> dict[str, int]:
    """The highest arming fired so far of each ``(account, alert_id)`` that has fired."""
    pairs = list(alerts)
    if not pairs:
        return {}
    cursor = await conn.execute(
        "SELECT alert_id, max(split_part(fire_id, ':', 2)::bigint) AS arming"
        " FROM main_api_fired WHERE (account, alert_id) IN"
        " (SELECT * FROM unnest(%s::bigint[], %s::text[])) GROUP BY alert_id",
        ([account for account, _ in pairs], [alert_id for _, alert_id in pairs]),
    )
    return {row["alert_id"]: int(row["arming"]) for row in await cursor.fetchall()}


async def forget_other_buses(conn: Connection, group: str, owner: str) -> int:
    """Drop ``group``'s states of other buses (``mdp up``: its in-process bus is new at every
    start, and the offsets of the old one mean nothing), their evaluator rows with them; how
    many states."""
    others = (group.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "@%", owner)
    await conn.execute(
        "DELETE FROM main_api_evaluator_rows WHERE owner LIKE %s AND owner <> %s", others
    )
    cursor = await conn.execute(
        "DELETE FROM main_api_evaluator_states WHERE owner LIKE %s AND owner <> %s", others
    )
    return cursor.rowcount
