"""The shared kernel: domain types, the sans-I/O candle engine and fixed-point numbers.

Pure by rule: nothing here imports asyncio, Kafka, a database driver or HTTP code, and nothing
here imports another package of this repository.
"""
