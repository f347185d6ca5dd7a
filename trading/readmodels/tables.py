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

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier

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
    reason_field text, reason text, ts_submitted bigint NOT NULL, ts_last bigint NOT NULL,
    PRIMARY KEY (account, order_id), UNIQUE (account, seq));
ALTER TABLE trading_orders ADD COLUMN IF NOT EXISTS reason_field text;
ALTER TABLE trading_orders ADD COLUMN IF NOT EXISTS reason text;
ALTER TABLE trading_orders ADD COLUMN IF NOT EXISTS triggered_by bigint;
ALTER TABLE trading_orders ADD COLUMN IF NOT EXISTS ts_triggered bigint;
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
_KEYS: Final = " IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))"
_SOME_ORDERS: Final = (ORDER_SELECT + SQL(" WHERE (o.account, o.order_id)" + _KEYS)).as_bytes(None)
_SOME_RESERVATIONS: Final = (
    b"SELECT account, order_id, currency, amount FROM trading_reservations"
    b" WHERE (account, order_id)" + _KEYS.encode()
)
_SOME_BALANCES: Final = (
    b"SELECT account, currency, cash, reserved, fees FROM trading_balances"
    b" WHERE (account, currency)" + _KEYS.encode()
)
_SOME_POSITIONS: Final = (
    b"SELECT account, instrument, quantity, average_price, realised FROM trading_positions"
    b" WHERE (account, instrument)" + _KEYS.encode()
)
_BALANCE: Final = ("currency", "cash", "reserved", "fees")
_POSITION: Final = ("instrument", "quantity", "average_price", "realised")


def project(curs: Cursor[DictRow], items: Sequence[Versioned[TradingEvent]]) -> None:
    """The row changes of a batch of events, read and written on ``curs``: each row the
    batch touches is read once (:class:`_Rows`, all at first, a query per table), every
    event is applied in order, and the rows' final states are written once: a statement
    per table (:func:`_write`), all in one round trip."""
    rows = _Rows(curs)
    wanted = [(item.event, needs(item.event)) for item in items]
    rows.prefetch(wanted)
    for event, need in wanted:
        order = None if need.order_id is None else rows.order(event.account, need.order_id)
        for change in changes(event, order, rows.account(event.account, need)):
            rows.change(change)
    _write(curs, rows.written())


