"""The `broker` command."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from broker import migrations
from broker.config import Settings

app = typer.Typer(
    help="Data Resource Broker: serve the API and manage its database.", no_args_is_help=True
)
db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(openapi_app, name="openapi")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the API with uvicorn; on the embedded SQLite default, migrate the database first."""
    import uvicorn

    settings = Settings()
    if settings.is_embedded_default:
        migrations.upgrade(settings)
        typer.echo(f"database ready: {settings.database_url}")
    typer.echo(f"API docs: http://{host}:{port}/docs")
    uvicorn.run("broker.app:create_app", factory=True, host=host, port=port, workers=workers)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrations.upgrade(Settings(), revision)
    typer.echo(f"upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. -1 or base.")]) -> None:
    """Revert migrations down to REVISION."""
    migrations.downgrade(Settings(), revision)
    typer.echo(f"downgraded to {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision and whether it is the newest."""
    from broker.db import make_engine

    settings = Settings()

    async def read() -> set[str]:
        engine = make_engine(settings)
        try:
            return await migrations.current_revisions(engine)
        finally:
            await engine.dispose()

    current = asyncio.run(read())
    heads = migrations.head_revisions(settings)
    state = "at head" if current == heads else f"behind head {', '.join(sorted(heads))}"
    typer.echo(f"{', '.join(sorted(current)) or '(empty database)'} ({state})")


@openapi_app.command("export")
def openapi_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write.")] = None,
) -> None:
    """Write openapi/openapi.json (sorted keys, indented, UTF-8)."""
    from broker import openapi_export as exporter

    path = exporter.export(output) if output else exporter.export()
    typer.echo(f"wrote {path}")
