"""The read-model tables and the SQL shell of the projection.

:func:`project` is the :class:`~trading.store.projector.ReadModel`'s projection: it reads the
rows :func:`~trading.readmodels.projection.needs` names, hands them to the pure
:func:`~trading.readmodels.projection.changes`, and writes what comes back. It runs on the
projector's cursor, whose ``search_path`` is the read model's schema, so the SQL names the
tables unqualified. Amounts are ``numeric`` (exact, any scale) and come back as ``Decimal``.

Orders and fills are numbered per account in the order they arrive (``seq``, from 1): the
number is the key the queries page by, and replaying the same log gives the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Placeholder

from core.positions import Position
from core.trading_events import OrderFilled, TradingEvent
from trading.domain.accounts import Account, Reservation
from trading.domain.orders import OPEN, Order
from trading.readmodels.projection import (
    Balance,
    BalanceRow,
    Change,
    FillRow,
    Needs,
    OrderRow,
    PositionRow,
    account_slice,
    changes,
    needs,
)
from trading.store.aggregates import Versioned
from trading.store.projector import ReadModel

DEFAULT_SCHEMA: Final = "trading_read"

OPEN_STATUSES: Final = tuple(sorted(status.value for status in OPEN))

DDL: Final = f"""
CREATE TABLE IF NOT EXISTS trading_orders (
    account bigint NOT NULL, order_id text NOT NULL, seq bigint NOT NULL,
    client_order_id text NOT NULL, instrument text NOT NULL, side text NOT NULL,
    type text NOT NULL, quantity numeric NOT NULL, price numeric, stop_price numeric,
    time_in_force text NOT NULL, status text NOT NULL, filled_quantity numeric NOT NULL,
    filled_notional numeric NOT NULL, venue_order_id text, reason_code text,
    ts_submitted bigint NOT NULL, ts_last bigint NOT NULL,
    PRIMARY KEY (account, order_id), UNIQUE (account, seq));
CREATE INDEX IF NOT EXISTS trading_orders_open ON trading_orders (account, seq)
    WHERE status IN {OPEN_STATUSES!r};
CREATE TABLE IF NOT EXISTS trading_fills (
    account bigint NOT NULL, seq bigint NOT NULL, order_id text NOT NULL,
    fill_id text NOT NULL, instrument text NOT NULL, side text NOT NULL,
    price numeric NOT NULL, quantity numeric NOT NULL, fee numeric NOT NULL,
    fee_currency text NOT NULL, liquidity text NOT NULL, trade_id bigint NOT NULL,
    ts bigint NOT NULL,
    PRIMARY KEY (account, seq), UNIQUE (account, order_id, fill_id));
CREATE TABLE IF NOT EXISTS trading_positions (
    account bigint NOT NULL, instrument text NOT NULL, quantity numeric NOT NULL,
    average_price numeric NOT NULL, realised numeric NOT NULL,
    PRIMARY KEY (account, instrument));
CREATE TABLE IF NOT EXISTS trading_balances (
    account bigint NOT NULL, currency text NOT NULL, cash numeric NOT NULL,
    reserved numeric NOT NULL, fees numeric NOT NULL,
    available numeric GENERATED ALWAYS AS (cash - reserved) STORED,
    PRIMARY KEY (account, currency));
CREATE TABLE IF NOT EXISTS trading_reservations (
    account bigint NOT NULL, order_id text NOT NULL, currency text NOT NULL,
    amount numeric NOT NULL,
    PRIMARY KEY (account, order_id));
