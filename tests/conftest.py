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
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from broker import migrations
from broker.app import create_app
from broker.config import Settings

TEST_DATABASE_URL = os.environ.get("BROKER_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
_counter = itertools.count()


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


class Identities:
    """Creates departments and accounts through the services, and mints their tokens."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def token(
        self,
        name: str,
        *,
        department: str = "platform",
        department_kind: str = "platform",
        roles: tuple[str, ...] = ("platform_admin",),
        client: bool = False,
    ) -> str:
        from broker.accounts import service as accounts
        from broker.accounts.schemas import AccountCreate
        from broker.auth import tokens
        from broker.auth.models import AccountKind, Role
        from catalog.departments import service as departments
        from catalog.departments.models import DepartmentKind
        from catalog.departments.schemas import DepartmentCreate

        async with self.app.state.session_factory() as session:
            if await departments.find_by_code(session=session, code=department) is None:
                await departments.create(
                    session=session,
                    data=DepartmentCreate(
                        code=department, name=department, kind=DepartmentKind(department_kind)
                    ),
                )
            account = await accounts.find_by_name(session=session, name=name)
            if account is None:
                account, _secret = await accounts.create(
                    session=session,
                    data=AccountCreate(
                        name=name,
                        display_name=name,
                        # people have no secret to hash, which keeps fixtures fast
                        kind=AccountKind.client if client else AccountKind.person,
                        department_code=department,
                        roles=[Role(r) for r in roles],
                    ),
                )
            minted, _ttl = await tokens.mint(
                session=session, settings=self.app.state.settings, account=account
            )
            await session.commit()
            return minted

    async def headers(self, name: str, **kwargs: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(name, **kwargs)}"}  # type: ignore[arg-type]


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
