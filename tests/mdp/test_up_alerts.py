"""``mdp up`` fires price alerts on the synthetic market: the evaluator runs inside, from the
end of the history, and an alert set while it runs fires, is recorded once and is published
on ``alerts.events`` (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from core.alerts import AlertSpec, Condition, decode_fired
from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.secrets import DatabaseUrl
from core.topics import ALERTS_EVENTS
from main_api.settings import PlanLimits
from main_api.store import MainStore
from mdp.embedded import FeedSettings, PlatformSettings
from tests.mdp.running import printed, running_platform
from tests.mdp.test_synthetic_up import BTC, wait_for


async def test_an_alert_set_on_mdp_up_fires_on_the_synthetic_market(
    migrated_database: str,
) -> None:
    settings = PlatformSettings(
        database_url=DatabaseUrl(migrated_database),
        feed=FeedSettings(instruments=(BTC,), rate=20.0, history=60.0),
        engine=EngineConfig(intervals=parse_intervals(["1m"])),
        http_port=0,
        ws_port=0,
        edge=False,
    )
    async with running_platform(settings) as platform:
        await wait_for(lambda: "alerts: evaluating" in printed(platform))
        assert platform.bus is not None
        assert platform.evaluator is not None
        async with (
            platform.bus.subscribe("check", [ALERTS_EVENTS]) as events,
            MainStore.open(migrated_database) as store,
        ):
            spec = AlertSpec(
                alert_id="a-up", account=7, instrument=BTC, condition=Condition.ABOVE,
                threshold=Decimal("0.01"),
            )  # fmt: skip
            await store.create_alert(spec, PlanLimits(1, 1, 1), "pro")
            records = await events.poll(10, timeout=5.0)
            assert [decode_fired(r.value).fire_id for r in records] == ["a-up:1"]
            assert (await store.alert(7, "a-up")).status == "fired"
            await asyncio.sleep(0.5)
            assert platform.evaluator.stats.recorded == 1
