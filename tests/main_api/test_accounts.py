"""Accounts apart and within their plan: one account never sees or changes another's
watchlists, alerts or notifications (404, as for what does not exist), and each plan's
limits hold (403 ``plan-limit`` naming what is full, and the plan's instrument patterns)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from core.alerts import AlertFired, Condition
from main_api.settings import DEFAULT_PLAN_LIMITS
from tests.main_api.conftest import ALICE, BOB, Api, refusal

ABOVE = {"instrument": "SYNTH:BTCUSD", "condition": "above", "threshold": "100"}


def fired_for(account: int, alert_id: str, arming: int = 1) -> AlertFired:
    return AlertFired(
        fire_id=f"{alert_id}:{arming}", alert_id=alert_id, account=account,
        instrument="SYNTH:BTCUSD", condition=Condition.ABOVE, threshold=Decimal("100"),
        price=Decimal("100.5"), ts=1_700_000_000_000_000_000, trade_id=7,
    )  # fmt: skip


async def test_an_account_never_sees_or_changes_anothers_things(api: Api) -> None:
    alice, bob = api.client(ALICE), api.client(BOB)
    await alice.put("/profile", json={"display_name": "Alice"})
    watchlist = (await alice.post("/watchlists", json={"name": "mine"})).json()["watchlist"]
    alert = (await alice.post("/alerts", json=ABOVE)).json()["alert"]
    await api.store.record_firing(fired_for(ALICE, alert["alert_id"]))
    w, a = f"/watchlists/{watchlist['watchlist_id']}", f"/alerts/{alert['alert_id']}"
    fire_id = f"{alert['alert_id']}:1"

    assert (await bob.get("/profile")).json()["profile"]["display_name"] == ""
    assert (await bob.get("/watchlists")).json()["watchlists"] == []
    assert (await bob.get("/alerts")).json()["alerts"] == []
    assert (await bob.get("/notifications")).json()["notifications"] == []
    assert refusal(await bob.get(w), 404) == ("unknown-watchlist", "watchlist_id")
    assert refusal(await bob.patch(w, json={"name": "theirs"}), 404)[0] == "unknown-watchlist"
    assert refusal(await bob.delete(w), 404)[0] == "unknown-watchlist"
    order = {"order": [watchlist["watchlist_id"]]}
    assert refusal(await bob.put("/watchlists/order", json=order), 404)[0] == "unknown-watchlist"
    assert refusal(await bob.get(a), 404) == ("unknown-alert", "alert_id")
    assert refusal(await bob.put(a, json=ABOVE), 404)[0] == "unknown-alert"
    assert refusal(await bob.delete(a), 404)[0] == "unknown-alert"
    assert refusal(await bob.get(f"{a}/fired"), 404)[0] == "unknown-alert"
    read = await bob.post(f"/notifications/{fire_id}/read")
    assert refusal(read, 404) == ("unknown-notification", "fire_id")
    assert (await bob.post("/notifications/read")).json() == {"marked": 0}

    # and Alice's are as she left them
    assert (await alice.get(w)).json()["watchlist"]["name"] == "mine"
    assert (await alice.get(a)).json()["alert"]["status"] == "fired"
    mine = (await alice.get("/notifications", params={"unread": "true"})).json()
    assert ([n["fire_id"] for n in mine["notifications"]], mine["unread"]) == ([fire_id], 1)


async def test_the_plans_limits_hold(api: Api) -> None:
    demo = DEFAULT_PLAN_LIMITS["demo"]
    alice = api.client(ALICE, plan="demo")
    made = [await alice.post("/watchlists", json={"name": f"w{i}"}) for i in range(demo.watchlists)]
    assert [answer.status_code for answer in made] == [201] * demo.watchlists
    over = await alice.post("/watchlists", json={"name": "one more"})
    assert refusal(over, 403) == ("plan-limit", "watchlists")
    assert over.json()["limit"] == demo.watchlists
    first = made[0].json()["watchlist"]["watchlist_id"]
    assert (await alice.delete(f"/watchlists/{first}")).status_code == 204
    assert (await alice.post("/watchlists", json={"name": "again"})).status_code == 201

    many = {"instruments": [f"SYNTH:X{i}" for i in range(demo.instruments + 1)]}
    too_many = await alice.patch(f"/watchlists/{made[1].json()['watchlist']['watchlist_id']}",
                                 json=many)  # fmt: skip
    assert refusal(too_many, 403) == ("plan-limit", "instruments")
    assert too_many.json()["limit"] == demo.instruments

    alerts = [await alice.post("/alerts", json=ABOVE) for _ in range(demo.alerts)]
    assert [answer.status_code for answer in alerts] == [201] * demo.alerts
    assert refusal(await alice.post("/alerts", json=ABOVE), 403) == ("plan-limit", "alerts")
    # an alert that fired for good, or was deleted, no longer counts
    await api.store.record_firing(fired_for(ALICE, alerts[0].json()["alert"]["alert_id"]))
    await alice.delete(f"/alerts/{alerts[1].json()['alert']['alert_id']}")
    assert [(await alice.post("/alerts", json=ABOVE)).status_code for _ in range(3)] == [
        201, 201, 403
    ]  # fmt: skip
    # a pro account beside it is not limited by Alice's plan
    assert (await api.client(BOB).post("/alerts", json=ABOVE)).status_code == 201


async def test_concurrent_creations_cannot_pass_the_limit(api: Api) -> None:
    demo = DEFAULT_PLAN_LIMITS["demo"]
    alice = api.client(ALICE, plan="demo")
    answers = await asyncio.gather(
        *(alice.post("/alerts", json=ABOVE) for _ in range(demo.alerts + 4))
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * demo.alerts + [403] * 4


async def test_an_instrument_outside_the_plan_is_refused(api: Api) -> None:
    alice = api.client(ALICE, plan="demo")
    body = {"name": "w", "instruments": ["SYNTH:BTCUSD", "KRAKEN:XBTUSDT"]}
    answer = await alice.post("/watchlists", json=body)
    assert refusal(answer, 403) == ("instrument-not-in-plan", "instruments[1]")
    alert = await alice.post("/alerts", json={**ABOVE, "instrument": "KRAKEN:XBTUSDT"})
    assert refusal(alert, 403) == ("instrument-not-in-plan", "instrument")
    pro = api.client(BOB)
    assert (await pro.post("/watchlists", json=body)).status_code == 201
