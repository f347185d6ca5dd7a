"""Cluster mode on Apache Kafka: the bus adapter, topic administration, the local broker
launcher and the candle worker.

- :mod:`streams.kafka.bus`: :class:`KafkaBus`, the Kafka adapter of :mod:`streams.bus`.
- :mod:`streams.kafka.admin`: the platform's topics, made up front.
- :mod:`streams.kafka.launcher` and :mod:`streams.kafka.jars`: a local KRaft broker.
- :mod:`streams.kafka.worker`: the Faust worker that runs the candle engine.

Nothing here is imported by embedded mode: importing :mod:`streams.kafka` loads no client.
"""
