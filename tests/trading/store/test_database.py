"""The event store connects as the URL says: the parameters the library's datastore does not
take by name (TLS, ``options``, ``application_name``...) reach its connections too."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo

from trading.store.database import Database, StoreSettings, connection_parameters


def test_every_parameter_but_the_named_parts_is_passed_on() -> None:
    url = (
        "postgresql://app:pw@db.internal:5433/market?sslmode=verify-full"
        "&sslrootcert=/etc/mdp/ca.pem&application_name=trading&options=-c%20search_path%3Dt"
    )
    assert connection_parameters(url) == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/mdp/ca.pem",
        "application_name": "trading",
        "options": "-c search_path=t",
    }


def test_the_event_stores_connections_carry_the_urls_parameters(fresh_database: str) -> None:
    url = make_conninfo(
        fresh_database, sslmode="disable", application_name="mdp-trading-store",
        options="-c statement_timeout=4321",
    )  # fmt: skip
    with Database(StoreSettings(url)) as database, database.datastore.get_connection() as conn:
        row = conn.execute(
            "SELECT current_setting('application_name') AS name,"
            " current_setting('statement_timeout') AS timeout"
        ).fetchone()
        assert row == {"name": "mdp-trading-store", "timeout": "4321ms"}
        assert conn.info.get_parameters()["sslmode"] == "disable"
        assert not conn.info.pgconn.ssl_in_use
