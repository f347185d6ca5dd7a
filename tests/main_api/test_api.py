"""The main API over HTTP (real PostgreSQL, the guarded server): each resource's create,
read, update and delete; refusals that name the field with our code; tokens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.main_api.conftest import ALICE, Api, problem_of, refusal
from tests.support import tokens


async def test_the_profile_has_defaults_and_keeps_what_is_set(api: Api) -> None:
    alice = api.client(ALICE)
    first = await alice.get("/profile")
    assert first.json() == {
        "profile": {"display_name": "", "time_zone": "UTC", "default_interval": "1m"}
    }
    put = await alice.put("/profile", json={"display_name": " Alice ", "time_zone": "Europe/Paris"})
    assert put.status_code == 200, put.text
    assert put.json()["profile"] == {
        "display_name": "Alice", "time_zone": "Europe/Paris", "default_interval": "1m"
    }  # fmt: skip
    await alice.put("/profile", json={"default_interval": "5m"})
    assert (await alice.get("/profile")).json()["profile"] == {
        "display_name": "Alice", "time_zone": "Europe/Paris", "default_interval": "5m"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown-time-zone", "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "unknown-time-zone", "time_zone"),
        ({"default_interval": "60s"}, "unknown-interval", "default_interval"),
        ({"default_interval": "7m"}, "unknown-interval", "default_interval"),
        ({"display_name": "x" * 65}, "too-long", "display_name"),
        ({"display_name": "a\u0000b"}, "format", "display_name"),
        ({"display_name": 5}, "type", "display_name"),
        ({"email": "a@b"}, "forbidden", "email"),
    ],
)
async def test_a_bad_profile_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], code: str, field: str
) -> None:
    alice = api.client(ALICE)
    assert refusal(await alice.put("/profile", json=body), 422) == (code, field)
    assert (await alice.get("/profile")).json()["profile"]["time_zone"] == "UTC"


async def test_a_body_that_is_not_an_object_is_refused(api: Api) -> None:
    alice = api.client(ALICE)
    answer = await alice.put("/profile", content=b"[1, 2]")
    assert refusal(answer, 422) == ("format", "body")
    too_big = await alice.put("/profile", content=b" " * (64 * 1024 + 1))
    assert problem_of(too_big, 413)["status"] == 413  # the guarded server refuses it first


async def test_watchlists_are_created_renamed_filled_reordered_and_deleted(api: Api) -> None:
    alice = api.client(ALICE)
    made = await alice.post("/watchlists", json={"name": "Majors", "instruments": ["synth:btcusd"]})
    assert made.status_code == 201, made.text
    majors = made.json()["watchlist"]
    assert (majors["name"], majors["instruments"], majors["position"]) == (
        "Majors", ["SYNTH:BTCUSD"], 0
    )  # fmt: skip
    other = (await alice.post("/watchlists", json={"name": "Other"})).json()["watchlist"]
    assert (other["instruments"], other["position"]) == ([], 1)
    renamed = await alice.patch(f"/watchlists/{majors['watchlist_id']}", json={"name": "Big"})
    assert renamed.json()["watchlist"]["name"] == "Big"
    filled = await alice.patch(
        f"/watchlists/{majors['watchlist_id']}",
        json={"instruments": ["BINANCE:BTCUSDT", "SYNTH:BTCUSD", "SYNTH:ETHUSD"]},
    )
    assert filled.json()["watchlist"]["instruments"] == [
        "BINANCE:BTCUSDT", "SYNTH:BTCUSD", "SYNTH:ETHUSD"
    ]  # fmt: skip
    order = [other["watchlist_id"], majors["watchlist_id"]]
    reordered = await alice.put("/watchlists/order", json={"order": order})
    assert reordered.status_code == 200, reordered.text
    assert [w["watchlist_id"] for w in reordered.json()["watchlists"]] == order
    listed = (await alice.get("/watchlists")).json()["watchlists"]
    assert [(w["name"], w["position"]) for w in listed] == [("Other", 0), ("Big", 1)]
    got = await alice.get(f"/watchlists/{majors['watchlist_id']}")
    assert got.json()["watchlist"]["instruments"][0] == "BINANCE:BTCUSDT"
    assert (await alice.delete(f"/watchlists/{other['watchlist_id']}")).status_code == 204
    assert refusal(await alice.get(f"/watchlists/{other['watchlist_id']}"), 404) == (
        "unknown-watchlist", "watchlist_id"
    )  # fmt: skip
    assert [w["name"] for w in (await alice.get("/watchlists")).json()["watchlists"]] == ["Big"]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "required", "name"),
        ({"name": "  "}, "required", "name"),
        ({"name": "a", "instruments": "SYNTH:BTCUSD"}, "type", "instruments"),
        ({"name": "a", "instruments": ["SYNTH:BTCUSD", "btc"]}, "format", "instruments[1]"),
        ({"name": "a", "instruments": ["SYNTH:BTCUSD", "synth:btcusd"]}, "duplicate",
         "instruments[1]"),
        ({"name": "a", "instruments": ["SYNTH:NOPE"]}, "unknown-instrument", "instruments[0]"),
        ({"name": "a", "instruments": ["X:Y"] * 501}, "too-many", "instruments"),
    ],
)  # fmt: skip
async def test_a_bad_watchlist_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], code: str, field: str
) -> None:
    alice = api.client(ALICE)
    assert refusal(await alice.post("/watchlists", json=body), 422) == (code, field)
    assert (await alice.get("/watchlists")).json()["watchlists"] == []


async def test_a_reorder_must_name_every_watchlist_once(api: Api) -> None:
    alice = api.client(ALICE)
    ids = [
        (await alice.post("/watchlists", json={"name": name})).json()["watchlist"]["watchlist_id"]
        for name in ("a", "b")
    ]
    assert refusal(await alice.put("/watchlists/order", json={"order": ids[:1]}), 409) == (
        "incomplete-order", "order"
    )  # fmt: skip
    assert refusal(await alice.put("/watchlists/order", json={"order": [ids[0], "w-x"]}), 404) == (
        "unknown-watchlist", "order"
    )  # fmt: skip
    assert refusal(await alice.put("/watchlists/order", json={"order": [ids[0]] * 2}), 422) == (
        "duplicate", "order"
    )  # fmt: skip


ABOVE = {"instrument": "SYNTH:BTCUSD", "condition": "above", "threshold": "50000.50"}


async def test_alerts_are_created_read_replaced_and_deleted(api: Api) -> None:
    alice = api.client(ALICE)
    made = await alice.post("/alerts", json=ABOVE)
    assert made.status_code == 201, made.text
    alert = made.json()["alert"]
    alert_id = alert["alert_id"]
    assert alert_id.startswith("a-")
    assert {k: alert[k] for k in ("instrument", "condition", "threshold", "source", "arming",
                                  "status", "window_s", "cooldown_s", "expires_at")} == {
        "instrument": "SYNTH:BTCUSD", "condition": "above", "threshold": "50000.50",
        "source": "ticks", "arming": "once", "status": "active", "window_s": 0,
        "cooldown_s": 0, "expires_at": None,
    }  # fmt: skip
    assert (await alice.get(f"/alerts/{alert_id}")).json()["alert"] == alert
    move = {"instrument": "SYNTH:ETHUSD", "condition": "move-up", "threshold": 2.5,
            "window_s": 300, "source": "candles", "interval": "1m", "arming": "rearm",
            "cooldown_s": 600}  # fmt: skip
    replaced = await alice.put(f"/alerts/{alert_id}", json=move)
    assert replaced.status_code == 200, replaced.text
    changed = replaced.json()["alert"]
    assert [changed[k] for k in ("alert_id", "condition", "threshold", "interval")] == [
        alert_id, "move-up", "2.5", "1m"
    ]  # fmt: skip
    listed = (await alice.get("/alerts")).json()
    assert [a["alert_id"] for a in listed["alerts"]] == [alert_id]
    assert (await alice.get(f"/alerts/{alert_id}/fired")).json() == {
        "fired": [], "next_after": None
    }  # fmt: skip
    assert (await alice.delete(f"/alerts/{alert_id}")).status_code == 204
    assert (await alice.get("/alerts")).json()["alerts"] == []
    deleted = (await alice.get("/alerts", params={"status": "deleted"})).json()["alerts"]
    assert [(a["alert_id"], a["status"]) for a in deleted] == [(alert_id, "deleted")]
    assert (await alice.get(f"/alerts/{alert_id}")).json()["alert"]["status"] == "deleted"
    assert refusal(await alice.delete(f"/alerts/{alert_id}"), 404) == ("unknown-alert", "alert_id")
    assert refusal(await alice.put(f"/alerts/{alert_id}", json=ABOVE), 404)[0] == "unknown-alert"


async def test_an_alert_past_its_expiry_reads_expired(api: Api) -> None:
    alice = api.client(ALICE)
    now = api.store.clock()
    made = await alice.post("/alerts", json={**ABOVE, "expires_at": now + 10**9})
    alert_id = made.json()["alert"]["alert_id"]
    api.store.clock = lambda: now + 2 * 10**9
    assert (await alice.get(f"/alerts/{alert_id}")).json()["alert"]["status"] == "expired"
    listed = (await alice.get("/alerts", params={"status": "expired"})).json()["alerts"]
    assert [a["alert_id"] for a in listed] == [alert_id]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"instrument": None}, "required", "instrument"),
        ({"instrument": "nope"}, "format", "instrument"),
        ({"instrument": "SYNTH:NOPE"}, "unknown-instrument", "instrument"),
        ({"condition": "sideways"}, "unknown", "condition"),
        ({"threshold": "-1"}, "not-positive", "threshold"),
        ({"threshold": "abc"}, "not-a-number", "threshold"),
        ({"threshold": "NaN"}, "not-a-number", "threshold"),
        ({"threshold": "1e999"}, "out-of-range", "threshold"),
        ({"source": "candles"}, "required", "interval"),
        ({"source": "candles", "interval": "7m"}, "unknown-interval", "interval"),
        ({"interval": "1m"}, "forbidden", "interval"),
        ({"window_s": 60}, "forbidden", "window_s"),
        ({"condition": "move-down"}, "required", "window_s"),
        ({"condition": "move-down", "window_s": 60, "threshold": "1001"}, "out-of-range",
         "threshold"),
        ({"condition": "move-down", "window_s": 10**9}, "out-of-range", "window_s"),
        ({"arming": "twice"}, "unknown", "arming"),
        ({"cooldown_s": 60}, "forbidden", "cooldown_s"),
        ({"expires_at": 1}, "in-the-past", "expires_at"),
        ({"expires_at": "soon"}, "type", "expires_at"),
        ({"account": 2}, "forbidden", "account"),
        ({"alert_id": "mine"}, "forbidden", "alert_id"),
    ],
)  # fmt: skip
async def test_a_bad_alert_is_refused_naming_the_field(
    api: Api, change: dict[str, Any], code: str, field: str
) -> None:
    alice = api.client(ALICE)
    body = {**ABOVE, **change}
    assert refusal(await alice.post("/alerts", json=body), 422) == (code, field)
    assert (await alice.get("/alerts")).json()["alerts"] == []


async def test_every_route_needs_an_accounts_token(api: Api) -> None:
    anonymous = api.client(None)
    for method, path in [("GET", "/profile"), ("GET", "/watchlists"), ("POST", "/alerts"),
                         ("GET", "/notifications"), ("POST", "/notifications/read")]:  # fmt: skip
        answer = await anonymous.request(method, path)
        assert problem_of(answer, 401)["type"].endswith("/token-required"), path
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    for case, bad in tokens.refused_tokens().items():
        answer = await anonymous.get("/profile", headers={"Authorization": f"Bearer {bad}"})
        assert problem_of(answer, 401)["reason"] == tokens.code_of(case), case
    document = (await anonymous.get("/openapi.json")).json()
    assert "/api/v1/alerts/{alert_id}/fired" in document["paths"]
    assert "AlertView" in document["components"]["schemas"]


async def test_the_alerts_are_listed_in_pages(api: Api) -> None:
    alice = api.client(ALICE)
    ids = [(await alice.post("/alerts", json=ABOVE)).json()["alert"]["alert_id"] for _ in "abc"]
    page = (await alice.get("/alerts", params={"limit": 2})).json()
    assert [a["alert_id"] for a in page["alerts"]] == ids[:2]
    rest = (await alice.get("/alerts", params={"limit": 2, "after": page["next_after"]})).json()
    assert ([a["alert_id"] for a in rest["alerts"]], rest["next_after"]) == (ids[2:], None)
    for bad, code in (({"limit": "0"}, "out-of-range"), ({"limit": "x"}, "format"),
                      ({"after": "-1"}, "format"), ({"status": "gone"}, "unknown")):  # fmt: skip
        field = next(iter(bad))
        assert refusal(await alice.get("/alerts", params=bad), 400) == (code, field)


async def test_an_id_with_a_control_character_is_refused_before_the_database(api: Api) -> None:
    """A NUL reached PostgreSQL (``DataError``): a 500 and a traceback per request."""
    async with api.client(ALICE) as alice:
        path = await alice.get("/watchlists/w%00x")
        assert refusal(path, 422) == ("format", "watchlist_id")
        query = await alice.get("/webhooks/deliveries", params={"webhook_id": "h\x00"})
        assert refusal(query, 400) == ("format", "webhook_id")
