from alembic import command
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from broker import migrations
from broker.config import Settings
from broker.models import metadata


def _tables(url: str) -> set[str]:
    sync_url = make_url(url)
    sync_url = sync_url.set(
        drivername="sqlite" if sync_url.drivername.startswith("sqlite") else "postgresql+psycopg"
    )
    engine = create_engine(sync_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    """`alembic check`: autogenerate finds nothing to add, drop or alter."""
    command.check(migrations.alembic_config(Settings(database_url=database_url)))


def test_downgrade_to_base_and_upgrade_to_head(empty_database_url: str) -> None:
    settings = Settings(database_url=empty_database_url)
    migrations.upgrade(settings)
    assert set(metadata.tables) <= _tables(empty_database_url)
    migrations.downgrade(settings, "base")
    assert _tables(empty_database_url) <= {"alembic_version"}
    migrations.upgrade(settings)
    assert set(metadata.tables) <= _tables(empty_database_url)


def test_migration_history_is_linear() -> None:
    heads = migrations.head_revisions(Settings())
    assert len(heads) == 1, f"several Alembic heads: {heads}; merge them"
