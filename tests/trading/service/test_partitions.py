"""Services partitioned by account on one database (real PostgreSQL): each resumes and serves
only its own accounts and refuses the others ``wrong-partition``; their outboxes, reading the
one shared log, publish every event exactly once between them."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import msgspec
import pytest

from core import trading_commands as tc
from core.partitions import Partition
from core.topic_codecs import TRADING_COMMANDS_CODEC, codec_for
from core.topics import TRADING_COMMANDS, TRADING_EVENTS
from streams.memory import MemoryBus
from streams.processor import Processor
from streams.producer import send
from tests.trading.service.scenario import BUY, LIMIT, order, settings
from trading.commands import COMMANDS_GROUP, Applying, Planned, command_step, commands_group
from trading.followers import outbox_readers
from trading.paper.matcher import PaperMatcher
from trading.service.book import owns_stream, unpublished
from trading.service.saga import ServiceError
from trading.service.shell import WRONG_PARTITION, TradingService
from trading.store.database import Database
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher, OutboxSettings

ACCOUNTS = (1, 2, 3, 4, 5)
HALVES = (Partition(0, 2), Partition(1, 2))


async def opened(database: Database) -> dict[int, str]:
    """Each account funded with one limit buy resting at the venue (by a whole service);
    the order id of each."""
    whole = TradingService(database, PaperMatcher(settings()))
    ids = {}
    for account in ACCOUNTS:
        await whole.deposit(account, "USDT", Decimal(100_000))
        request = msgspec.structs.replace(
            order(f"o-{account}", BUY, LIMIT, "0.1", price=Decimal(1000)), account=account
        )
        ids[account] = (await whole.place(request)).order.order_id
    return ids


async def test_a_partition_resumes_and_serves_only_its_accounts(database: Database) -> None:
    ids = await opened(database)
    for partition in HALVES:
        service = TradingService(database, PaperMatcher(settings()), partition=partition)
        assert await service.resume() == 0  # nothing left to drive, but the venue is rebuilt
        for account in ACCOUNTS:
            if partition.owns(account):
                canceled = await service.cancel(account, ids[account])  # its venue holds it
                assert canceled.status.value == "canceled"
            else:
                with pytest.raises(ServiceError) as refused:
                    await service.order(account, ids[account])
                assert refused.value.code == WRONG_PARTITION
                assert f"partition {account % 2}/2" in refused.value.message


async def test_partitioned_outboxes_publish_every_event_exactly_once(database: Database) -> None:
    await opened(database)
    log = NotificationLog(database)
    stored = [(n.id, str(n.originator_id)) for n in log.after(0, 1000)]
    async with MemoryBus() as bus:
        topic = bus.topic(TRADING_EVENTS)
        for partition in HALVES:
            publisher = OutboxPublisher(
                log, topic, settings=OutboxSettings(name=f"outbox{partition.suffix()}", batch=7),
                keep=lambda n, p=partition: owns_stream(p, str(n.originator_id)),  # type: ignore[misc]
            )  # fmt: skip
            await publisher.drain()
            assert log.position(publisher.settings.name) == stored[-1][0]  # read past the rest
        async with bus.subscribe("check", [TRADING_EVENTS]) as subscription:
            records = await subscription.poll(10_000, timeout=1.0)
    codec = codec_for(TRADING_EVENTS)
    published = Counter((r.notification_id, r.aggregate_id) for r in map(codec.decode, (
        record.value for record in records)))  # fmt: skip
    assert published == Counter(stored)


def consumer(database: Database, bus: MemoryBus, partition: Partition) -> Processor[list[Planned]]:
    """``partition``'s consumer of ``trading.commands``, set to stop once caught up."""
    service = TradingService(database, PaperMatcher(settings()), partition=partition)
    applying = Applying(service, database, COMMANDS_GROUP, bus.cluster_id)
    group = commands_group(partition, COMMANDS_GROUP)
    processor = Processor(bus, group, [TRADING_COMMANDS], command_step, applying)
    processor.drain()
    return processor


