"""``trading.commands`` through the processor loop into the service (the in-process bus, a
real PostgreSQL): each command's outcome reaches ``trading.events`` once; a refused command
is counted and the loop goes on; an order the risk check refuses leaves its ``order-denied``;
and the same records again after a crash (processed, not committed) store nothing more."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from core import trading_commands as tc
from core.topic_codecs import TRADING_COMMANDS_CODEC, codec_for
from core.topics import TRADING_COMMANDS, TRADING_EVENTS
from core.trading_events import (
    OrderCanceled,
    OrderDenied,
    OrderSide,
    OrderSubmitted,
    OrderType,
    TradingEvent,
    kind_of,
)
from streams.bus import Bus
from streams.memory import MemoryBus
from streams.processor import Processor
from streams.producer import send
from trading.commands import COMMANDS_GROUP, Applying, Planned, command_step
from trading.paper.matcher import PaperMatcher
from trading.service.shell import TradingService
from trading.store.database import Database
from trading.store.log import NotificationLog
from trading.store.outbox import OutboxPublisher

D = Decimal
ACCOUNT = 7
XBT = "KRAKEN:XBTUSDT"


def limit_buy(client_order_id: str, quantity: str = "0.5") -> tc.PlaceOrder:
    return tc.PlaceOrder(
        account=ACCOUNT, client_order_id=client_order_id, instrument=XBT, side=OrderSide.BUY,
        type=OrderType.LIMIT, quantity=D(quantity), price=D(48000),
    )  # fmt: skip


SESSION: list[tc.TradingCommand] = [
    tc.Deposit(account=ACCOUNT, currency="USDT", amount=D(100_000)),
    limit_buy("bot-1"),
    limit_buy("bot-1"),  # a producer's retry: another record, the same order
    limit_buy("bot-big", quantity="30"),  # 1.44 million: above max-notional, denied
    tc.CancelOrder(account=ACCOUNT, client_order_id="bot-1"),
    tc.CancelOrder(account=ACCOUNT, client_order_id="bot-1"),  # done: not-open, no event
    tc.AmendOrder(account=ACCOUNT, client_order_id="nobody", quantity=D(1)),  # unknown-order
    tc.SetKillSwitch(account=ACCOUNT, on=True),
    limit_buy("bot-2"),  # denied: kill-switch
]
GARBAGE = (str(ACCOUNT).encode(), b"\xc1 not a command")


def processor(service: TradingService, database: Database, bus: Bus) -> Processor[list[Planned]]:
    applying = Applying(service, database, COMMANDS_GROUP, bus.cluster_id)
    return Processor(bus, COMMANDS_GROUP, [TRADING_COMMANDS], command_step, applying)


async def published(database: Database, bus: Bus) -> list[TradingEvent]:
    """Every event the outbox has published on ``trading.events`` so far."""
    await OutboxPublisher(NotificationLog(database), bus.topic(TRADING_EVENTS)).drain()
    async with bus.subscribe("check", [TRADING_EVENTS]) as subscription:
        records = await subscription.poll(10_000, timeout=0.5)
    codec = codec_for(TRADING_EVENTS)
    return [codec.decode(record.value).event for record in records]


async def test_commands_reach_trading_events_once_and_a_replay_after_a_crash_stores_nothing(
    database: Database,
) -> None:
    async with MemoryBus() as bus:
        await send(bus, TRADING_COMMANDS_CODEC, SESSION[:4])
        await bus.topic(TRADING_COMMANDS).publish(*GARBAGE)
        # a limit order without its price (an unknown field is ignored): the domain refuses it
        bad = tc.encode_command(limit_buy("bot-bad")).replace(b"\xa5price", b"\xa5pric_")
        await bus.topic(TRADING_COMMANDS).publish(str(ACCOUNT).encode(), bad)
        await send(bus, TRADING_COMMANDS_CODEC, SESSION[4:])

        # the first process: every record applied, then it dies before the commit
        first = processor(TradingService(database, PaperMatcher()), database, bus)
        assert isinstance(first.durability, Applying)
        await first.durability.start()
        async with bus.subscribe(COMMANDS_GROUP, [TRADING_COMMANDS]) as subscription:
            polled = await subscription.poll(1000, timeout=1.0)
            assert len(polled) == len(SESSION) + 2
            await first.handle(polled)  # no commit: the process is gone
        assert first.durability.stats == Counter(applied=5, denied=2, refused=4)

        events = await published(database, bus)
        kinds = Counter(kind_of(event) for event in events)
        submitted = [e.client_order_id for e in events if isinstance(e, OrderSubmitted)]
        assert sorted(submitted) == ["bot-1", "bot-2", "bot-big"]  # one order each
        denials = {e.order_id: e.reason_code for e in events if isinstance(e, OrderDenied)}
        orders = {e.client_order_id: e.order_id for e in events if isinstance(e, OrderSubmitted)}
        assert denials == {orders["bot-big"]: "max-notional", orders["bot-2"]: "kill-switch"}
        canceled = [e.order_id for e in events if isinstance(e, OrderCanceled)]
        assert canceled == [orders["bot-1"]]  # the second cancel stored nothing
        assert (kinds["funds-deposited"], kinds["kill-switch-set"]) == (1, 1)

        # the restart: a new service, the same group, the records again (never committed)
        service = TradingService(database, PaperMatcher())
        await service.resume()
        second = processor(service, database, bus)
        second.drain()
        await second.run()
        assert isinstance(second.durability, Applying)
        assert second.durability.stats == Counter(replayed=len(SESSION) + 2)
        assert await published(database, bus) == events  # nothing stored, nothing published

        # the offsets are committed now: a third run reads nothing
        third = processor(service, database, bus)
        third.drain()
        await third.run()
        assert isinstance(third.durability, Applying)
        assert third.durability.stats == Counter()


async def test_a_member_whose_positions_are_stale_applies_nothing_another_stored(
    database: Database,
) -> None:
    async with MemoryBus() as bus:
        await send(bus, TRADING_COMMANDS_CODEC, SESSION)
        late = processor(TradingService(database, PaperMatcher()), database, bus)
        await late.durability.start()  # before anything was applied: it knows no position
        first = processor(TradingService(database, PaperMatcher()), database, bus)
        first.drain()
        await first.run()
        stored = await published(database, bus)
        async with bus.subscribe("another member", [TRADING_COMMANDS]) as subscription:
            await late.handle(await subscription.poll(1000, timeout=1.0))
        assert isinstance(late.durability, Applying)
        assert late.durability.stats == Counter(replayed=len(SESSION))
        assert await published(database, bus) == stored
