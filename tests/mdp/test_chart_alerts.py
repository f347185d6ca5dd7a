"""The chart page's watchlist and price alerts, in a real headless Chromium, against `mdp up`'s
platform (a real HAProxy in front, the auth service, the main API, the alert evaluator on the
synthetic market, the gateway's `alerts` channel, PostgreSQL): an account signs in, watches
the instrument shown, sets an alert by clicking the chart at a price, and sees it fire: a
toast, and the alert's line marked. What the page shows is checked against the main API.
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
FIRE_WAIT_MS = 60_000
"""The synthetic market walks back across a price near its last close within seconds; a
minute leaves room for a slow machine."""


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


async def click_at_price(page: Any, price: float) -> None:
    """Click the middle of the chart at the height the candles' scale draws ``price``."""
    y = await page.evaluate(f"window.mdpChart.priceToY({price})")
    assert y is not None, "the price is not on the chart's scale"
    box = await page.locator(".mdp-chart-canvas").bounding_box()
    await page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + y)


async def test_an_alert_set_on_the_chart_fires_with_a_toast_and_a_marked_line(
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

        # the `alerts` channel is live, then an alert at the last close, set by a click
        await page.wait_for_function("window.mdpAlerts.live()", timeout=WAIT_MS)
        last = await page.evaluate("window.mdpChart.lastClose()")
        await page.click(".mdp-alerts-arm")
        await click_at_price(page, last)
        await page.wait_for_function("window.mdpAlerts.lines().length === 1", timeout=WAIT_MS)
        (alert,) = (await main_api(platform, page, "/alerts"))["alerts"]
        assert alert["instrument"] == INSTRUMENT
        assert alert["condition"] in ("cross-up", "cross-down")
        assert alert["status"] == "active"
        (line,) = await page.evaluate("window.mdpAlerts.lines()")
        assert line["alert_id"] == alert["alert_id"]
        assert Decimal(str(line["price"])) == Decimal(alert["threshold"])
        assert line["title"].startswith("alert")

        # it fires on the synthetic market: a toast, the line marked, the history recorded
        await page.wait_for_function("window.mdpAlerts.toasts().length >= 1", timeout=FIRE_WAIT_MS)
        (toast,) = await page.evaluate("window.mdpAlerts.toasts()")
        verb = "crossed up through" if alert["condition"] == "cross-up" else "crossed down through"
        assert toast.startswith(f"{INSTRUMENT} {verb} {alert['threshold']}: ")
        await page.wait_for_function(
            "window.mdpAlerts.lines()[0].title.startsWith('fired')", timeout=WAIT_MS
        )
        (fired,) = (await main_api(platform, page, f"/alerts/{alert['alert_id']}/fired"))["fired"]
        price, threshold = Decimal(fired["price"]), Decimal(alert["threshold"])
        assert price >= threshold if alert["condition"] == "cross-up" else price <= threshold
        assert toast.endswith(f": {fired['price']}")
        assert (await main_api(platform, page, f"/alerts/{alert['alert_id']}"))["alert"][
            "status"
        ] == "fired"
        assert await page.locator(".mdp-alerts-toast").count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "chart-alert-fired.png"))
