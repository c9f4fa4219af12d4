"""Running service functions from the command line, and failing there in one line.

Every command runs inside `Commands.invoke`: an expected failure (a domain error, a file that is
not there, a database that cannot be opened or has no schema, a migration target alembic does not
know) is printed as what went wrong and what to do, and the command exits 1. A bug still shows its
traceback, and `broker --debug ...` shows it for every failure.
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncSession
from typer.core import TyperGroup

from broker.config import Settings
from broker.db import make_engine, make_read_session_factory, make_session_factory
from core.errors import DomainError

T = TypeVar("T")
DEBUG = "broker.debug"


def run_in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings)
        try:
            async with make_session_factory(engine)() as session:
                result = await work(session)
                # The CLI's one commit, as SessionDep's is the route layer's: services flush.
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def run_read_only(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Long reads (export, verify) that must not block writers on SQLite."""

    async def run() -> T:
        engine = make_engine(settings)
        try:
            async with make_read_session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


class CommandFailed(Exception):
    """A failure a command recognises itself; `lines` say what went wrong and what to do."""

    def __init__(self, message: str, *details: str) -> None:
        super().__init__(message)
        self.lines = [message, *details]


class Commands(TyperGroup):
    """The `broker` group: the one place where failures become one line and exit 1."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer's own Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # typer's usage errors and exits
            raise
        except Exception as exc:
            lines = explain(exc)
            if lines is None or ctx.meta.get(DEBUG):
                raise
            first, *rest = lines
            typer.secho(first, fg=typer.colors.RED, err=True)
            for line in rest:
                typer.echo(line, err=True)
            raise typer.Exit(1) from None


def explain(exc: BaseException) -> list[str] | None:
    """What an expected failure means and what to do about it; None for anything else (a bug)."""
    if isinstance(exc, CommandFailed):
        return exc.lines
    if isinstance(exc, DomainError):
        return [exc.detail, *(f"  {error.location}: {error.message}" for error in exc.errors)]
    if isinstance(exc, CommandError):
        return [_migration_failure(exc)]
    if isinstance(exc, DBAPIError):
        return _database_failure(exc)
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return [
            f"BROKER_DATABASE_URL is not a usable database URL ({exc}); use e.g. "
            "sqlite+aiosqlite:///./broker.db or postgresql+psycopg://user@host:5432/broker"
        ]
    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return [
            f"the setting BROKER_{'_'.join(map(str, e['loc'])).upper()} is invalid: {e['msg']}; "
            "fix that environment variable"
            for e in exc.errors()
        ]
    if isinstance(exc, OSError):
        return [_file_failure(exc)]
    return None


def _migration_failure(exc: CommandError) -> str:
    message = str(exc).rstrip(".")
    if "locate revision" in message:
        return (
            f"{message}: give head, base, a revision id (`broker db current` shows the "
            "database's) or a relative step such as -1"
        )
    return f"{message}; `broker db current` shows where the database is"


def _shown_url() -> tuple[str, Path | None]:
    """The configured database URL without its password, and the SQLite file if it is one."""
    try:
        url = make_url(Settings().database_url)
    except (ValidationError, ArgumentError):
        return "(BROKER_DATABASE_URL)", None
    path = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    return url.render_as_string(hide_password=True), path


def _missing_folder(sqlite_file: Path) -> str | None:
    folder = sqlite_file.parent.resolve()
    if folder.is_dir():
        return None
    return (
        f"cannot open the SQLite database {sqlite_file}: the directory {folder} does not "
        f"exist; create it (mkdir -p {folder}) or set BROKER_DATABASE_URL to another path"
    )


def check_database_folder(settings: Settings) -> None:
    """Refuse an SQLite database whose folder does not exist, before alembic tries to open it.

    Opening it fails anyway, but from inside alembic's event loop aiosqlite's worker thread then
    reports on a closed loop, printing a traceback after the one-line answer.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        problem = _missing_folder(Path(url.database))
        if problem is not None:
            raise CommandFailed(problem)


def _database_failure(exc: DBAPIError) -> list[str] | None:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    lowered = reason.lower()
    url, sqlite_file = _shown_url()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return [f"the database {url} has no broker schema yet ({reason}); run `broker db upgrade`"]
    if "unable to open database file" in lowered and sqlite_file is not None:
        missing = _missing_folder(sqlite_file)
        return [
            missing
            or f"cannot open the SQLite database {sqlite_file} ({reason}); check that "
            f"{sqlite_file.parent.resolve()} is writable by you, or set BROKER_DATABASE_URL "
            "to another path"
        ]
    if exc.connection_invalidated or isinstance(exc.orig, OSError) or "connect" in lowered:
        return [
            f"cannot connect to the database {url} ({reason}); check that it is running and "
            "that BROKER_DATABASE_URL names it"
        ]
    return None


def _file_failure(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else "the file"
    if isinstance(exc, FileNotFoundError):
        return f"{name}: no such file or directory; check the path (and that its folder exists)"
    if isinstance(exc, FileExistsError):
        return f"{name} already exists; choose a new path, this command never overwrites a file"
    if isinstance(exc, PermissionError):
        return f"{name}: permission denied; use a path you may read or write"
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a directory; give the path of a file"
    return f"{name}: {exc.strerror or exc}"
