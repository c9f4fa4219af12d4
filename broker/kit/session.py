"""The request's database session: one per request, committed once when the route returns.

GET and HEAD requests read: their session is read-only (on SQLite a deferred transaction, so
concurrent reads do not queue on the single write lock). A GET route that writes (a download
records its receipt and audit event) is marked with `writes_on_read` and gets a writing session
like every other method: on SQLite it takes the write lock when it begins (BEGIN IMMEDIATE), since
a deferred transaction that reads and then writes can fail with SQLITE_BUSY under concurrency.
"""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.db import make_request_read_session_factory

READ_METHODS = frozenset({"GET", "HEAD"})
WRITES_ON_READ = "__broker_writes_on_read__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def writes_on_read(endpoint: Endpoint) -> Endpoint:
    """Mark a GET route that writes (put it under the `@router.get(...)` decorator)."""
    setattr(endpoint, WRITES_ON_READ, True)
    return endpoint


def reads_only(request: Request) -> bool:
    """Whether the request's session may be read-only: a GET or HEAD of an unmarked route."""
    if request.method not in READ_METHODS:
        return False
    route = request.scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    return endpoint is not None and not getattr(endpoint, WRITES_ON_READ, False)


def _read_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    state = request.app.state
    factory: async_sessionmaker[AsyncSession] | None = getattr(
        state, "request_read_session_factory", None
    )
    if factory is None:
        factory = make_request_read_session_factory(state.engine)
        state.request_read_session_factory = factory
    return factory


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Services only flush; this commits once after the route returns, before the response is
    sent, so a failed commit is the client's error answer. A route that raises is rolled back."""
    factory: async_sessionmaker[AsyncSession] = (
        _read_factory(request) if reads_only(request) else request.app.state.session_factory
    )
    async with factory() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
