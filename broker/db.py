"""Engines and session factories for SQLite and PostgreSQL."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from broker.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from pysqlite so _sqlite_begin can start every transaction
    # IMMEDIATE: a deferred one that reads then writes fails with SQLITE_BUSY_SNAPSHOT when
    # another writer committed in between, which is exactly the audit chain's append pattern.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY_OPTION = "broker_read_only"


def _sqlite_begin(connection: Any) -> None:
    # Long read-only streams (audit export, verify) must not hold the single writer's lock.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url, echo=settings.database_echo, pool_pre_ping=not settings.is_sqlite
    )
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def make_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for long reads that write nothing; on SQLite they do not block writers."""
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        # One snapshot for the whole read, so an export's trailer and rows agree.
        options["isolation_level"] = "REPEATABLE READ"
    return async_sessionmaker(
        engine.execution_options(**options), expire_on_commit=False, autoflush=False
    )
