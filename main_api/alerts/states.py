"""The alert evaluator's durable state, in the main API's schema: per consumer group, bus and
partition, the evaluator's snapshot with the next offset it covers and the last alert change
it applied (``main_api_evaluator_states``), claimed with an ``epoch``.

- :func:`claim` takes a partition's row for a new owner, in one statement: it bumps the epoch
  and returns what was stored. An owner that lost the partition (a rebalance it has not seen
  yet) still holds the old epoch, and its next :func:`save` changes no row: it is fenced
  (:class:`FencedError`), and its whole transaction, firings included, is rolled back.
- :func:`save` is called in the round's transaction with the firings
  (:func:`main_api.store.record_firings_in`): state, offsets and fired marks commit together.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from main_api.store import Connection

_CLAIM: Final = (
    "INSERT INTO main_api_evaluator_states AS s (owner, topic, partition, epoch, next_offset,"
    " change_seq, snapshot, updated_at) VALUES (%(owner)s, %(topic)s, %(partition)s, 1, 0, 0,"
    " NULL, %(now)s) ON CONFLICT (owner, topic, partition) DO UPDATE SET epoch = s.epoch + 1,"
    " updated_at = excluded.updated_at RETURNING epoch, next_offset, change_seq, snapshot"
)
_SAVE: Final = (
    "UPDATE main_api_evaluator_states SET next_offset = %(next_offset)s,"
    " change_seq = %(change_seq)s, snapshot = %(snapshot)s, updated_at = %(now)s"
    " WHERE owner = %(owner)s AND topic = %(topic)s AND partition = %(partition)s"
    " AND epoch = %(epoch)s"
)


class FencedError(RuntimeError):
    """Another owner claimed the partition since this one did: its state is not ours."""


class Stored:
    """What :func:`claim` found: the epoch now ours, and the stored state (``snapshot`` None:
    nothing stored yet)."""

    __slots__ = ("change_seq", "epoch", "next_offset", "snapshot")

    def __init__(self, epoch: int, next_offset: int, change_seq: int, snapshot: bytes | None):
        self.epoch, self.next_offset = epoch, next_offset
        self.change_seq, self.snapshot = change_seq, snapshot


async def claim(conn: Connection, owner: str, topic: str, partition: int, now_ns: int) -> Stored:
    """Take ``(topic, partition)``'s row for a new owner (made when missing)."""
    cursor = await conn.execute(
        _CLAIM, {"owner": owner, "topic": topic, "partition": partition, "now": now_ns}
    )
    row = await cursor.fetchone()
    assert row is not None
    snapshot = row["snapshot"]
    return Stored(
        row["epoch"], row["next_offset"], row["change_seq"],
        None if snapshot is None else bytes(snapshot),
    )  # fmt: skip


async def save(
    conn: Connection,
    owner: str,
    rows: Iterable[tuple[str, int, int, int, int, bytes]],
    now_ns: int,
) -> None:
    """Store each ``(topic, partition, epoch, next_offset, change_seq, snapshot)``, if its
    epoch is still the row's; :class:`FencedError` when one is not."""
    for topic, partition, epoch, next_offset, change_seq, snapshot in rows:
        cursor = await conn.execute(
            _SAVE,
            {"owner": owner, "topic": topic, "partition": partition, "epoch": epoch,
             "next_offset": next_offset, "change_seq": change_seq, "snapshot": snapshot,
             "now": now_ns},
        )  # fmt: skip
        if cursor.rowcount != 1:
            raise FencedError(f"{topic}[{partition}] was claimed by another evaluator")


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
    start, and the offsets of the old one mean nothing); how many rows."""
    cursor = await conn.execute(
        "DELETE FROM main_api_evaluator_states WHERE owner LIKE %s AND owner <> %s",
        (group.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "@%", owner),
    )
    return cursor.rowcount
