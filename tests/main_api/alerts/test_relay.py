"""The relay's fast path (real PostgreSQL): a round's firings handed from memory after its
commit are published at once and not again by the relay's rounds, which still publish what
came before them and move the position past them; a round rolled back (a fenced owner) is
never handed, so its firings reach ``alerts.events`` once, from the round stored after it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest

from core.alerts import AlertFired, Condition, decode_fired
from core.topic_codecs import TICKS_CODEC
from core.topics import ALERTS_EVENTS, TICKS
from main_api.alerts.relay import FiredRelay
from main_api.alerts.runner import EvaluatorService, EvaluatorSettings
from main_api.alerts.states import claim
from main_api.settings import PlanLimits
from main_api.store import MainStore, Recorded, record_firings
from main_api.tables import fired_of
from streams.bus import BusError, Subscription
from streams.memory import MemoryBus
from streams.outage import Backoff
from tests.main_api.alerts.factories import INSTRUMENT, SECOND, T0, alert, ticks
from tests.mdp.test_synthetic_up import wait_for


@pytest.fixture
async def store(schema: tuple[str, str]) -> AsyncIterator[MainStore]:
    async with MainStore.open(*schema) as opened:
        yield opened


def firing(alert_id: str, arming: int = 1) -> AlertFired:
    return AlertFired(
        fire_id=f"{alert_id}:{arming}", alert_id=alert_id, account=1, instrument=INSTRUMENT,
        condition=Condition.ABOVE, threshold=Decimal("100"), price=Decimal("100.25"),
        ts=T0, trade_id=7,
    )  # fmt: skip


async def recorded(store: MainStore, *alert_ids: str) -> Recorded:
    """A round's firings recorded and committed."""
    async with store.transaction() as conn:
        return await record_firings(conn, [firing(a) for a in alert_ids], 1)


async def fire_ids(events: Subscription, timeout: float = 0.3) -> list[str]:
    return [decode_fired(r.value).fire_id for r in await events.poll(100, timeout)]


async def position(store: MainStore) -> int:
    async with store.transaction() as conn:
        row = await (await conn.execute("SELECT seq FROM main_api_relay")).fetchone()
        return -1 if row is None else int(row["seq"])


async def test_a_handed_round_is_published_at_once_and_not_again_by_the_relay(
    store: MainStore,
) -> None:
    async with MemoryBus(partitions=2) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        relay = FiredRelay(store, bus)
        assert await relay.publish_pending() == 0  # nothing yet: the position row is made
        round_ = await recorded(store, "a", "b")
        assert [event.fire_id for _, event in round_.new] == ["a:1", "b:1"]
        assert relay.hand(round_) is True
        assert await relay.publish_handed() == 2
        got = [decode_fired(r.value) for r in await events.poll(100, 0.5)]
        # what the fast path published is what the relay would have read back
        async with store.transaction() as conn:
            rows = await (
                await conn.execute("SELECT * FROM main_api_fired ORDER BY seq")
            ).fetchall()
        assert got == [fired_of(row) for row in rows]
        # the relay's round reads nothing new, publishes nothing, moves past the round
        assert await relay.publish_pending() == 1
        assert await fire_ids(events) == []
        assert await position(store) == round_.new[-1][0]
        assert (relay.published, relay.handed_out, relay.handed) == (0, 2, set())
        assert await relay.publish_pending() == 0


async def test_the_relay_publishes_what_came_before_a_handed_round_and_only_that(
    store: MainStore,
) -> None:
    async with MemoryBus(partitions=2) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        relay = FiredRelay(store, bus)
        await recorded(store, "other")  # committed elsewhere: never handed here
        mine = await recorded(store, "a", "b")
        relay.hand(mine)
        # a round of the table does not pass a round handed and not yet published
        assert await relay.publish_pending() == 3
        assert await fire_ids(events) == ["other:1"]
        assert await position(store) == mine.after
        await relay.publish_handed()
        assert await fire_ids(events) == ["a:1", "b:1"]
        assert await relay.publish_pending() == 1  # passed the handed round without reading it
        assert await position(store) == mine.new[-1][0]
        later = await recorded(store, "c")
        assert later.after == mine.new[-1][0]
        relay.hand(later)
        await relay.publish_handed()
        assert await fire_ids(events) == ["c:1"]
        assert await relay.publish_pending() == 1  # moved past it without reading it
        assert await position(store) == later.new[-1][0]
        assert await fire_ids(events) == []


async def test_a_round_the_position_passed_before_its_hand_is_not_published_again(
    store: MainStore,
) -> None:
    """Another instance's relay published the rows (read back) before this one handed them:
    this relay's next round forgets them and publishes nothing."""
    async with MemoryBus(partitions=2) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        mine, other = FiredRelay(store, bus), FiredRelay(store, bus)
        round_ = await recorded(store, "a")
        assert await other.publish_pending() == 1
        mine.hand(round_)
        await mine.publish_handed()
        assert await fire_ids(events) == ["a:1", "a:1"]  # the same fire_id: consumers drop it
        assert await mine.publish_pending() == 0
        assert (mine.handed, await fire_ids(events)) == (set(), [])


