"""An embedded platform running in the test's event loop, for as long as a block lasts."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

from mdp.embedded import Platform, PlatformSettings

STOP_TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def running_platform(settings: PlatformSettings) -> AsyncIterator[Platform]:
    """``Platform(settings)`` once its chart is served; stopped cleanly after the block. Its
    output is in ``platform.out``."""
    platform = Platform(settings, io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(platform.run(stop))
    try:
        while platform.chart_url is None:
            if running.done():
                running.result()
                raise AssertionError(f"the platform stopped:\n{platform.out}")
            await asyncio.sleep(0.05)
        yield platform
    finally:
        stop.set()
        await asyncio.wait_for(running, STOP_TIMEOUT)


def printed(platform: Platform) -> str:
    """What a platform of :func:`running_platform` has printed so far."""
    assert isinstance(platform.out, io.StringIO)
    return platform.out.getvalue()
