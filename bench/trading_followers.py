"""The trading benchmark's followers in a process of their own (``python -m bench.trading
--followers separate`` starts it; as ``mdp trading follow`` runs beside ``mdp trading serve
--followers separate``).

``python -m bench.trading_followers URL IDLE_S listen|poll``: the outbox (to a memory bus of
this process's) and the timed read-model projector, wired as in production
(:func:`bench.trading.followers`, :func:`trading.followers.start_followers`), and a
reader of ``trading.events`` on that bus. It prints ``ready`` once they run, then a line
``fill TRADE_ID PERF_COUNTER`` for each fill received and ``lag SECONDS...`` after each
projector batch (from the projector's thread: every line is written whole, under a lock),
and on a line on its stdin (or its end) stops and prints ``cpu SECONDS``
(the CPU it spent). ``perf_counter`` is the machine's monotonic clock, the same in the
benchmark's process.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from bench.trading import Lags, followers, watch_fills
from streams.memory import MemoryBus
from trading.store.database import Database, StoreSettings

LINE = 500
"""Lags a line at most."""


class TellingLags(Lags):
    """Lags printed as each batch commits, not kept."""

    def committed(self) -> None:
        super().committed()
        for first in range(0, len(self.seconds), LINE):  # lines well within the reader's limit
            tell("lag", *(f"{s:.6f}" for s in self.seconds[first : first + LINE]))
        self.seconds.clear()


WRITING = threading.Lock()


def tell(*words: object) -> None:
    """One whole line on stdout: the projector's thread tells lags, the loop fills."""
    line = " ".join(map(str, words)) + "\n"
    with WRITING:
        sys.stdout.write(line)
        sys.stdout.flush()


def told_fill(trade_id: int, at: float) -> None:
    tell("fill", trade_id, f"{at:.6f}")


async def main(url: str, idle_s: float, listen: bool) -> None:
    stop, started = asyncio.Event(), asyncio.Event()
    with Database(StoreSettings(url)) as database:
        async with MemoryBus() as bus:
            watching = asyncio.create_task(watch_fills(bus, stop, told_fill))
            following = asyncio.create_task(
                followers(database, bus, TellingLags(), stop, idle_s, listen, started)
            )
            began = asyncio.create_task(started.wait())
            await asyncio.wait({began, following}, return_when=asyncio.FIRST_COMPLETED)
            if not started.is_set():  # the followers ended before they began: say why
                began.cancel()
                await following
                raise SystemExit("the followers ended before they started")
            await asyncio.sleep(0.2)  # the outbox's first claim, the fills' subscription
            tell("ready")
            await asyncio.to_thread(sys.stdin.readline)
            stop.set()
            await asyncio.gather(watching, following)
    tell("cpu", f"{time.process_time():.3f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3] == "listen"))
