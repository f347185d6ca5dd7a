"""The outbox's tests: trading events stored per account, and what the outbox published of
them, every record of a topic decoded."""

from __future__ import annotations

import uuid
from decimal import Decimal

from core.trading_events import (
    Deduplicator,
    FundsDeposited,
    KillSwitchSet,
    TradingEvent,
    TradingRecord,
    decode_record,
)
from streams.bus import Bus
from trading.store.events import EventStore


def history(account: int, events: int) -> list[TradingEvent]:
    """``events`` account events: deposits of 1..n, a kill switch turned on every third."""
    return [
        KillSwitchSet(account=account, on=True, ts=n)
        if n % 3 == 0
        else FundsDeposited(account=account, currency="USDT", amount=Decimal(n), ts=n)
        for n in range(1, events + 1)
    ]


def store_accounts(events: EventStore[TradingEvent], accounts: int, each: int) -> list[int]:
    """Store the history of ``each`` events of accounts 1..``accounts``; their notification
    ids."""
    ids: list[int] = []
    for account in range(1, accounts + 1):
        ids += events.append(f"account:{account}", 0, history(account, each))
    return ids


async def published(
    bus: Bus, topic: str, expected: int, timeout: float = 20.0
) -> list[TradingRecord]:
    """The topic's records (a fresh group from the start), once at least ``expected`` came or
    ``timeout`` passed; a short extra wait catches any repeats beyond ``expected``."""
    messages: list[TradingRecord] = []
    async with bus.subscribe(f"reader-{uuid.uuid4().hex}", [topic]) as subscription:
        waited = 0.0
        while waited < timeout:
            batch = await subscription.poll(1000, timeout=0.5 if len(messages) < expected else 0.2)
            messages += [decode_record(record.value) for record in batch]
            if len(messages) >= expected and not batch:
                break
            waited += 0.5
    return messages


def deduplicated(messages: list[TradingRecord]) -> list[TradingRecord]:
    """``messages`` as a consumer that drops repeats by notification id sees them."""
    seen = Deduplicator()
    return [m for m in messages if seen.is_new(m)]
