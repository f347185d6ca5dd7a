"""Cluster mode on Apache Kafka: the bus adapter, topic administration, the local broker
launcher and the candle worker.

- :mod:`streams.kafka.bus`: :class:`KafkaBus`, the Kafka adapter of :mod:`streams.bus`.
- :mod:`streams.kafka.admin`: the platform's topics, made up front.
- :mod:`streams.kafka.launcher` and :mod:`streams.kafka.jars`: a local KRaft broker.
- :mod:`streams.kafka.engine_worker`: the candle worker's core, driven by one of two
  consumers: :mod:`streams.kafka.batch_worker` (the default of ``mdp worker``) or
  :mod:`streams.kafka.faust_app` (``--consumer faust``).

Nothing here is imported by embedded mode: importing :mod:`streams.kafka` loads no client.
"""
