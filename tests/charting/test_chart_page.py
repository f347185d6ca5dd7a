"""The chart page in a real headless Chromium: history from the API, live candles from a
fake gateway speaking the gateway's protocol, a revised bar, candles over a feed gap drawn in
the gap colour, a gap notice, a reconnect with resume.

The screenshot is kept in ``artifacts/chart-page.png``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve

from charting import ApiSettings, create_app
from charting.routes.web import library_path
from charting.settings import WEB_DIR
from core.candles import Candle, CandleStatus
from core.gaps import FeedGap, GapReason
from storage import PostgresReads, PostgresStore
from tests.charting.data import INSTRUMENT, MINUTE, series
from web.server import serving
from ws_gateway.wire import gap_message

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (/usr/bin/chromium): scripts/lib/browser.sh"
        " ensure_chromium installs it",
    ),
    pytest.mark.skipif(
        not library_path(WEB_DIR).is_file(),
        reason="lightweight-charts is not installed: run `npm ci` in charting/web"
        " (scripts/lib/node.sh ensure_node_modules)",
    ),
]


def wire(candle: Candle) -> dict[str, Any]:
    """A candle as the gateway sends it (decimal strings, open time in epoch ms)."""
    return {
        "instrument": candle.instrument,
        "interval": candle.interval.label,
        "open_time": candle.open_time // 1_000_000,
        "open": str(candle.open),
        "high": str(candle.high),
        "low": str(candle.low),
        "close": str(candle.close),
        "volume": str(candle.volume),
        "quote_volume": str(candle.quote_volume),
        "vwap": str(candle.vwap),
        "taker_buy_volume": str(candle.taker_buy_volume),
        "trades": candle.trades,
        "first_trade_id": candle.first_trade_id,
        "last_trade_id": candle.last_trade_id,
        "revision": candle.revision,
        "status": candle.status.value,
        "gap": candle.gap,
    }


@dataclass
class FakeGateway:
    """Speaks docs/protocol.md for one candle channel: a reset snapshot on subscribe, then
    what the test pushes; a resume is answered with a catch-up (``conflated``, then the
    latest candle as an update)."""

    history: list[Candle]
    epoch: str = "feedc0de"
    received: list[dict[str, Any]] = field(default_factory=list)
    connections: list[ServerConnection] = field(default_factory=list)
    seq: int = 0
    resumes: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def frame(self, kind: str, **body: Any) -> str:
        head = {"type": kind, "channel": "candles", "instrument": INSTRUMENT, "interval": "1m"}
        return json.dumps(head | body)

    async def handler(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        async for text in connection:
            message = json.loads(text)
            self.received.append(message)
            op = message.get("op")
            if op in ("subscribe", "resume"):
                await connection.send(self.frame("subscribed", id=message["id"], epoch=self.epoch))
            if op == "subscribe":
                self.seq += 1
                candles = [wire(c) for c in self.history[-message.get("snapshot", 300) :]]
                await connection.send(self.frame("snapshot", epoch=self.epoch, seq=self.seq,
                                                 reset=True, candles=candles))  # fmt: skip
            elif op == "resume":
                self.seq += 3
                await connection.send(self.frame("conflated", dropped=2))
                await connection.send(self.frame("candle", seq=self.seq,
                                                 candle=wire(self.history[-1])))  # fmt: skip
                await self.resumes.put(message)
            elif op == "ping":
                await connection.send(json.dumps({"type": "pong", "id": message["id"]}))

    async def send_gap(self, gap: FeedGap) -> None:
        """A ``gap`` notice, as the gateway encodes it (not numbered)."""
        for connection in self.connections:
            if connection.state.name == "OPEN":
                await connection.send(gap_message(gap).decode())

    async def push(self, candle: Candle, skip: int = 0) -> None:
        """Send ``candle`` as the next update (``skip`` numbers left out: a gap)."""
        self.seq += 1 + skip
        for connection in self.connections:
            if connection.state.name == "OPEN":
                await connection.send(self.frame("candle", seq=self.seq, candle=wire(candle)))


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[FakeGateway, str]]:
    fake = FakeGateway(history=[])
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield fake, f"ws://127.0.0.1:{port}/ws"


async def test_the_chart_draws_history_and_applies_live_updates(
    store: PostgresStore,
    history: PostgresReads,
    gateway: tuple[FakeGateway, str],
) -> None:
    from playwright.async_api import async_playwright

    fake, ws_url = gateway
    now_minute = MINUTE.bucket_start(time.time_ns())
    candles = series(400, start=now_minute - 399 * MINUTE.ns, flat_every=0)
    # The stored history (the open bar is live only); one stored bar, the one history gives
    # before the snapshot, lies in a feed gap: /udf/history flags it in its gap array.
    stored_flagged = msgspec.structs.replace(candles[99], gap=True)
    await store.write(candles=[*candles[:99], stored_flagged, *candles[100:-1]])
    # The gateway knows more: one candle of the snapshot lies in a feed gap (revised, flagged).
    flagged = msgspec.structs.replace(
        candles[-50], gap=True, revision=candles[-50].revision + 1, status=CandleStatus.REVISED
    )
    fake.history = [*candles[:-50], flagged, *candles[-49:]]
    app = create_app(history, ApiSettings(ws_url=ws_url))
    async with serving(app) as server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1100, "height": 560})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{server.url}/?instrument={INSTRUMENT}&interval=1m")

        # History, then the gateway's reset snapshot: it replaces the bars from its first on.
        await page.wait_for_function(
            "window.mdpChart && window.mdpChart.state() === 'live'"
            " && window.mdpChart.lastSeq() === 1",
            timeout=WAIT_MS,
        )
        subscribe = fake.received[0]
        assert subscribe["op"] == "subscribe"
        assert (subscribe["channel"], subscribe["instrument"], subscribe["interval"]) == (
            "candles", INSTRUMENT, "1m",
        )  # fmt: skip
        data = await page.evaluate("window.mdpChart.data()")
        assert len(data) == 301  # one bar of history before the snapshot's 300
        assert [bar["time"] for bar in data] == [c.open_time // 10**9 for c in candles[99:]]
        assert data[-1]["close"] == float(candles[-1].close)

        # The flagged candles are drawn in the gap colour, the others as usual; the legend says so.
        colors = await page.evaluate("window.MdpChart.colors")
        gap_color = colors["gap"]
        assert gap_color not in (colors["up"], colors["down"])
        by_time = {bar["time"]: bar for bar in data}
        in_gap = by_time[flagged.open_time // 10**9]
        assert (in_gap["color"], in_gap["wickColor"], in_gap["borderColor"]) == (gap_color,) * 3
        assert data[0]["color"] == gap_color  # from the history's gap array
        assert [bar["time"] for bar in data if "color" in bar] == [
            stored_flagged.open_time // 10**9,
            flagged.open_time // 10**9,
        ]
        assert await page.evaluate("window.mdpChart.legendShown()")
        legend = page.locator(".mdp-chart-legend")
        assert await legend.is_visible()
        assert await legend.inner_text() == "feed gap: data may be missing"

        # A live update of the open bar changes the last bar.
        last = candles[-1]
        moved = msgspec.structs.replace(
            last, close_raw=last.high_raw + 500, high_raw=last.high_raw + 700, revision=1
        )
        await fake.push(moved)
        await page.wait_for_function(
            f"window.mdpChart.data().at(-1).close === {float(moved.close)}", timeout=WAIT_MS
        )
        assert (await page.evaluate("window.mdpChart.data().at(-1)"))["high"] == float(moved.high)

        # An older revision of it (late, out of order) changes nothing.
        await fake.push(last)
        await page.wait_for_function(f"window.mdpChart.lastSeq() === {fake.seq}", timeout=WAIT_MS)
        assert (await page.evaluate("window.mdpChart.data().at(-1)"))["close"] == float(moved.close)

        # A revised bar behind the newest one replaces it in place.
        older = candles[-10]
        revised = msgspec.structs.replace(
            older, low_raw=older.low_raw - 900, revision=1, status=CandleStatus.REVISED
        )
        await fake.push(revised)
        time_s = older.open_time // 10**9
        await page.wait_for_function(
            f"window.mdpChart.data().find(b => b.time === {time_s}).low === {float(revised.low)}",
            timeout=WAIT_MS,
        )
        assert len(await page.evaluate("window.mdpChart.data()")) == 301

        # A flagged update of the forming bar turns it to the gap colour at once.
        await fake.push(msgspec.structs.replace(moved, gap=True, revision=2))
        await page.wait_for_function(
            f"window.mdpChart.data().at(-1).color === {json.dumps(gap_color)}", timeout=WAIT_MS
        )
        assert (await page.evaluate("window.mdpChart.data().at(-1)"))["close"] == float(moved.close)

        # A gap notice is shown (once, though a resume may repeat it; other instruments' not).
        gap = FeedGap(
            instrument=INSTRUMENT,
            start_ns=last.open_time + 12_345_678_901,
            end_ns=last.open_time + 47_000_000_001,
            reason=GapReason.DISCONNECTED,
            detail="connection reset by peer",
        )
        elsewhere = msgspec.structs.replace(gap, instrument="TEST:ETHUSD")
        for notice in (gap, gap, elsewhere):
            await fake.send_gap(notice)
        await page.wait_for_function("window.mdpChart.notices().length > 0", timeout=WAIT_MS)
        await fake.push(moved)  # a marker: the notices before it have all arrived
        await page.wait_for_function(f"window.mdpChart.lastSeq() === {fake.seq}", timeout=WAIT_MS)
        start = datetime.fromtimestamp(gap.start_ns // 10**9, UTC)  # whole seconds, widened
        end = datetime.fromtimestamp(-(-gap.end_ns // 10**9), UTC)
        until = f"{end:%H:%M:%S}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M:%S}"
        assert await page.evaluate("window.mdpChart.notices()") == [
            f"Feed gap {start:%Y-%m-%d %H:%M:%S} - {until} UTC: feed disconnected"
            " (connection reset by peer); trades may be missing"
        ]
        assert await page.locator(".mdp-chart-notice").is_visible()

        # A gap in the numbers without `conflated`: the page resumes on the same connection.
        seq_before_gap = fake.seq
        await fake.push(moved, skip=1)
        resumed = await asyncio.wait_for(fake.resumes.get(), WAIT_MS / 1000)
        assert (resumed["seq"], resumed["epoch"]) == (seq_before_gap, fake.epoch)
        assert len(fake.connections) == 1
        await page.wait_for_function(f"window.mdpChart.lastSeq() === {fake.seq}", timeout=WAIT_MS)

        # Scroll-back loads older history from the API.
        await page.evaluate("window.mdpChart.scrollBack(400)")
        await page.wait_for_function("window.mdpChart.data().length === 400", timeout=WAIT_MS)
        loaded = await page.evaluate("window.mdpChart.data()")
        assert loaded[0]["time"] == candles[0].open_time // 10**9
        times = [bar["time"] for bar in loaded]
        assert times == sorted(set(times))
        await page.evaluate("window.mdpChart.chart.timeScale().scrollToRealTime()")

        # The gateway drops the connection: the page says so, reconnects and resumes.
        seq_before = await page.evaluate("window.mdpChart.lastSeq()")
        for connection in fake.connections:
            await connection.close()
        await page.wait_for_function(
            "window.mdpChart.state() === 'reconnecting'", timeout=WAIT_MS, polling=10
        )
        resume = await asyncio.wait_for(fake.resumes.get(), WAIT_MS / 1000)
        assert (resume["seq"], resume["epoch"]) == (seq_before, fake.epoch)
        assert (resume["channel"], resume["instrument"], resume["interval"]) == (
            "candles", INSTRUMENT, "1m",
        )  # fmt: skip
        assert len(fake.connections) == 2
        await page.wait_for_function("window.mdpChart.state() === 'live'", timeout=WAIT_MS)
        await page.wait_for_function(f"window.mdpChart.lastSeq() === {fake.seq}", timeout=WAIT_MS)

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "chart-page.png"))
        await browser.close()
    assert errors == []


async def test_the_page_says_when_there_is_no_gateway(
    store: PostgresStore, history: PostgresReads
) -> None:
    from playwright.async_api import async_playwright

    await store.write(candles=series(50))
    async with serving(create_app(history, ApiSettings())) as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(server.url + "/")
        await page.wait_for_function(
            "window.mdpChart && window.mdpChart.data().length === 50", timeout=WAIT_MS
        )
        assert await page.evaluate("window.mdpChart.state()") == "offline"
        assert await page.evaluate("window.mdpChart.instrument()") == INSTRUMENT
        await browser.close()
