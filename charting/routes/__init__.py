"""The app's routes, one module per area: ``candles``, ``ticks``, ``instruments``, ``udf``,
``web`` (the chart page) and ``docs`` (the OpenAPI document)."""
