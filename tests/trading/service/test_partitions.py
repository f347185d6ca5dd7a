"""Services partitioned by account on one database (real PostgreSQL): each resumes and serves
only its own accounts and refuses the others ``wrong-partition``; their outboxes, reading the
one shared log, publish every event exactly once between them."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import msgspec
import pytest

from core.partitions import Partition
from core.topic_codecs import codec_for
from core.topics import TRADING_EVENTS
from streams.memory import MemoryBus
from tests.trading.service.scenario import BUY, LIMIT, order, settings
from trading.paper.matcher import PaperMatcher
from trading.service.book import owns_stream
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