async def test_a_fenced_round_is_never_handed_and_its_firing_goes_out_once(
    store: MainStore, schema: tuple[str, str]
) -> None:
    url = schema[0]
    await store.create_alert(
        alert("x", "cross-up", "100"), PlanLimits(watchlists=5, instruments=50, alerts=20), "pro"
    )
    stop = asyncio.Event()
    async with MemoryBus(partitions=1) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        topic = bus.topic(TICKS)
        await topic.publish(*TICKS_CODEC.record(ticks(["99"])))
        service = EvaluatorService(store, bus, url, EvaluatorSettings(poll_timeout=0.05))
        service.backoff = Backoff(0.05, 0.1)
        task = asyncio.create_task(service.run(stop))
        try:
            await wait_for(lambda: service.hook is not None and service.stats.rounds > 0)
            await wait_for(lambda: service.stats.timings)  # the first tick's round stored
            # another owner claims the partition: this one's next round is fenced
            async with store.transaction() as conn:
                await claim(conn, f"{service.settings.group}@{bus.cluster_id}", TICKS, 0, 5)
            await topic.publish(*TICKS_CODEC.record(ticks(["100"], first_id=2, start=T0 + SECOND)))
            await wait_for(lambda: service.stats.recorded == 1)
            assert service.stats.restarts >= 1  # the fenced round was rolled back
            got = await fire_ids(events, 1.0) + await fire_ids(events, 0.6)
            assert got == ["x:1"]
            assert (service.relay.handed_out, service.relay.published) == (1, 0)
        finally:
            stop.set()
            await task


async def test_a_round_handed_after_the_relay_published_it_is_not_published_again(
    store: MainStore,
) -> None:
    """The relay's round read the rows before the evaluator handed them over (the hand
    comes a little after the commit)."""
    async with MemoryBus(partitions=2) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        relay = FiredRelay(store, bus)
        round_ = await recorded(store, "a", "b")
        assert await relay.publish_pending() == 2
        relay.hand(round_)
        assert await relay.publish_handed() == 0
        assert await fire_ids(events) == ["a:1", "b:1"]
        assert await relay.publish_pending() == 0


async def test_a_hand_past_the_queue_is_refused_and_left_to_the_table(store: MainStore) -> None:
    async with MemoryBus(partitions=2) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        relay = FiredRelay(store, bus, max_queued=2)
        first, second = await recorded(store, "a", "b"), await recorded(store, "c")
        assert (relay.hand(first), relay.hand(second)) == (True, False)
        assert await relay.publish_handed() == 2
        assert await relay.publish_pending() == 1  # c, read back
        assert await fire_ids(events) == ["a:1", "b:1", "c:1"]
        assert (relay.handed_out, relay.published) == (2, 1)


class _Flaky(FiredRelay):
    """A relay whose next publish fails once ``failing`` is set (the bus away)."""

    failing = False

    async def _publish(self, events: Sequence[AlertFired]) -> None:
        if _Flaky.failing:
            _Flaky.failing = False
            raise BusError("the bus is away")
        await super()._publish(events)


async def test_what_the_relay_holds_is_bounded_and_every_firing_goes_out_once_in_order(
    store: MainStore,
) -> None:
    """The table behind (a round of it every third round, 2 rows a transaction), a fast
    publish failing once: the firings held in memory stay within ``max_held`` (past it a
    round, and every one after it until the position passes it, is left to the table), and
    every firing reaches ``alerts.events`` once, in ``seq`` order."""
    async with MemoryBus(partitions=1) as bus, bus.subscribe("check", [ALERTS_EVENTS]) as events:
        relay = _Flaky(store, bus, batch=2, max_held=5)
        expected: list[str] = []
        held, refused, by_bound = 0, 0, 0
        for i in range(15):
            round_ = await recorded(store, *[f"r{i}-{j}" for j in range(1 + i % 3)])
            expected += [event.fire_id for _, event in round_.new]
            refused += not relay.hand(round_)
            held = max(held, len(relay.handed) + len(relay._queued_seqs))
            if i == 10:
                by_bound, _Flaky.failing = refused, True
            with contextlib.suppress(BusError):
                await relay.publish_handed()
            if i % 3 == 2:  # the table behind: two of its transactions every third round
                await relay.publish_pending()
                await relay.publish_pending()
        while await relay.publish_pending():
            await relay.publish_handed()
        got: list[str] = []
        while batch := await fire_ids(events):
            got += batch
        assert got == expected
        assert 0 < held <= 5
        assert 0 < by_bound < refused  # refused past the bound, and after the failure
        assert min(relay.handed_out, relay.published) > 0  # both ways were taken
        assert (relay.handed, len(relay._runs)) == (set(), 0)
