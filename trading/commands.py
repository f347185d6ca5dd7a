"""``trading.commands`` into the service: a pure step and the durability hook that applies it.

The trading process consumes the topic with the platform's processor loop
(:class:`streams.processor.Processor`, its own consumer group):

- :func:`command_step` (pure) turns each decoded record into a :class:`Planned` call: the
  domain's request, built (and so checked) as the REST body's is (``OrderRequest``,
  ``AmendRequest``, ``CancelRequest``, ``check_amount``), or a :class:`Refused` naming our
  code (a record its codec refused, a key that is not the command's account, a request the
  domain refuses);
- :class:`Applying` (the hook) runs the calls on the service after the poll and before the
  offsets are committed. Each call carries its record's position (``GROUP@CLUSTER/topic/P``,
  the next offset) into the transaction of the command's first append, so a command stored
  once is skipped when the bus delivers it again after a crash (:meth:`Applying.fresh`), and
  refused by the store if it slips through. A refusal (validation, risk, an order not open,
  an unknown order) is logged with our code and counted, and the loop goes on; an order the
  risk check refuses is stored with its ``order-denied`` event, as on the REST path. Commands
  the bus delivers twice at different offsets (a producer's retry) are harmless too: one
  order per client order id, and a cancel of an order that is done stores nothing.

A partitioned service (``docs/trading.md``, "Partitions") reads the whole topic in a group of
its own (:func:`commands_group`) and applies only its own accounts' commands
(:func:`mine`); the others are skipped, counted, and their offsets committed with the round's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from eventsourcing.persistence import IntegrityError, Tracking

from core.codecs import RejectedMessage
from core.partitions import Partition
from core.trading_commands import (
    AmendOrder,
    CancelOrder,
    Deposit,
    PlaceOrder,
    SetKillSwitch,
    TradingCommand,
    command_key,
    kind_of,
)
from core.trading_events import OrderStatus
from streams.bus import Offsets, Record
from streams.processor import Batch, Durability, Outcome, Round
from trading.domain.orders import (
    AmendRequest,
    CancelRequest,
    IllegalTransition,
    OrderInvalid,
    OrderRequest,
    check_amount,
)
from trading.domain.risk import RiskRefused
from trading.service.saga import UNKNOWN_ORDER, ServiceError
from trading.service.shell import RESTART_REQUIRED, TradingService
from trading.store.database import Database
from trading.store.errors import AlreadyTracked, ConcurrencyConflict
from trading.store.log import NotificationLog

log = logging.getLogger(__name__)

COMMANDS_GROUP = "trading.commands"
"""The trading process's consumer group on ``trading.commands``."""


def commands_group(partition: Partition, group: str = COMMANDS_GROUP) -> str:
    """The consumer group of ``partition`` (``trading.commands.p1of2``; ``0/1`` keeps
    ``group``): every partition reads every record, since Kafka's partitions of the topic are
    not ours."""
    return group + partition.suffix()


# -- the pure step ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class Cancel:
    account: int
    order_id: str
    by_client_order_id: bool
    """``order_id`` is the client order id the order was placed with."""


@dataclass(frozen=True, slots=True)
class Amend:
    request: AmendRequest
    by_client_order_id: bool
    """``request.order_id`` is the client order id the order was placed with."""