class _Rows:
    """The rows a batch touches: each read from the tables at most once, then kept with the
    batch's changes applied; :meth:`written` is what to write back, in the order the rows
    were first changed (so new orders and fills are numbered in the order they arrived)."""

    def __init__(self, curs: Cursor[DictRow]) -> None:
        self._curs = curs
        self._orders: dict[tuple[int, str], Order | None] = {}
        self._reservations: dict[tuple[int, str], Reservation | None] = {}
        self._balances: dict[tuple[int, str], Balance | None] = {}
        self._positions: dict[tuple[int, str], Position | None] = {}
        self._changed: dict[tuple[str, int, str], Change] = {}
        self._fills = 0

    def prefetch(self, wanted: Sequence[tuple[TradingEvent, Needs]]) -> None:
        """Read every row ``wanted`` names, a query per table (not a round trip per row):
        nothing is written before the batch's end, so each row reads as it would alone. A
        balance named only by a reservation's currency is still read when first needed."""
        orders: dict[tuple[int, str], None] = {}
        reservations: dict[tuple[int, str], None] = {}
        balances: dict[tuple[int, str], None] = {}
        positions: dict[tuple[int, str], None] = {}
        for event, need in wanted:
            account = event.account
            if need.order_id is not None:
                orders[(account, need.order_id)] = None
            if need.reservation is not None:
                reservations[(account, need.reservation)] = None
            for currency in need.currencies:
                balances[(account, currency)] = None
            if need.instrument is not None:
                positions[(account, need.instrument)] = None
        for key, row in self._select(_SOME_ORDERS, orders, "order_id"):
            self._orders[key] = order_of(row)
        for key, row in self._select(_SOME_RESERVATIONS, reservations, "order_id"):
            self._reservations[key] = Reservation(row["currency"], row["amount"])
        for key, row in self._select(_SOME_BALANCES, balances, "currency"):
            self._balances[key] = balance_of({name: row[name] for name in _BALANCE})
        for key, row in self._select(_SOME_POSITIONS, positions, "instrument"):
            self._positions[key] = position_of({name: row[name] for name in _POSITION})
        self._orders.update(dict.fromkeys(orders.keys() - self._orders.keys()))
        self._reservations.update(dict.fromkeys(reservations.keys() - self._reservations.keys()))
        self._balances.update(dict.fromkeys(balances.keys() - self._balances.keys()))
        self._positions.update(dict.fromkeys(positions.keys() - self._positions.keys()))

    def _select(
        self, statement: bytes, keys: Mapping[tuple[int, str], None], column: str
    ) -> list[tuple[tuple[int, str], DictRow]]:
        """The rows of ``keys`` (account and ``column``) ``statement`` reads, by key."""
        if not keys:
            return []
        accounts = [account for account, _ in keys]
        names = [name for _, name in keys]
        self._curs.execute(statement, (accounts, names))
        return [((row["account"], row[column]), row) for row in self._curs.fetchall()]

    def order(self, account: int, order_id: str) -> Order | None:
        key = (account, order_id)
        if key not in self._orders:
            self._curs.execute(_ONE_ORDER, (account, order_id))
            row = self._curs.fetchone()
            self._orders[key] = None if row is None else order_of(row)
        return self._orders[key]

    def account(self, account: int, need: Needs) -> Account:
        """The slice of the account ``need`` names, as the batch left it so far."""
        reservations: dict[str, Reservation] = {}
        currencies = set(need.currencies)
        if need.reservation is not None:
            held = self._reservation(account, need.reservation)
            if held is not None:
                reservations[need.reservation] = held
                currencies.add(held.currency)
        balances = [b for c in sorted(currencies) if (b := self._balance(account, c)) is not None]
        positions = []
        if need.instrument is not None:
            position = self._position(account, need.instrument)
            positions = [] if position is None else [position]
        return account_slice(account, balances, reservations, positions)

    def change(self, change: Change) -> None:
        if isinstance(change, OrderRow):
            order = change.order
            self._orders[(order.account, order.order_id)] = order
            key = ("order", order.account, order.order_id)
        elif isinstance(change, FillRow):
            self._fills += 1
            key = ("fill", change.fill.account, str(self._fills))
        elif isinstance(change, PositionRow):
            instrument = change.position.instrument
            self._positions[(change.account, instrument)] = change.position
            key = ("position", change.account, instrument)
        elif isinstance(change, BalanceRow):
            self._balances[(change.account, change.balance.currency)] = change.balance
            key = ("balance", change.account, change.balance.currency)
        else:
            self._reservations[(change.account, change.order_id)] = change.reservation
            key = ("reservation", change.account, change.order_id)
        self._changed[key] = change  # the newest state, in the place of the first change

    def written(self) -> list[Change]:
        return list(self._changed.values())

    def _reservation(self, account: int, order_id: str) -> Reservation | None:
        key = (account, order_id)
        if key not in self._reservations:
            self._curs.execute(
                "SELECT currency, amount FROM trading_reservations"
                " WHERE account = %s AND order_id = %s",
                key,
            )
            row = self._curs.fetchone()
            self._reservations[key] = (
                None if row is None else Reservation(row["currency"], row["amount"])
            )
        return self._reservations[key]

    def _balance(self, account: int, currency: str) -> Balance | None:
        key = (account, currency)
        if key not in self._balances:
            self._curs.execute(
                "SELECT currency, cash, reserved, fees FROM trading_balances"
                " WHERE account = %s AND currency = %s",
                key,
            )
            row = self._curs.fetchone()
            self._balances[key] = None if row is None else balance_of(row)
        return self._balances[key]

    def _position(self, account: int, instrument: str) -> Position | None:
        key = (account, instrument)
        if key not in self._positions:
            self._curs.execute(
                "SELECT instrument, quantity, average_price, realised FROM trading_positions"
                " WHERE account = %s AND instrument = %s",
                key,
            )
            row = self._curs.fetchone()
            self._positions[key] = None if row is None else position_of(row)
        return self._positions[key]


