"""The newcomer's first look: `mdp up`'s chart in a real headless Chromium moves on the
synthetic feed within seconds. The screenshot is kept in ``artifacts/chart-live.png``."""

from __future__ import annotations

import asyncio
import io

from core.engine import EngineConfig
from core.intervals import parse_intervals
from core.secrets import DatabaseUrl
from mdp.embedded import FeedSettings, Platform, PlatformSettings
from tests.charting.test_chart_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, pytestmark

__all__ = ["pytestmark"]  # the same skip conditions: Debian's chromium and lightweight-charts

WAIT_MS = 20_000


async def test_the_chart_of_mdp_up_moves_on_the_synthetic_feed(migrated_database: str) -> None:
    from playwright.async_api import async_playwright

    settings = PlatformSettings(
        database_url=DatabaseUrl(migrated_database),
        feed=FeedSettings(instruments=("SYNTH:BTCUSD",), rate=50.0),
        engine=EngineConfig(intervals=parse_intervals(["1s", "1m"])),
        http_port=0,
        ws_port=0,
    )
    platform = Platform(settings, io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    try:
        while platform.chart_url is None:
            assert not running.done(), running.exception()
            await asyncio.sleep(0.05)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            page = await browser.new_page(viewport={"width": 1000, "height": 600})
            await page.goto(f"{platform.chart_url}?instrument=SYNTH:BTCUSD&interval=1s")
            await page.wait_for_function(  # the page's module may not have run yet
                "window.mdpChart && window.mdpChart.state() === 'live'", timeout=WAIT_MS
            )
            first = await page.evaluate("window.mdpChart.lastSeq()")
            await page.wait_for_function(
                f"window.mdpChart.lastSeq() > {first} && window.mdpChart.data().length >= 3",
                timeout=WAIT_MS,
            )
            bars = await page.evaluate("window.mdpChart.data()")
            assert all(bar["low"] <= bar["high"] for bar in bars)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "chart-live.png"))
            await browser.close()
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