"""
"""``trading_reservations`` is the projection's own bookkeeping (what each open order still
holds, which a fill draws on first); the queries read the other four."""

TABLES: Final = (
    "trading_orders",
    "trading_fills",
    "trading_positions",
    "trading_balances",
    "trading_reservations",
)

ORDER_SELECT: Final = SQL(
    "SELECT o.*, ARRAY(SELECT f.fill_id FROM trading_fills f WHERE f.account = o.account"
    " AND f.order_id = o.order_id ORDER BY f.seq) AS fill_ids FROM trading_orders o"
)
"""An order row with the ids of its fills, as :func:`order_of` reads it."""


def model(schema: str = DEFAULT_SCHEMA) -> ReadModel[TradingEvent]:
    """The trading read models in ``schema``."""
    return ReadModel(schema, DDL, project)


# -- rows and the domain's types ------------------------------------------------------------


def order_of(row: Mapping[str, Any]) -> Order:
    return msgspec.convert(dict(row), Order)


def fill_of(row: Mapping[str, Any]) -> OrderFilled:
    return msgspec.convert(dict(row), OrderFilled)


def position_of(row: Mapping[str, Any]) -> Position:
    return msgspec.convert(dict(row), Position)


def balance_of(row: Mapping[str, Any]) -> Balance:
    return msgspec.convert(dict(row), Balance)


def _values(struct: msgspec.Struct, *skip: str) -> dict[str, Any]:
    """The struct's fields but ``skip`` as query parameters: enums as their values, decimals
    as decimals."""
    values = msgspec.to_builtins(struct, builtin_types=(Decimal,))
    return {name: values[name] for name in struct.__struct_fields__ if name not in skip}


# -- the shell --------------------------------------------------------------------------------

_ONE_ORDER: Final = (ORDER_SELECT + SQL(" WHERE o.account = %s AND o.order_id = %s")).as_bytes(None)


def project(curs: Cursor[DictRow], item: Versioned[TradingEvent]) -> None:
    """The row changes of one event, read and written on ``curs``."""
    event = item.event
    need = needs(event)
    order = None if need.order_id is None else _order(curs, event.account, need.order_id)
    state = _account(curs, event.account, need)
    with curs.connection.pipeline():  # the writes in one round trip
        for change in changes(event, order, state):
            _write(curs, change)


def _order(curs: Cursor[DictRow], account: int, order_id: str) -> Order | None:
    curs.execute(_ONE_ORDER, (account, order_id))
    row = curs.fetchone()
    return None if row is None else order_of(row)


def _account(curs: Cursor[DictRow], account: int, need: Needs) -> Account:
    """The slice of the account ``need`` names (nothing read when it names nothing)."""
    reservations: dict[str, Reservation] = {}
    currencies = set(need.currencies)
    if need.reservation is not None:
        curs.execute(
            "SELECT currency, amount FROM trading_reservations"
            " WHERE account = %s AND order_id = %s",
            (account, need.reservation),
        )
        held = curs.fetchone()
        if held is not None:
            reservations[need.reservation] = Reservation(held["currency"], held["amount"])
            currencies.add(held["currency"])
    balances = []
    if currencies:
        curs.execute(
            "SELECT currency, cash, reserved, fees FROM trading_balances"
            " WHERE account = %s AND currency = ANY(%s)",
            (account, sorted(currencies)),
        )
        balances = [balance_of(row) for row in curs.fetchall()]
    positions = []
    if need.instrument is not None:
        curs.execute(
            "SELECT instrument, quantity, average_price, realised FROM trading_positions"
            " WHERE account = %s AND instrument = %s",
            (account, need.instrument),
        )
        positions = [position_of(row) for row in curs.fetchall()]
    return account_slice(account, balances, reservations, positions)


def _write(curs: Cursor[DictRow], change: Change) -> None:
    if isinstance(change, OrderRow):
        values = {
            name: value for name, value in _values(change.order).items() if name != "fill_ids"
        }
        _put(curs, "trading_orders", values, key=("account", "order_id"), numbered=True)
    elif isinstance(change, FillRow):
        values = _values(change.fill, "v")
        _put(curs, "trading_fills", values, numbered=True)
    elif isinstance(change, PositionRow):
        values = {"account": change.account, **_values(change.position)}
        _put(curs, "trading_positions", values, key=("account", "instrument"))
    elif isinstance(change, BalanceRow):
        values = {"account": change.account, **_values(change.balance)}
        _put(curs, "trading_balances", values, key=("account", "currency"))
    elif change.reservation is None:
        curs.execute(
            "DELETE FROM trading_reservations WHERE account = %s AND order_id = %s",
            (change.account, change.order_id),
        )
    else:
        values = {"account": change.account, "order_id": change.order_id}
        values.update(_values(change.reservation))
        _put(curs, "trading_reservations", values, key=("account", "order_id"))


def _put(
    curs: Cursor[DictRow],
    table: str,
    values: Mapping[str, Any],
    *,
    key: tuple[str, ...] = (),
    numbered: bool = False,
) -> None:
    """Insert the row; where ``key`` is given and the row exists, update it instead. A
    ``numbered`` row is inserted with the ``seq`` after its account's last in ``table``."""
    curs.execute(_statement(table, tuple(values), key, numbered), values)


@functools.lru_cache(maxsize=64)
def _statement(table: str, columns: tuple[str, ...], key: tuple[str, ...], numbered: bool) -> bytes:
    """The statement of :func:`_put`, composed once per shape."""
    names = SQL(", ").join(map(Identifier, columns))
    params = SQL(", ").join(Placeholder(name) for name in columns)
    if numbered:
        names += SQL(", seq")
        params += SQL(
            ", (SELECT coalesce(max(seq), 0) + 1 FROM {} WHERE account = %(account)s)"
        ).format(Identifier(table))
    statement = SQL("INSERT INTO {} ({}) VALUES ({})").format(Identifier(table), names, params)
    if key:
        statement += SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
            SQL(", ").join(map(Identifier, key)),
            SQL(", ").join(
                SQL("{0} = EXCLUDED.{0}").format(Identifier(name))
                for name in columns
                if name not in key
            ),
        )
    return statement.as_bytes(None)
