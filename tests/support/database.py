"""The test database's kind, and the PostgreSQL administration the per-test databases need."""

import os

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

TEST_DATABASE_URL = os.environ.get("BROKER_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")


def _pg_admin_engine() -> Engine:
    sync_url = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    return create_engine(sync_url, isolation_level="AUTOCOMMIT")


def pg_url_for(database: str) -> str:
    return make_url(TEST_DATABASE_URL).set(database=database).render_as_string(hide_password=False)


def pg_create_database(name: str, template: str | None = None) -> None:
    engine = _pg_admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        suffix = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    engine.dispose()


def pg_drop_database(name: str) -> None:
    engine = _pg_admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
