"""Read back what the outbox published: every record of a topic, decoded."""

from __future__ import annotations

import uuid

from streams.bus import Bus
from trading.store.wire import Deduplicator, Published, decode_published


async def published(bus: Bus, topic: str, expected: int, timeout: float = 20.0) -> list[Published]:
    """The topic's messages (a fresh group from the start), once at least ``expected`` came or
    ``timeout`` passed; a short extra wait catches any repeats beyond ``expected``."""
    messages: list[Published] = []
    async with bus.subscribe(f"reader-{uuid.uuid4().hex}", [topic]) as subscription:
        waited = 0.0
        while waited < timeout:
            batch = await subscription.poll(1000, timeout=0.5 if len(messages) < expected else 0.2)
            messages += [decode_published(record.value) for record in batch]
            if len(messages) >= expected and not batch:
                break
            waited += 0.5
    return messages


def deduplicated(messages: list[Published]) -> list[Published]:
    """``messages`` as a consumer that drops repeats by notification id sees them (keyed by
    aggregate: one aggregate's records are in order on its partition)."""
    seen = Deduplicator()
    return [m for m in messages if seen.is_new(m.aggregate_id.encode(), m)]
