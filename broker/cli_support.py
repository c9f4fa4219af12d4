"""Running service functions from the command line: one session, committed on success."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from broker.config import Settings
from broker.db import make_engine, make_read_session_factory, make_session_factory

T = TypeVar("T")


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
