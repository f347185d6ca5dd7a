"""What the gateway's ``alerts`` channel reads of the main API's firings, and how it presents
a firing.

The gateway never imports the main API: it is handed an implementation of
:class:`AlertReads` (``main_api.alert_reads.AlertSnapshots`` over the main API's tables) and
asks it for an :class:`AlertsSnapshot` when a client subscribes to ``alerts``
(``docs/protocol.md``, "Private channels"). Firings carry no gapless number on
``alerts.events`` (``fire_id`` names one, nothing orders them), so a snapshot is current to a
*set*: the ``fire_id`` of each of the account's newest :data:`MAX_SNAPSHOT` recorded firings,
read in one transaction with the firings it shows and the unread count. The gateway drops the
live firings whose ``fire_id`` is in it and sends every other one once.

A firing travels as the msgspec JSON of :class:`~core.alerts.AlertFired` (its ``kind``,
prices as decimal strings, times in epoch nanoseconds), in the snapshot and live alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from core.alerts import AlertFired

MAX_SNAPSHOT: Final = 1000
"""The most firings one snapshot shows, and how many newest ``fire_id`` it is current to."""

_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AlertsSnapshot:
    """One account's recorded firings as of one read.

    ``fire_ids``: the ``fire_id`` of the account's newest :data:`MAX_SNAPSHOT` firings
    recorded, oldest first (whatever ``firings`` shows): a live firing among them is in the
    snapshot already. ``firings``: the newest ones asked for, oldest first. ``unread``: the
    account's unread notifications (one per firing recorded, until marked read).
    """

    account: int
    fire_ids: tuple[str, ...] = ()
    firings: list[AlertFired] = field(default_factory=list)
    unread: int = 0
    named: tuple[AlertFired, ...] = ()
    """Every firing ``fire_ids`` names, oldest first, when the reader has them (it read them
    all): the gateway sends one the bus did not bring from here, whatever ``firings`` shows."""


class AlertReads(Protocol):
    """The read side the gateway is given (by injection: ``mdp`` wires it)."""

    async def alerts_snapshot(self, account: int, limit: int) -> AlertsSnapshot:
        """``account``'s snapshot with its ``limit`` newest firings (``limit`` within
        0..:data:`MAX_SNAPSHOT`). Raises when the database cannot answer (the gateway answers
        ``unavailable``)."""
        ...


def fired_json(event: AlertFired) -> bytes:
    """A firing as JSON: ``{"kind":"alert-fired","fire_id":...,...}``."""
    return _encoder.encode(event)
