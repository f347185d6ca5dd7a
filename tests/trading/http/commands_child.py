"""``mdp trading serve`` for the kill -9 test of ``trading.commands``: the real command, whose
commands consumer stops dead at the commit of the round that reaches offset HANG_AT (it has
applied the commands; their offsets are not committed). It touches the file MARKER there and
waits (the rest of the process, the outbox too, goes on) until the test kills it.

``MDP_TEST_HANG_AT=5 MDP_TEST_MARKER=PATH python -m tests.trading.http.commands_child serve ...``
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mdp.commands.trading import main
from streams.bus import Offsets, Subscription
from streams.processor import Processor
from trading.commands import COMMANDS_GROUP

HANG_AT = int(os.environ["MDP_TEST_HANG_AT"])
MARKER = Path(os.environ["MDP_TEST_MARKER"])
_commit = Processor._commit


async def _hanging_commit(
    self: Processor[object], subscription: Subscription, offsets: Offsets
) -> None:
    if self.group == COMMANDS_GROUP and any(offset >= HANG_AT for offset in offsets.values()):
        MARKER.touch()
        await asyncio.Event().wait()  # dead here: the commit never happens
    await _commit(self, subscription, offsets)


if __name__ == "__main__":
    Processor._commit = _hanging_commit  # type: ignore[method-assign,assignment]
    sys.exit(main(sys.argv[1:]))
