from __future__ import annotations

import time

from core.engine import CandleEngine, EngineConfig
from storage.checkpoints import PostgresCheckpoints
from streams.engine_runner import restore_engine
from tests.core.factories import tick


async def test_a_saved_engine_checkpoint_restores_the_same_engine(migrated_database: str) -> None:
    store = PostgresCheckpoints(migrated_database)
    assert await store.load("candle-engine") is None
    engine = CandleEngine(EngineConfig(emit_open=False))
    engine.feed_ticks([tick(1, 1, "100"), tick(2, 61, "101")])
    await store.save("candle-engine", engine.checkpoint())
    await store.save("candle-engine", engine.checkpoint())  # saving again replaces it

    restored = await restore_engine(
        store, "candle-engine", lambda: CandleEngine(EngineConfig()), time.time_ns()
    )
    assert restored.instruments == ["TEST:ABC"]
    assert [c.values() for c in restored.flush().candles] == [
        c.values() for c in engine.flush().candles
    ]
