"""A newcomer's first minute: ``mdp up`` on a fresh data folder, its chart in a real headless
Chromium about 10 s and 60 s after the start. The chart is full at once on 1m (the synthetic
market's history), volume sits in its own band below the candles, ``1s`` is on the interval
menu, and nothing the page asks for is missing (no favicon 404).

The screenshots are kept in ``artifacts/first-minute-10s.png`` and ``-60s.png``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from pathlib import Path

from machine import stop_process
from tests.charting.test_chart_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, pytestmark
from tests.mdp.test_up_command import MDP, data_dir

__all__ = ["data_dir", "pytestmark"]  # the fixture; the skip conditions of the chart tests

CHART = re.compile(r"chart: (http://\S+)")
FIRST_LOOK = 10.0
"""Seconds after the start of ``mdp up`` of the first screenshot ..."""
SECOND_LOOK = 60.0
"""... and of the second."""
AT_START = 100
"""Candles the 1m chart shows at least at the first look."""
WAIT_MS = 30_000


def chart_url(process: subprocess.Popen[bytes], log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        found = CHART.findall(log.read_text())
        if found:
            return str(found[-1])
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"no chart line in time:\n{log.read_text()}")


async def until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def test_the_first_minute_of_mdp_up_shows_a_full_chart(
    data_dir: Path, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    log = tmp_path / "up.log"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    started = time.monotonic()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(MDP), "up", "--data-dir", str(data_dir), "--http-port", "0", "--ws-port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = chart_url(process, log, started + FIRST_LOOK + 20)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            await until(started + FIRST_LOOK - 3)
            await page.goto(url)  # a newcomer opens the URL mdp up printed
            await page.wait_for_function(
                f"window.mdpChart && window.mdpChart.state() === 'live'"
                f" && window.mdpChart.data().length >= {AT_START}",
                timeout=WAIT_MS,
            )
            await until(started + FIRST_LOOK)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "first-minute-10s.png"))
            first = await page.evaluate("window.mdpChart.data()")
            assert await page.evaluate("window.mdpChart.interval()") == "1m"
            assert len(first) >= AT_START
            assert all(bar["low"] <= min(bar["open"], bar["close"]) for bar in first)
            assert all(bar["high"] >= max(bar["open"], bar["close"]) for bar in first)
            # Volume in its own band below the candles: the two scales' margins do not overlap.
            bands = await page.evaluate("window.mdpChart.bands()")
            assert bands["candles"]["bottom"] >= 1 - bands["volume"]["top"]
            assert bands["volume"]["bottom"] == 0
            menu = await page.locator(".mdp-chart-interval option").all_inner_texts()
            assert menu[:2] == ["1s", "1m"]

            await until(started + SECOND_LOOK)
            await page.screenshot(path=str(ARTIFACTS / "first-minute-60s.png"))
            later = await page.evaluate("window.mdpChart.data()")
            assert len(later) >= len(first)
            assert later[-1]["time"] >= first[-1]["time"]  # it moved on live
            assert await page.evaluate("window.mdpChart.updates()") > 0
            await browser.close()
        assert problems == []
    finally:
        assert stop_process(process, 60) == 0, log.read_text()
