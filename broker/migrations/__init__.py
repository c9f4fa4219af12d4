"""Alembic wiring shared by the CLI, `/readyz` and the tests.

The migration scripts ship inside the package (alembic/ beside this file), so an installed wheel
migrates as a checkout does. alembic.ini at the repository root serves only the `alembic`
command run from a checkout (e.g. `alembic revision --autogenerate`).
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.config import Settings

SCRIPT_LOCATION = Path(__file__).resolve().parent / "alembic"
# The checkout's root, for tools that only run from one (openapi_export); not in a wheel.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revisions(settings: Settings) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
