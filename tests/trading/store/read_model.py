"""The toy read model: balances and a ledger of moves, projected from the toy events."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from tests.trading.store import toy
from trading.store.aggregates import Versioned
from trading.store.projector import ReadModel, each

DDL = """
CREATE TABLE IF NOT EXISTS balances (
    account integer PRIMARY KEY, cash bigint NOT NULL, moves integer NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    aggregate_id text, version integer, kind text NOT NULL, amount bigint NOT NULL,
    PRIMARY KEY (aggregate_id, version));
"""
TABLES = ("balances", "ledger")


def project(curs: Cursor[DictRow], item: Versioned[toy.ToyEvent]) -> None:
    """The upserts of one event (a plain INSERT into the ledger: a repeat would fail loudly)."""
    event = item.event
    if isinstance(event, toy.Opened):
        curs.execute("INSERT INTO balances VALUES (%s, 0, 0)", (event.account,))
        return
    amount = event.amount if isinstance(event, toy.Deposited) else -event.amount
    curs.execute(
        "UPDATE balances SET cash = cash + %s, moves = moves + 1 WHERE account = %s",
        (amount, event.account),
    )
    curs.execute(
        "INSERT INTO ledger VALUES (%s, %s, %s, %s)",
        (item.aggregate_id, item.version, toy.CODEC.topic(event), amount),
    )


def model(schema: str) -> ReadModel[toy.ToyEvent]:
    return ReadModel(schema, DDL, each(project))


def contents(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the read model in ``schema``, sorted."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(
                conn.execute(
                    SQL("SELECT * FROM {}.{}").format(Identifier(schema), Identifier(table))
                ).fetchall()
            )
            for table in TABLES
        }
