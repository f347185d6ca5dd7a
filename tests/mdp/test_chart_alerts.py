"""The chart page's watchlist and price alerts, in a real headless Chromium, against `mdp up`'s
platform (a real HAProxy in front, the auth service, the main API, the alert evaluator on the
synthetic market, the gateway's `alerts` channel, PostgreSQL): an account signs in, watches
the instrument shown, sets two alerts by clicking the chart a little above and a little below
the last close, and sees the one the market reaches first fire: a toast, and the alert's line
marked, while the other stays armed. What the page shows is checked against the main API.
The screenshot is kept in ``artifacts/chart-alert-fired.png``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from auth.settings import AuthSettings
from mdp.embedded import Platform
from tests.charting.test_chart_page import ARTIFACTS
from tests.mdp.running import running_platform
from tests.mdp.test_chart_sign_in import (
    WAIT_MS,
    chromium_page,
    create_account,
    live_candles,
    plan_shown,
    settings_of,
    sign_in,
)
from tests.mdp.test_chart_sign_in import pytestmark as browser_marks

pytestmark = browser_marks

INSTRUMENT = "SYNTH:BTCUSD"
OFFSET_BP = 5
"""How far from the last close the two alerts are set, in basis points, one above (`cross-up`)
and one below (`cross-down`): the walk leaves that band within seconds, whichever way it goes.
The figures: the platform's synthetic market ticks 50 times a second (``settings_of``), each
step uniform over whole price units in about +-1 bp of the price (``ingest/synthetic.py``),
so a standard deviation of 1/sqrt(3) = 0.58 bp a tick and 0.58 * sqrt(50) = 4.1 bp a
second. A walk leaves a band of +-d after d^2 / sigma^2 on average: (5 / 4.1)^2 = 1.5 s; it
is still inside after t with a chance below 4/pi * exp(-pi^2 sigma^2 t / (8 d^2)): after
:data:`FIRE_WAIT_MS` below e^-49, and below 1% even on a machine ten times too slow to keep
5 ticks a second. Small enough to stay on the chart: the 1s candles' scale spans tens of bp
(a couple of minutes of the walk) with 8% of the pane kept above them and 26% below."""
FIRE_WAIT_MS = 60_000
"""The first crossing takes seconds (:data:`OFFSET_BP`); a minute leaves room for a slow
machine."""
CLICK_GAP_MS = 700
"""Between two clicks on the chart: lightweight-charts takes a second click within 500 ms of
the first for the start of a double click, not a click (``Delay.ResetClick``)."""
VERBS = {"cross-up": "crossed up through", "cross-down": "crossed down through"}


@pytest.fixture
async def platform(migrated_database: str) -> AsyncIterator[Platform]:
    async with running_platform(settings_of(migrated_database, AuthSettings())) as running:
        yield running


async def main_api(platform: Platform, page: Any, path: str) -> Any:
    """GET a main API route with the page's own access token."""
    token = await page.evaluate("window.mdpSession.token()")
    assert platform.main_api_url is not None
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(
            platform.main_api_url + path, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def set_alert_by_click(page: Any, bp: int) -> float:
    """Arm the panel and click the middle of the chart ``bp`` basis points from the last
    close (read right before), at the height the candles' scale draws it; the price aimed at.
    The point must be on the chart's canvas, not under anything drawn over it."""
    await page.wait_for_timeout(CLICK_GAP_MS)  # a click, not the second of a double click
    await page.click(".mdp-alerts-arm")
    last: float | None = await page.evaluate("window.mdpChart.lastClose()")
    assert last is not None, "no candle on the chart yet"
    price = last * (1 + bp / 10_000)
    y = await page.evaluate(f"window.mdpChart.priceToY({price})")
    box = await page.locator(".mdp-chart-canvas").bounding_box()
    assert y is not None, f"{price} is not on the chart's scale"
    assert 0 < y < box["height"], f"{price} is drawn at y={y}, outside the chart {box}"
    x, y = box["x"] + box["width"] * 0.5, box["y"] + y
    on_canvas = await page.evaluate(
        "(p) => document.querySelector('.mdp-chart-canvas')"
        ".contains(document.elementFromPoint(p[0], p[1]))",
        [x, y],
    )
    assert on_canvas, f"({x}, {y}) is not on the chart's canvas"
    await page.mouse.click(x, y)
    return price


async def line_of(page: Any, alert_id: str) -> dict[str, Any]:
    """The price line the page draws for an alert."""
    line: dict[str, Any]
    (line,) = [
        line
        for line in await page.evaluate("window.mdpAlerts.lines()")
        if line["alert_id"] == alert_id
    ]
    return line


async def status_of(platform: Platform, page: Any, alert_id: str) -> str:
    status: str = (await main_api(platform, page, f"/alerts/{alert_id}"))["alert"]["status"]
    return status


def toasted(toasts: list[str], alerts: list[dict[str, Any]]) -> dict[str, str]:
    """Each toast's alert: alert id -> the toast. Every toast must be one alert's, one each."""
    by_alert: dict[str, str] = {}
    for toast in toasts:
        ids = [
            alert["alert_id"]
            for alert in alerts
            if toast.startswith(f"{INSTRUMENT} {VERBS[alert['condition']]} {alert['threshold']}: ")
        ]
        assert len(ids) == 1, f"the toast {toast!r} is not one alert's of {alerts}"
        alert_id = ids[0]
        assert alert_id not in by_alert, f"two toasts of one alert: {toasts}"
        by_alert[alert_id] = toast
    return by_alert


async def check_fired(platform: Platform, page: Any, alert: dict[str, Any], toast: str) -> None:
    """A fired alert: its line marked, its firing in the history, matching its toast."""
    alert_id = alert["alert_id"]
    await page.wait_for_function(
        "(id) => window.mdpAlerts.lines().some("
        "l => l.alert_id === id && l.title.startsWith('fired'))",
        arg=alert_id,
        timeout=WAIT_MS,
    )
    (fired,) = (await main_api(platform, page, f"/alerts/{alert_id}/fired"))["fired"]
    price, threshold = Decimal(fired["price"]), Decimal(alert["threshold"])
    assert price >= threshold if alert["condition"] == "cross-up" else price <= threshold
    assert toast.endswith(f": {fired['price']}")
    assert await status_of(platform, page, alert_id) == "fired"


async def test_alerts_set_on_the_chart_fire_with_a_toast_and_a_marked_line(
    platform: Platform, migrated_database: str
) -> None:
    create_account(migrated_database, "pro@example.org", "pro")
    assert platform.chart_url is not None
    async with chromium_page() as page:
        await page.goto(f"{platform.chart_url}?instrument={INSTRUMENT}&interval=1s")
        await live_candles(page)
        assert await page.text_content(".mdp-alerts-note") == (
            "Sign in to keep a watchlist and set price alerts."
        )
        await sign_in(page, "pro@example.org")
        await plan_shown(page, "pro plan · real-time")
        await live_candles(page)

        # watch the instrument shown: the panel lists it, and the main API keeps it
        await page.click(".mdp-alerts-watch")
        await page.wait_for_selector(f'li[data-instrument="{INSTRUMENT}"]', timeout=WAIT_MS)
        kept = await main_api(platform, page, "/watchlists")
        assert [w["instruments"] for w in kept["watchlists"]] == [[INSTRUMENT]]

        # the `alerts` channel is live, then two alerts set by clicks: above the last close
        # (the page makes it `cross-up`), below it (`cross-down`)
        await page.wait_for_function("window.mdpAlerts.live()", timeout=WAIT_MS)
        aimed = {}
        for condition, bp in (("cross-up", OFFSET_BP), ("cross-down", -OFFSET_BP)):
            aimed[condition] = await set_alert_by_click(page, bp)
            await page.wait_for_function(
                f"window.mdpAlerts.lines().length === {len(aimed)}"
                " || document.querySelector('.mdp-alerts-error').textContent !== ''",
                timeout=WAIT_MS,
            )
            assert await page.text_content(".mdp-alerts-error") == ""
        alerts = (await main_api(platform, page, "/alerts"))["alerts"]
        assert sorted(alert["condition"] for alert in alerts) == ["cross-down", "cross-up"]
        for alert in alerts:
            assert alert["instrument"] == INSTRUMENT
            assert alert["status"] in ("active", "fired")  # one may fire at once
            price = aimed[alert["condition"]]
            assert abs(Decimal(alert["threshold"]) - Decimal(str(price))) < Decimal(
                str(price * OFFSET_BP / 2 / 10_000)
            ), f"{alert} set far from {price}"
            line = await line_of(page, alert["alert_id"])
            assert Decimal(str(line["price"])) == Decimal(alert["threshold"])
            assert line["title"].startswith(("alert", "fired"))

        # the market reaches one of them: a toast, the line marked, the history recorded; the
        # other's line stays armed and the alert active, unless it fired too (then the same)
        await page.wait_for_function("window.mdpAlerts.toasts().length >= 1", timeout=FIRE_WAIT_MS)
        checked: set[str] = set()
        while True:
            toasts = toasted(await page.evaluate("window.mdpAlerts.toasts()"), alerts)
            for alert in alerts:
                if alert["alert_id"] in toasts and alert["alert_id"] not in checked:
                    await check_fired(platform, page, alert, toasts[alert["alert_id"]])
                    checked.add(alert["alert_id"])
            moved = False
            for alert in alerts:  # the others: the line first, then the alert, both armed
                if alert["alert_id"] in checked:
                    continue
                line = await line_of(page, alert["alert_id"])
                moved = moved or not (
                    line["title"].startswith("alert")
                    and await status_of(platform, page, alert["alert_id"]) == "active"
                )
            shown = len(await page.evaluate("window.mdpAlerts.toasts()"))
            if not moved and shown == len(checked):
                break
            # one fired while they were looked at: its toast comes, and it is checked as fired
            await page.wait_for_function(
                f"window.mdpAlerts.toasts().length > {len(checked)}", timeout=WAIT_MS
            )
        assert checked, "no alert fired"
        # a toast on the page for each firing told, one an alert (the other alert may fire
        # after the loop above: both read in one turn of the page, so they agree)
        told, on_page = await page.evaluate(
            "[window.mdpAlerts.toasts(), document.querySelectorAll('.mdp-alerts-toast').length]"
        )
        assert on_page == len(told)
        assert checked <= toasted(told, alerts).keys()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "chart-alert-fired.png"))
