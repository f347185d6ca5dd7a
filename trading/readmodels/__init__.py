"""The trading read models (CQRS): orders, fills, positions and balances as tables folded from
the event log, and the account-scoped queries that read them.

:mod:`.projection` is the pure core (one event and the rows it touches in, the row changes
out, by ``trading.domain``'s own fold); :mod:`.tables` the DDL and the SQL shell the
projector runs; :mod:`.queries` the async, bounded queries; :mod:`.rebuild` replays the log
into fresh tables (``mdp trading rebuild``).
"""
