"""Real databases only: migrate a template once per session, give each test a fresh copy.

SQLite by default; PostgreSQL when BROKER_TEST_DATABASE_URL names a server (the URL's database is
used only to administer per-test databases cloned with CREATE DATABASE ... TEMPLATE).
"""

import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from broker import migrations
from broker.app import create_app
from broker.config import Settings
from support.database import ON_POSTGRES, pg_create_database, pg_drop_database, pg_url_for
from support.identities import Identities

_counter = itertools.count()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head with Alembic, exactly as production gets it."""
    if ON_POSTGRES:
        name = f"broker_tpl_{os.getpid()}"
        pg_create_database(name)
        migrations.upgrade(Settings(database_url=pg_url_for(name)))
        yield name
        pg_drop_database(name)
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrations.upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        yield str(path)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, for migration tests."""
    if ON_POSTGRES:
        name = f"broker_empty_{os.getpid()}_{next(_counter)}"
        pg_create_database(name)
        yield pg_url_for(name)
        pg_drop_database(name)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, fully migrated database for this test alone."""
    if ON_POSTGRES:
        name = f"broker_t_{os.getpid()}_{next(_counter)}"
        pg_create_database(name, template=template_database)
        yield pg_url_for(name)
        pg_drop_database(name)
    else:
        path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template_database, path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, storage_root=str(tmp_path / "releases"))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as http:
        yield http


@pytest.fixture
def identities(app: FastAPI) -> Identities:
    return Identities(app)


@pytest.fixture
async def admin_client(app: FastAPI, identities: Identities) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as the platform's administrator."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = await identities.headers("admin")
    async with httpx.AsyncClient(
        transport=transport, base_url="http://broker.test", headers=headers
    ) as http:
        yield http