def _rows(changes: Sequence[Change]) -> dict[str, list[dict[str, Any]]]:
    """The rows ``changes`` leave, per table, in the order of the changes; a reservation an
    order no longer holds is its key alone (the row goes)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        if isinstance(change, OrderRow):
            table, values = "trading_orders", _values(change.order, "fill_ids")
        elif isinstance(change, FillRow):
            table, values = "trading_fills", _values(change.fill, "v")
        elif isinstance(change, PositionRow):
            table, values = "trading_positions", {"account": change.account}
            values.update(_values(change.position))
        elif isinstance(change, BalanceRow):
            table, values = "trading_balances", {"account": change.account}
            values.update(_values(change.balance))
        else:
            table, values = "trading_reservations", {"account": change.account}
            values["order_id"] = change.order_id
            if change.reservation is not None:
                values.update(_values(change.reservation))
        rows.setdefault(table, []).append(values)
    return rows


def _write(curs: Cursor[DictRow], changes: Sequence[Change]) -> None:
    """Write the rows ``changes`` leave: one statement per table, all in one round trip."""
    with curs.connection.pipeline():
        for table, rows in _rows(changes).items():
            curs.execute(_WRITES[table], (msgspec.json.encode(rows).decode(),))


def _upsert(
    table: str,
    columns: Sequence[str],
    key: Sequence[str] = (),
    *,
    numbered: bool = False,
    deleting: bool = False,
) -> bytes:
    """The statement of :func:`_write` for ``table``: insert the rows of a JSON array (its
    objects' keys the columns) in their order; where ``key`` is given and a row exists, update
    it instead. A ``numbered`` row new to ``table`` gets the ``seq`` after its account's last,
    in the array's order (an existing row keeps its own). ``deleting``: a row whose other
    columns are all null is deleted instead. Every key appears once in the array, so the parts
    never touch one row twice."""
    names = SQL(", ").join(map(Identifier, columns))
    picked = SQL(", ").join(SQL("r.{}").format(Identifier(name)) for name in columns)
    joins: Composable = SQL("")
    if numbered:
        names += SQL(", seq")
        after_last = SQL(
            "(SELECT coalesce(max(m.seq), 0) FROM {} m WHERE m.account = r.account)"
            " + row_number() OVER (PARTITION BY r.account{} ORDER BY r.ordinality)"
        )
        if key:
            joins = SQL(" LEFT JOIN {} o ON {}").format(Identifier(table), _matching("o", key))
            number = after_last.format(Identifier(table), SQL(", o.seq IS NULL"))
            picked += SQL(", coalesce(o.seq, {})").format(number)
        else:
            picked += SQL(", ") + after_last.format(Identifier(table), SQL(""))
    rest = [name for name in columns if name not in key]
    source: Composable = SQL("json_populate_recordset(NULL::{}, %s::json) WITH ORDINALITY").format(
        Identifier(table)
    )
    prefix: Composable = SQL("")
    where: Composable = SQL("")
    if deleting:
        prefix = SQL(
            "WITH given AS ({0}), gone AS (DELETE FROM {1} g USING given r WHERE {2} AND {3}) "
        ).format(
            SQL("SELECT * FROM ") + source,
            Identifier(table),
            SQL(" AND ").join(SQL("r.{} IS NULL").format(Identifier(name)) for name in rest),
            _matching("g", key),
        )
        source = SQL("given")
        where = SQL(" WHERE ") + SQL(" OR ").join(
            SQL("r.{} IS NOT NULL").format(Identifier(name)) for name in rest
        )
    statement = SQL(
        "{}INSERT INTO {} ({}) SELECT {} FROM {} AS r{}{} ORDER BY r.ordinality"
    ).format(prefix, Identifier(table), names, picked, source, joins, where)
    if key:
        statement = SQL("{} ON CONFLICT ({}) DO UPDATE SET {}").format(
            statement,
            SQL(", ").join(map(Identifier, key)),
            SQL(", ").join(SQL("{0} = EXCLUDED.{0}").format(Identifier(name)) for name in rest),
        )
    return statement.as_bytes(None)


def _matching(alias: str, key: Sequence[str]) -> Composed:
    """``alias``'s row has the key of ``r``'s."""
    return SQL(" AND ").join(
        SQL("{0}.{1} = r.{1}").format(Identifier(alias), Identifier(name)) for name in key
    )


def _columns(struct: type[msgspec.Struct], *skip: str) -> tuple[str, ...]:
    return tuple(name for name in struct.__struct_fields__ if name not in skip)


_WRITES: Final = {
    "trading_orders": _upsert(
        "trading_orders", _columns(Order, "fill_ids"), ("account", "order_id"), numbered=True
    ),
    "trading_fills": _upsert("trading_fills", _columns(OrderFilled, "v"), numbered=True),
    "trading_positions": _upsert(
        "trading_positions", ("account", *_columns(Position)), ("account", "instrument")
    ),
    "trading_balances": _upsert(
        "trading_balances", ("account", *_columns(Balance)), ("account", "currency")
    ),
    "trading_reservations": _upsert(
        "trading_reservations",
        ("account", "order_id", *_columns(Reservation)),
        ("account", "order_id"),
        deleting=True,
    ),
}
"""Per table, the one statement that writes a batch's rows of it."""