async def rounds(database: Database, bus: MemoryBus, *partitions: Partition) -> Counter[str]:
    """Each partition's consumer run over the topic; their outcomes added up."""
    total: Counter[str] = Counter()
    for partition in partitions:
        processor = consumer(database, bus, partition)
        await processor.run()
        assert isinstance(processor.durability, Applying)
        total += processor.durability.stats
    return total


def deposits(amount: int) -> list[tc.TradingCommand]:
    return [tc.Deposit(account=a, currency="USD", amount=Decimal(amount)) for a in ACCOUNTS]


async def test_each_command_is_applied_once_by_its_owner_across_repartitions(
    database: Database,
) -> None:
    """One instance, then two, then three, each new partitioning in consumer groups of its
    own that read the topic from its start: every command is applied once, by the partition
    that owns its account when it comes, and skipped by every later owner."""
    thirds = tuple(Partition(index, 3) for index in range(3))
    async with MemoryBus(partitions=2) as bus:
        await send(bus, TRADING_COMMANDS_CODEC, deposits(1))
        assert await rounds(database, bus, Partition()) == Counter(applied=len(ACCOUNTS))
        await send(bus, TRADING_COMMANDS_CODEC, deposits(2))
        by_halves = await rounds(database, bus, *HALVES)
        assert by_halves == Counter(
            replayed=len(ACCOUNTS), applied=len(ACCOUNTS), **{"other-partition": 2 * len(ACCOUNTS)}
        )
        await send(bus, TRADING_COMMANDS_CODEC, deposits(3))
        by_thirds = await rounds(database, bus, *thirds)
        assert by_thirds == Counter(
            replayed=2 * len(ACCOUNTS), applied=len(ACCOUNTS),
            **{"other-partition": 2 * 3 * len(ACCOUNTS)},
        )  # fmt: skip
        # and again: the new groups' own positions and offsets hold
        assert await rounds(database, bus, *thirds) == Counter()
    for account in ACCOUNTS:
        book = await TradingService(database, PaperMatcher()).book(account)
        assert book.account.cash == {"USD": Decimal(6)}, account  # 1 + 2 + 3, each once


async def test_a_new_partitioning_publishes_only_what_no_earlier_owner_published(
    database: Database,
) -> None:
    """One outbox, then two, then three, each with readers of its own (their positions read
    at start, as ``mdp trading serve`` does): every event is on the topic once."""
    log = NotificationLog(database)
    base = OutboxSettings().name
    thirds = tuple(Partition(index, 3) for index in range(3))
    async with MemoryBus() as bus:
        topic = bus.topic(TRADING_EVENTS)

        async def publish(*partitions: Partition) -> None:
            readers = outbox_readers(log)
            for partition in partitions:
                keep = unpublished(partition, readers)
                await OutboxPublisher(
                    log, topic, settings=OutboxSettings(name=base + partition.suffix(), batch=3),
                    keep=lambda n, keep=keep: keep(str(n.originator_id), n.id),  # type: ignore[misc]
                ).drain()  # fmt: skip

        await opened(database)
        await publish(Partition())
        service = TradingService(database, PaperMatcher(settings()))
        for account in ACCOUNTS:
            await service.deposit(account, "USD", Decimal(1))
        await publish(*HALVES)
        for account in ACCOUNTS:
            await service.deposit(account, "USD", Decimal(2))
        await publish(*thirds)
        await publish(*thirds)  # again: nothing new
        async with bus.subscribe("check", [TRADING_EVENTS]) as subscription:
            records = await subscription.poll(10_000, timeout=1.0)
    codec = codec_for(TRADING_EVENTS)
    published = Counter(codec.decode(record.value).notification_id for record in records)
    assert published == Counter(n.id for n in log.after(0, 1000))
