"""What the evaluator hands over and what it follows: :meth:`MainStore.record_firing` keeps a
firing and its notification once however often it is told (a replay, a second evaluator);
notifications are read and unread; the change feed gives every alert change in order, and
``NOTIFY``s it."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import msgspec
import psycopg

from core.alerts import AlertSpec
from main_api.changes import AlertChanges, AlertGone, follow
from main_api.store import record_firings_in
from main_api.tables import FIRED_COLUMNS, NOTIFY_CHANNEL, firings_document
from tests.main_api.conftest import ALICE, Api
from tests.main_api.test_accounts import ABOVE, fired_for


async def test_a_firing_is_recorded_once_however_often_it_comes(api: Api) -> None:
    alice = api.client(ALICE)
    rearm = {**ABOVE, "arming": "rearm", "cooldown_s": 60}
    alert_id = (await alice.post("/alerts", json=rearm)).json()["alert"]["alert_id"]
    first, second = fired_for(ALICE, alert_id, 1), fired_for(ALICE, alert_id, 2)
    told = await asyncio.gather(*(api.store.record_firing(first) for _ in range(4)))
    assert sorted(told) == [False, False, False, True]
    assert await api.store.record_firing(second) is True
    assert await api.store.record_firing(first) is False
    fired = (await alice.get(f"/alerts/{alert_id}/fired")).json()
    assert [(f["fire_id"], f["price"], f["trade_id"]) for f in fired["fired"]] == [
        (f"{alert_id}:1", "100.5", 7), (f"{alert_id}:2", "100.5", 7)
    ]  # fmt: skip
    page = (await alice.get(f"/alerts/{alert_id}/fired", params={"limit": 1})).json()
    rest = await alice.get(f"/alerts/{alert_id}/fired", params={"after": page["next_after"]})
    assert [f["fire_id"] for f in rest.json()["fired"]] == [f"{alert_id}:2"]
    # a re-arming alert stays active
    assert (await alice.get(f"/alerts/{alert_id}")).json()["alert"]["status"] == "active"
    listed = (await alice.get("/notifications")).json()
    assert [n["fire_id"] for n in listed["notifications"]] == [f"{alert_id}:2", f"{alert_id}:1"]
    assert listed["unread"] == 2


def test_a_rounds_document_keeps_each_fire_id_once_in_order_with_exact_decimals() -> None:
    first = fired_for(ALICE, "a-1")
    repeat = msgspec.structs.replace(first, price=Decimal("1"))
    other = msgspec.structs.replace(
        fired_for(ALICE, "a-2"), price=Decimal("0.000000012345678901234567"), trade_id=None,
        candle_open_time=1_700_000_000_000_000_000, gap=True,
    )  # fmt: skip
    rows = json.loads(firings_document([first, other, repeat]))
    # every column the statement reads from a document is a key of it (``recorded_at`` apart)
    assert set(FIRED_COLUMNS) - set(rows[0]) == {"recorded_at"}
    assert [(r["fire_id"], Decimal(r["price"])) for r in rows] == [
        ("a-1:1", Decimal("100.5")), ("a-2:1", Decimal("0.000000012345678901234567"))
    ]  # fmt: skip
    assert (rows[1]["trade_id"], rows[1]["candle_open_time"], rows[1]["gap"]) == (
        None, 1_700_000_000_000_000_000, True
    )  # fmt: skip


async def test_a_round_recorded_in_one_statement_reads_back_exactly(api: Api) -> None:
    alice = api.client(ALICE)
    rearm = {**ABOVE, "arming": "rearm", "cooldown_s": 60}
    alert_id = (await alice.post("/alerts", json=rearm)).json()["alert"]["alert_id"]
    candle = msgspec.structs.replace(
        fired_for(ALICE, alert_id, 2), threshold=Decimal("1.5E+2"),
        price=Decimal("0.000000012345678901234567"), trade_id=None, candle_open_time=60, gap=True,
    )  # fmt: skip
    async with api.store.transaction() as conn:
        new = await record_firings_in(conn, [fired_for(ALICE, alert_id), candle], now_ns=9)
    assert new == [f"{alert_id}:1", f"{alert_id}:2"]
    fired = (await alice.get(f"/alerts/{alert_id}/fired")).json()["fired"]
    got = [
        (f["fire_id"], f["threshold"], Decimal(f["price"]), f["trade_id"], f["gap"]) for f in fired
    ]
    assert got == [
        (f"{alert_id}:1", "100", Decimal("100.5"), 7, False),
        (f"{alert_id}:2", "150", Decimal("0.000000012345678901234567"), None, True),
    ]  # fmt: skip
    assert fired[1]["candle_open_time"] == 60
    listed = (await alice.get("/notifications")).json()
    assert [n["fire_id"] for n in listed["notifications"]] == [f"{alert_id}:2", f"{alert_id}:1"]


async def test_notifications_are_marked_read_one_or_all(api: Api) -> None:
    alice = api.client(ALICE)
    ids = [(await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"] for _ in "abc"]
    for alert_id in ids:
        await api.store.record_firing(fired_for(ALICE, alert_id))
    one = await alice.post(f"/notifications/{ids[0]}:1/read")
    assert one.status_code == 200, one.text
    assert one.json()["notification"]["read"] is True
    unread = (await alice.get("/notifications", params={"unread": "true"})).json()
    assert ([n["fire_id"] for n in unread["notifications"]], unread["unread"]) == (
        [f"{ids[2]}:1", f"{ids[1]}:1"], 2
    )  # fmt: skip
    page = (await alice.get("/notifications", params={"limit": 2})).json()
    older = await alice.get("/notifications", params={"before": page["next_before"]})
    assert [n["fire_id"] for n in older.json()["notifications"]] == [f"{ids[0]}:1"]
    assert (await alice.post("/notifications/read")).json() == {"marked": 2}
    assert (await alice.post("/notifications/read")).json() == {"marked": 0}
    after = (await alice.get("/notifications")).json()
    assert after["unread"] == 0
    assert all(n["read"] for n in after["notifications"])


async def test_the_change_feed_gives_every_alert_change_in_order(
    api: Api, schema: tuple[str, str]
) -> None:
    url, _ = schema
    alice = api.client(ALICE)
    changes = AlertChanges(api.store)
    assert await changes.changes_after(0) == ([], 0)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        a = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
        b = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
        c = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
        await alice.put(f"/alerts/{a}", json={**ABOVE, "threshold": "200"})
        await alice.delete(f"/alerts/{b}")
        await api.store.record_firing(fired_for(ALICE, c))
        heard = []
        async with asyncio.timeout(1.0):
            async for note in listener.notifies():
                heard.append(int(note.payload))
                if len(heard) == 6:
                    break
    assert heard == sorted(heard)
    got, last = await changes.changes_after(0)
    assert last == heard[-1]
    assert [(type(item).__name__, item.alert_id) for item in got] == [
        ("AlertSpec", a), ("AlertGone", b), ("AlertGone", c)
    ]  # fmt: skip
    assert isinstance(got[0], AlertSpec)
    assert str(got[0].threshold) == "200"
    assert isinstance(got[2], AlertGone)
    assert got[2].status == "fired"
    early, middle = await changes.changes_after(0, limit=1)
    assert [item.alert_id for item in early] == [a]
    rest, end = await changes.changes_after(middle)
    assert ([item.alert_id for item in rest], end) == ([b, c], last)
    assert await changes.changes_after(last) == ([], last)


async def test_a_follower_hears_of_a_change_within_a_second(
    api: Api, schema: tuple[str, str]
) -> None:
    url, _ = schema
    alice = api.client(ALICE)
    before = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
    stop = asyncio.Event()
    batches = follow(AlertChanges(api.store), url, 0, stop)
    first, _ = await anext(batches)
    assert [item.alert_id for item in first] == [before]
    await asyncio.sleep(0.1)  # the follower waits on its LISTEN now
    loop = asyncio.get_running_loop()
    started = loop.time()
    made = (await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"]
    async with asyncio.timeout(1.0):
        second, last = await anext(batches)
    assert [item.alert_id for item in second] == [made]
    assert loop.time() - started < 1.0
    stop.set()
    await batches.aclose()
    assert (await AlertChanges(api.store).changes_after(last)) == ([], last)
