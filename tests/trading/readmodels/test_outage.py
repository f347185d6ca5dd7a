"""The database of the read models stops and starts again: a query in between fails with our
code, the next one after it answers as before."""

from __future__ import annotations

import asyncio

import pytest

from tests.storage.stoppable import StoppablePostgres
from tests.trading.readmodels.sessions import Log, read, session
from tests.trading.readmodels.test_readmodels import FILL_ALL, FUNDED, NEAR_BUY
from trading.readmodels.queries import TradingQueries
from trading.readmodels.tables import model
from trading.store.database import Database, StoreSettings
from trading.store.errors import StoreUnavailableError
from trading.store.events import EventStore
from trading.store.projector import Projector
from trading.store.wire import EVENT_CODEC


async def test_a_query_while_the_database_is_down_fails_with_our_code_then_recovers(
    stoppable_postgres: StoppablePostgres,
) -> None:
    url = stoppable_postgres.database("mdp")
    with Database(StoreSettings(url)) as database:
        database.create_tables()
        events = EventStore(database, EVENT_CODEC)
        projector = Projector(database, events, model("trading_read"))
        projector.start()
        history, last = session(1, [*FUNDED, NEAR_BUY, FILL_ALL])
        Log(events).append(history)
        projector.catch_up()
    async with TradingQueries.open(url, "trading_read") as queries:
        before = await read(queries, 1, last)
        await asyncio.to_thread(stoppable_postgres.stop)
        with pytest.raises(StoreUnavailableError) as caught:
            await queries.balances(1)
        assert caught.value.code == "store-unavailable"
        await asyncio.to_thread(stoppable_postgres.start)
        assert await read(queries, 1, last) == before