@dataclass(frozen=True, slots=True)
class Fund:
    account: int
    currency: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Kill:
    account: int
    on: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A command that reaches no service call: ``code`` is ours, ``field`` names the field
    at fault when one is."""

    code: str
    field: str | None
    message: str


Call = Place | Cancel | Amend | Fund | Kill | Refused


@dataclass(frozen=True, slots=True)
class Planned:
    """One record's call: where it is on the bus, what it is (``kind``, ``account`` when
    the record was a command) and what to do."""

    topic: str
    partition: int
    offset: int
    kind: str
    account: int | None
    call: Call

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def plan(command: TradingCommand) -> Call:
    """The service call ``command`` asks for, its request checked by the domain (a
    :class:`Refused` with the domain's code when it refuses it)."""
    try:
        return _call(command)
    except OrderInvalid as exc:
        return Refused(exc.code, exc.field, exc.message)


def _call(command: TradingCommand) -> Call:
    account = command.account
    if isinstance(command, PlaceOrder):
        fields = {name: getattr(command, name) for name in command.__struct_fields__}
        del fields["v"]
        return Place(OrderRequest(**fields))
    if isinstance(command, CancelOrder):
        if command.client_order_id is not None:
            return Cancel(account, command.client_order_id, by_client_order_id=True)
        assert command.order_id is not None  # the codec wants exactly one
        request = CancelRequest(account=account, order_id=command.order_id)
        return Cancel(account, request.order_id, by_client_order_id=False)
    if isinstance(command, AmendOrder):
        reference = command.client_order_id or command.order_id
        assert reference is not None  # the codec wants exactly one
        change = AmendRequest(
            account=account,
            order_id=reference,
            quantity=command.quantity,
            price=command.price,
            stop_price=command.stop_price,
        )
        return Amend(change, by_client_order_id=command.client_order_id is not None)
    if isinstance(command, Deposit):
        return Fund(account, command.currency, check_amount(command.amount, "amount"))
    assert isinstance(command, SetKillSwitch)
    return Kill(account, command.on)


def command_step(batch: Batch, now_ns: int, caught_up: bool) -> Outcome[list[Planned]]:
    """The pure step: each record of the batch as its :class:`Planned` call, in order. It
    publishes nothing: the service's events reach ``trading.events`` through its outbox."""
    planned: list[Planned] = []
    undecodable = iter(batch.undecodable)
    for record, message in zip(batch.records, batch.messages, strict=True):
        where = (record.topic, record.partition, record.offset)
        if message is None:
            rejected: RejectedMessage = next(undecodable)
            planned.append(Planned(*where, "undecodable", None, _undecodable(rejected)))
            continue
        command: TradingCommand = message
        call: Call
        if record.key != command_key(command):
            call = Refused("key-mismatch", "account", "the record's key is not its account")
        else:
            call = plan(command)
        planned.append(Planned(*where, kind_of(command), command.account, call))
    return Outcome([], planned)


def mine(planned: Planned, partition: Partition) -> bool:
    """Whether ``partition`` applies ``planned``: a command of one of its accounts; a record
    that names no account (undecodable) is partition 0's, so that it is refused and logged
    once."""
    if planned.account is None:
        return partition.index == 0
    return partition.owns(planned.account)


def tracked_by(name: str, group: str, cluster_id: str) -> tuple[Partition, str] | None:
    """Whose position a tracking row ``name`` is, among ``group``'s partitionings in the
    cluster: its group's partition (:func:`commands_group`) and the ``topic/partition`` it is
    in; None for a row of another reader or cluster."""
    owner, at, where = name.partition("@")
    partition = Partition.named(owner, group)
    if not at or partition is None or not where.startswith(f"{cluster_id}/"):
        return None
    return partition, where.removeprefix(f"{cluster_id}/")


def _undecodable(rejected: RejectedMessage) -> Refused:
    return Refused("undecodable", None, rejected.detail)


# -- the durability hook ------------------------------------------------------------------------


_REFUSALS = (OrderInvalid, RiskRefused, IllegalTransition, ServiceError, ConcurrencyConflict)


class Applying(Durability[list[Planned]]):
    """Runs each round's calls on the service before its offsets are committed.

    Positions are tracked as ``GROUP@CLUSTER_ID/topic/partition`` (the next offset), where
    ``GROUP`` is the service's partition's group (:func:`commands_group`): offsets mean
    something only within one cluster (a new one for every in-process bus). A command is
    skipped as applied when it lies below the position of any group, of any partitioning,
    whose partition owns its account (the group's name says which: ``trading.commands`` owns
    every account, ``trading.commands.p1of2`` the odd ones): so a service started with another
    partitioning (a new group, reading the topic from its start) applies only what no owner of
    the account applied before.
    ``stats`` counts the outcomes: ``applied``, ``denied`` (stored with its
    ``order-denied``), ``refused`` (nothing stored), ``replayed`` (stored before: skipped),
    ``other-partition`` (another partition's account: skipped, its offset committed).
    A store that cannot be reached, or a service that must restart, ends the loop with the
    round uncommitted: the restarted process applies what it had not stored.
    """

    def __init__(
        self, service: TradingService, database: Database, group: str, cluster_id: str
    ) -> None:
        """``group`` is the unpartitioned group's name (:data:`COMMANDS_GROUP`); the service's
        partition gives the one this hook tracks."""
        self.service = service
        self._partition = service.partition
        self._database = database
        self._log = NotificationLog(database)
        self._base = group
        self._cluster = cluster_id
        self._prefix = f"{commands_group(self._partition, group)}@{cluster_id}/"
        self._positions: dict[str, int] = {}
        self._owners: list[tuple[Partition, str, int]] = []
        """Every group's positions: (its partition, ``topic/partition``, position)."""
        self.stats: Counter[str] = Counter()

    def _name(self, topic: str, partition: int) -> str:
        return f"{self._prefix}{topic}/{partition}"

    async def start(self) -> None:
        await self._read()

    async def _read(self) -> None:
        """Every group's positions, again: a partition may come from another member of the
        group, further on (an own position read earlier never goes back)."""
        rows = await asyncio.to_thread(self._log.positions, self._base)
        owners = []
        for name, position in rows.items():
            if name.startswith(self._prefix):
                self._positions[name] = max(position, self._positions.get(name, 0))
            tracked = tracked_by(name, self._base, self._cluster)
            if tracked is not None:
                owners.append((*tracked, position))
        self._owners = owners

    def fresh(self, records: list[Record]) -> list[Record]:
        """The records not stored yet (after a crash the bus delivers them again)."""
        kept = [r for r in records if r.offset >= self._position(r.topic, r.partition)]
        skipped = len(records) - len(kept)
        if skipped:
            self.stats["replayed"] += skipped
            log.info("commands: %d record(s) applied before a restart skipped", skipped)
        return kept

    def _position(self, topic: str, partition: int) -> int:
        return self._positions.get(self._name(topic, partition), 0)

    def _applied_below(self, planned: Planned) -> int:
        """The offset below which ``planned``'s account had its commands applied: this
        group's position, or further on another group's whose partition owns the account."""
        own = self._position(planned.topic, planned.partition)
        if planned.account is None:
            return own
        where = f"{planned.topic}/{planned.partition}"
        return max(
            [own, *(position for partition, tracked, position in self._owners
                    if tracked == where and partition.owns(planned.account))]
        )  # fmt: skip

    async def behind(self, round: Round[list[Planned]]) -> Offsets:
        if not round.outcome.effects:
            return round.offsets
        await self._read()
        touched: set[str] = set()
        for planned in round.outcome.effects:
            if not mine(planned, self._partition):
                self.stats["other-partition"] += 1
                continue
            if planned.offset < self._applied_below(planned):
                self.stats["replayed"] += 1
                continue
            name = self._name(planned.topic, planned.partition)
            await self._apply(planned, Tracking(name, planned.offset + 1))
            self._positions[name] = planned.offset + 1
            touched.add(name)
        await asyncio.to_thread(self._store_positions, touched)
        return round.offsets

    def _store_positions(self, names: Collection[str]) -> None:
        """Record each partition's position after the round: it is where the last command's
        append moved it already, unless that command stored nothing (a refusal, an order
        placed before), and a position that does not move forward is left as it is."""
        for name in sorted(names):
            with contextlib.suppress(IntegrityError):  # at that position already
                self._database.tracking.insert_tracking(Tracking(name, self._positions[name]))

    async def _apply(self, planned: Planned, tracking: Tracking) -> None:
        call = planned.call
        try:
            if isinstance(call, Refused):
                self._refused(planned, call.code, call.field, call.message)
                return
            denied = await self._run(call, tracking)
        except AlreadyTracked:
            self.stats["replayed"] += 1
            return
        except _REFUSALS as exc:
            if isinstance(exc, ServiceError) and exc.code == RESTART_REQUIRED:
                raise
            message = getattr(exc, "message", str(exc))
            self._refused(planned, exc.code, getattr(exc, "field", None), message)
            return
        if denied:
            self.stats["denied"] += 1
            log.info("commands: %s at %s for account %s denied by the risk check",
                     planned.kind, planned.origin, planned.account)  # fmt: skip
        else:
            self.stats["applied"] += 1

    async def _run(self, call: Call, tracking: Tracking) -> bool:
        """Run ``call``; whether it was an order the risk check denied."""
        service = self.service
        if isinstance(call, Place):
            placed = await service.place(call.request, tracking=tracking)
            return placed.order.status is OrderStatus.DENIED
        if isinstance(call, Cancel):
            order_id = await self._order_id(call.account, call.order_id, call.by_client_order_id)
            await service.cancel(call.account, order_id, tracking=tracking)
        elif isinstance(call, Amend):
            request = call.request
            by_client = call.by_client_order_id
            order_id = await self._order_id(request.account, request.order_id, by_client)
            change = msgspec.structs.replace(request, order_id=order_id)
            await service.amend(change, tracking=tracking)
        elif isinstance(call, Fund):
            await service.deposit(call.account, call.currency, call.amount, tracking=tracking)
        elif isinstance(call, Kill):
            await service.kill_switch(call.account, on=call.on, tracking=tracking)
        return False

    async def _order_id(self, account: int, reference: str, by_client_order_id: bool) -> str:
        if not by_client_order_id:
            return reference
        submitted = (await self.service.book(account)).submissions.get(reference)
        if submitted is None:
            raise ServiceError(UNKNOWN_ORDER, f"no order with client order id {reference!r}")
        return submitted.order_id

    def _refused(self, planned: Planned, code: str, field: str | None, message: str) -> None:
        self.stats["refused"] += 1
        log.warning(
            "commands: %s at %s for account %s refused: %s%s: %s",
            planned.kind, planned.origin, planned.account, code,
            f" ({field})" if field else "", message[:200],
        )  # fmt: skip
