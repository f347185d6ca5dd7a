"""The chart page of `mdp up` signs in, in a real headless Chromium: the platform with its
edge (a real HAProxy), its auth service and PostgreSQL. Anonymous visitors watch the demo
plan live; an account signs up (the signup plan, delayed), another signs in on a real-time
plan and sees live candles with its token on every request; signing out is anonymous again.
The screenshot is kept in ``artifacts/chart-signed-in.png``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest

from auth.settings import AuthSettings
from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.secrets import DatabaseUrl
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from mdp.front import haproxy_missing
from tests.charting.test_chart_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.charting.test_chart_page import pytestmark as browser_marks
from tests.mdp.running import running_platform
from tests.mdp.test_up_command import MDP

pytestmark = [
    *browser_marks,
    pytest.mark.skipif(haproxy_missing() is not None, reason=str(haproxy_missing())),
]

WAIT_MS = 20_000
ACCESS_TTL_S = 10
"""Short, so that the page renews its token (at four fifths of its lifetime) within the test."""
PASSWORD = "correct horse battery"  # a test account's
PLAN = ".mdp-session-plan"
ANONYMOUS = "demo plan (anonymous) · real-time"


def settings_of(database: str, auth: AuthSettings) -> PlatformSettings:
    return PlatformSettings(
        database_url=DatabaseUrl(database),
        feed=FeedSettings(instruments=("SYNTH:BTCUSD",), rate=50.0, history=1800.0),
        engine=EngineConfig(intervals=parse_intervals(["1s", "1m"])),
        auth=auth,
        http_port=0,
        ws_port=0,
    )


@pytest.fixture
async def platform(migrated_database: str) -> AsyncIterator[Platform]:
    auth = AuthSettings(access_ttl_s=ACCESS_TTL_S)
    async with running_platform(settings_of(migrated_database, auth)) as running:
        yield running


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Any]:
    """A page of a real headless Chromium; the page's errors must stay none."""
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1100, "height": 600})
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        await browser.close()
    assert errors == []


async def sign_in(page: Any, email: str, button: str = ".mdp-session-sign-in") -> None:
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click(button)


async def plan_shown(page: Any, text: str) -> None:
    await page.wait_for_function(
        f"(document.querySelector('{PLAN}') || {{}}).textContent === '{text}'", timeout=WAIT_MS
    )


def create_account(database: str, email: str, plan: str) -> None:
    """`mdp auth create-account`, as an operator runs it (the password on stdin)."""
    done = subprocess.run(
        [str(MDP), "auth", "create-account", email, "--plan", plan],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def live_candles(page: Any) -> None:
    """The chart is live and draws candles that keep coming."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await page.wait_for_function(
            "window.mdpChart && window.mdpChart.state() === 'live'"
            " && window.mdpChart.lastSeq() !== null",  # a chart started afresh has none yet
            timeout=WAIT_MS,
        )
    except PlaywrightTimeout:
        shown = await page.evaluate(
            "[window.mdpChart && window.mdpChart.state(), window.mdpChartError,"
            " document.body.innerText.slice(0, 400)]"
        )
        raise AssertionError(f"the chart is not live: {shown}") from None
    first = await page.evaluate("window.mdpChart.lastSeq()")
    await page.wait_for_function(
        f"window.mdpChart.lastSeq() > {first} && window.mdpChart.data().length >= 3",
        timeout=WAIT_MS,
    )


async def test_the_chart_signs_in_shows_the_plan_and_signs_out(
    platform: Platform, migrated_database: str
) -> None:
    create_account(migrated_database, "pro@example.org", "pro")
    assert platform.chart_url is not None
    async with chromium_page() as page:
        history: list[dict[str, str]] = []  # the headers of the history requests

        def sent(request: Any) -> None:
            if "/udf/history" in request.url:
                history.append(request.headers)

        page.on("request", sent)
        await page.goto(f"{platform.chart_url}?instrument=SYNTH:BTCUSD&interval=1s")

        # anonymous: the demo plan, live, no token anywhere
        await live_candles(page)
        await plan_shown(page, ANONYMOUS)
        assert history
        assert all("authorization" not in headers for headers in history)

        # sign up: the signup plan, 15 minutes delayed
        await sign_in(page, "new@example.org", ".mdp-session-sign-up")
        await plan_shown(page, "free plan · delayed 15 min")
        assert await page.text_content(".mdp-session-who") == "new@example.org"
        await page.click(".mdp-session-sign-out")
        await plan_shown(page, ANONYMOUS)

        # sign in on a real-time plan: live candles, the token on history and the WebSocket
        history.clear()
        await sign_in(page, "pro@example.org")
        await plan_shown(page, "pro plan · real-time")
        await page.wait_for_function(
            "window.mdpChart.plan() && window.mdpChart.plan().name === 'pro'", timeout=WAIT_MS
        )  # the gateway's `authenticated` answer to the page's `auth` frame
        await live_candles(page)
        token = await page.evaluate("window.mdpSession.token()")
        assert token
        assert history
        assert all(h.get("authorization") == f"Bearer {token}" for h in history)

        # the token is renewed before it expires, on the same connection (an auth frame);
        # the chart stays live past the first token's expiry
        connects = await page.evaluate("window.mdpChart.connects()")
        await page.wait_for_function(
            f"window.mdpSession.token() && window.mdpSession.token() !== '{token}'",
            timeout=ACCESS_TTL_S * 1000,
        )
        await asyncio.sleep(ACCESS_TTL_S * 0.3)
        await live_candles(page)
        assert await page.evaluate("window.mdpChart.connects()") == connects
        assert await page.text_content(PLAN) == "pro plan · real-time"
        token = await page.evaluate("window.mdpSession.token()")
        stored = await page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
        )
        assert token not in stored
        assert stored == "[[],[]]"
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "chart-signed-in.png"))

        # sign out: anonymous again, live on the demo plan
        history.clear()
        await page.click(".mdp-session-sign-out")
        await plan_shown(page, ANONYMOUS)
        assert await page.evaluate("window.mdpSession.token()") is None
        await live_candles(page)
        assert await page.evaluate("window.mdpChart.plan()") is None
        assert history
        assert all("authorization" not in headers for headers in history)


async def test_without_an_anonymous_plan_the_chart_waits_for_a_sign_in(
    migrated_database: str,
) -> None:
    create_account(migrated_database, "pro@example.org", "pro")
    auth = AuthSettings(plans=AuthSettings().plans.with_anonymous(None))
    async with (
        running_platform(settings_of(migrated_database, auth)) as platform,
        chromium_page() as page,
    ):
        await page.goto(f"{platform.chart_url}?instrument=SYNTH:BTCUSD&interval=1s")
        await plan_shown(page, "sign in to see the market")
        assert await page.evaluate("window.mdpChart === undefined")
        await sign_in(page, "pro@example.org")
        await plan_shown(page, "pro plan · real-time")
        await live_candles(page)
