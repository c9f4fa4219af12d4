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
WRITING_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "MERGE")


class WriteInReadOnlySession(RuntimeError):
    """A session opened for reading tried to write: the route must ask for a writing session."""


def _sqlite_begin(connection: Any) -> None:
    # Reads (GET routes, audit export, verify) start deferred: they take no lock and never queue
    # behind the single writer. Everything else starts IMMEDIATE (see _sqlite_pragmas).
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _refuse_writes_in_reads(
    connection: Any,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    # A deferred SQLite transaction that writes after reading fails with SQLITE_BUSY_SNAPSHOT
    # when another writer committed meanwhile: only under load, so refuse every write at once,
    # on both databases, and the route that needs one says so (kit.session.writes_on_read).
    if connection.get_execution_options().get(READ_ONLY_OPTION) and (
        statement.lstrip()[:7].upper().startswith(WRITING_STATEMENTS)
    ):
        raise WriteInReadOnlySession(
            "A read-only session tried to write "
            f"({statement.lstrip()[:60]!r}); mark the route with writes_on_read."
        )


def make_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url, echo=settings.database_echo, pool_pre_ping=not settings.is_sqlite
    )
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_writes_in_reads)
    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def make_request_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read (GET, HEAD): deferred on SQLite, so concurrent
    reads share the database instead of queueing on the write lock; writing through one raises
    WriteInReadOnlySession. PostgreSQL keeps its default isolation: a request is short."""
    return async_sessionmaker(
        engine.execution_options(**{READ_ONLY_OPTION: True}),
        expire_on_commit=False,
        autoflush=False,
    )


def make_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for long reads that write nothing; on SQLite they do not block writers."""
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        # One snapshot for the whole read, so an export's trailer and rows agree.
        options["isolation_level"] = "REPEATABLE READ"
    return async_sessionmaker(
        engine.execution_options(**options), expire_on_commit=False, autoflush=False
    )
