"""Feeds: venue formats and generators become domain ticks here and nowhere else.

``ingest.files`` reads tick files (Binance aggTrades CSV, Kraken REST trades JSON, generic CSV
and Parquet) into :class:`~core.ticks.TickBatch` es; ``ingest.synthetic`` makes seeded random
ticks for demos and benchmarks.
"""
