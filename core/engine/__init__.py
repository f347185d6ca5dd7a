"""The sans-I/O candle engine: feed tick batches, get candle updates and rejects back."""

from core.engine.config import EmptyPolicy, EngineConfig
from core.engine.engine import CandleEngine, EngineOutput

__all__ = ["CandleEngine", "EmptyPolicy", "EngineConfig", "EngineOutput"]
