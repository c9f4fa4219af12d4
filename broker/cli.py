"""The `broker` command."""

import asyncio
import csv
import errno
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, NoReturn

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import migrations
from broker.accounts import service as accounts
from broker.audit import service as audit
from broker.audit.export import ExportFormat, export_chunks
from broker.audit.service import Actor, EventFilter
from broker.auth import keys
from broker.cli_support import (
    DEBUG,
    CommandFailed,
    Commands,
    check_database_folder,
    run_in_session,
    run_read_only,
)
from broker.config import Settings

if TYPE_CHECKING:
    from broker.accounts.onboarding import AccountImportPlan
    from broker.demo.scenario import Demo
    from broker.departments.onboarding import ImportPlan
    from catalog.access import Viewer
    from catalog.departments.models import Department

app = typer.Typer(
    help="Data Resource Broker: serve the API and manage its database.",
    no_args_is_help=True,
    cls=Commands,
)
db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)
catalog_app = typer.Typer(help="The data resource catalog.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts (people and department systems).", no_args_is_help=True)
departments_app = typer.Typer(help="The district's departments.", no_args_is_help=True)
keys_app = typer.Typer(help="The broker's token signing keys.", no_args_is_help=True)
receipts_app = typer.Typer(help="Signed download receipts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(openapi_app, name="openapi")
app.add_typer(departments_app, name="departments")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(catalog_app, name="catalog")
app.add_typer(receipts_app, name="receipts")

CLI_ACTOR = Actor.system("cli")


def _fail(message: str) -> NoReturn:
    raise CommandFailed(message)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="On a failure, show the traceback instead of one line saying what to do.",
        ),
    ] = False,
) -> None:
    """Data Resource Broker: serve the API and manage its database."""
    ctx.meta[DEBUG] = debug


DEMO_DIR_HELP = "The demo's directory (database, releases, files); default: a new temporary one."


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Seed the demo district as `broker demo` does, print a token per role "
            "and serve that state.",
        ),
    ] = False,
    directory: Annotated[Path | None, typer.Option("--dir", help=DEMO_DIR_HELP)] = None,
) -> None:
    """Run the API with uvicorn; on the embedded SQLite default, migrate the database first."""
    import uvicorn

    if directory is not None and not demo:
        _fail("--dir goes with --demo")
    if demo:
        from broker.demo import scenario

        seeded = _play_demo(directory)
        os.environ.update(scenario.environment(seeded.settings))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - a comparison
        typer.echo("")
        typer.echo(scenario.token_sheet(seeded, f"http://{shown}:{port}"))
        typer.echo("")
    else:
        settings = Settings()
        if settings.is_embedded_default:
            check_database_folder(settings)
            migrations.upgrade(settings)
            typer.echo(f"database ready: {settings.database_url}")
    typer.echo(f"API docs: http://{host}:{port}/docs")
    uvicorn.run("broker.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command("demo")
def demo_command(
    directory: Annotated[Path | None, typer.Option("--dir", help=DEMO_DIR_HELP)] = None,
) -> None:
    """Play the economic indicators case (95 items, 14 departments) on a fresh SQLite database.

    Prints the readiness board before and after, and writes the audit export and the
    coordination agenda next to the database.
    """
    _play_demo(directory)


def _play_demo(directory: Path | None) -> "Demo":
    from broker.demo import scenario

    try:
        return scenario.run(directory, out=typer.echo)
    except scenario.DemoError as exc:
        _fail(str(exc))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = Settings()
    check_database_folder(settings)
    migrations.upgrade(settings, revision)
    typer.echo(f"upgraded to {revision}")


# `-1` is a relative revision, not an option.
@db_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. -1 or base.")]) -> None:
    """Revert migrations down to REVISION."""
    settings = Settings()
    check_database_folder(settings)
    migrations.downgrade(settings, revision)
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
    from broker.openapi import export as exporter

    path = exporter.export(output) if output else exporter.export()
    typer.echo(f"wrote {path}")


@openapi_app.command("client")
def openapi_client(
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Directory to write (default openapi/clients/python)."),
    ] = None,
) -> None:
    """Generate the Python client (openapi-python-client) from openapi/openapi.json."""
    from broker.openapi import export as exporter

    try:
        path = exporter.generate_client(output) if output else exporter.generate_client()
    except exporter.ClientGenerationFailed as exc:
        _fail(str(exc))
    typer.echo(f"generated the broker_client package in {path}")


@accounts_app.command("bootstrap")
def accounts_bootstrap(
    name: Annotated[str, typer.Option(help="Client id of the first platform admin.")] = "admin",
    department_code: Annotated[str, typer.Option(help="Code of the platform department.")] = (
        "platform"
    ),
    department_name: Annotated[str, typer.Option(help="Its name.")] = "区城市运行管理中心",
    recover: Annotated[
        bool,
        typer.Option(
            "--recover",
            help="The platform has no active admin left: enable the client NAME (creating it "
            "if needed), make it platform_admin and give it a new secret. Audited.",
        ),
    ] = False,
) -> None:
    """Create the first platform admin on a fresh install (refused once one exists)."""
    settings = Settings()
    check_database_folder(settings)
    if settings.is_embedded_default:
        migrations.upgrade(settings)
    act = accounts.recover_admin if recover else accounts.bootstrap
    secret = run_in_session(
        settings,
        lambda session: act(
            session=session,
            actor=CLI_ACTOR,
            name=name,
            department_code=department_code,
            department_name=department_name,
        ),
    )
    done = "recovered" if recover else "created"
    typer.echo(f"{done} platform admin client '{name}' in department '{department_code}'")
    typer.echo(f"client secret (shown once, store it now): {secret}")
    typer.echo("get a token over HTTP:")
    typer.echo(
        f"  curl -s -u '{name}:{secret}' -d grant_type=client_credentials "
        f"{settings.public_base_url}/oauth/token"
    )
    typer.echo(f"or locally: broker token --account {name}")


@app.command()
def token(account: Annotated[str, typer.Option(help="Account name to mint a token for.")]) -> None:
    """Print an access token for ACCOUNT (local use and demos; needs database access)."""
    settings = Settings()

    async def mint(session: AsyncSession) -> str:
        found = await accounts.get_by_name(session=session, name=account)
        if found.disabled:
            _fail(f"account '{account}' is disabled")
        minted, _ttl = await accounts.issue_token(
            session=session, actor=CLI_ACTOR, settings=settings, account=found, grant_type="cli"
        )
        return minted

    typer.echo(run_in_session(settings, mint))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; tokens signed by older keys keep verifying until retired."""
    row = run_in_session(
        Settings(), lambda session: accounts.rotate_signing_key(session=session, actor=CLI_ACTOR)
    )
    typer.echo(f"new signing key {row.kid} ({row.alg}) signs from now on")


@keys_app.command("retire")
def keys_retire(kid: Annotated[str, typer.Argument(help="Key id to retire.")]) -> None:
    """Stop trusting a key: tokens it signed are refused on every replica from now on."""
    row = run_in_session(
        Settings(),
        lambda session: accounts.retire_signing_key(session=session, actor=CLI_ACTOR, kid=kid),
    )
    typer.echo(f"retired {row.kid}")


@keys_app.command("list")
def keys_list() -> None:
    """Show the active signing keys, newest (the signer) first."""
    rows = run_in_session(Settings(), lambda session: keys.active_keys(session=session))
    for index, row in enumerate(rows):
        role = "signs" if index == 0 else "verifies"
        typer.echo(f"{row.kid}  {row.alg}  {row.created_at.isoformat()}  {role}")


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{option} must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Events at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Events before (ISO 8601).")] = None,
    action: Annotated[str | None, typer.Option(help="Action prefix.")] = None,
    department: Annotated[str | None, typer.Option(help="Actor's department code.")] = None,
) -> None:
    """Export audit events to a file, streamed with a progress bar; ends with a trailer."""
    if format not in ("jsonl", "csv"):
        _fail("--format must be jsonl or csv")
    chosen: ExportFormat = "jsonl" if format == "jsonl" else "csv"
    filters = EventFilter(
        since=_parse_time(since, "--since"),
        until=_parse_time(until, "--until"),
        action_prefix=action,
        department=department,
    )
    settings = Settings()

    async def write(session: AsyncSession) -> int:
        total = await audit.count_events(session=session, filters=filters)
        written = 0
        with (
            output.open("w", encoding="utf-8", newline="") as handle,
            typer.progressbar(length=total, label="exporting", file=sys.stderr) as bar,
        ):
            async for chunk in export_chunks(session=session, filters=filters, format=chosen):
                handle.write(chunk)
                lines = chunk.count("\n")
                bar.update(lines)
                written += lines
        return total

    run_in_session(
        settings,
        lambda session: audit.register_export(
            session=session,
            actor=CLI_ACTOR,
            format=chosen,
            filters=filters,
            output=output.name,
        ),
    )
    total = run_read_only(settings, write)
    typer.echo(f"exported {total} events to {output}")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint file written by `broker audit checkpoint`.")
    ] = None,
) -> None:
    """Recompute the hash chain; exit 1 and name the first broken seq if it does not verify."""
    token = checkpoint.read_text().strip() if checkpoint else None
    result = run_read_only(
        Settings(), lambda session: audit.verify_chain(session=session, checkpoint=token)
    )
    if result.ok:
        typer.echo(f"ok: {result.count} events, head seq {result.head_seq} hash {result.head_hash}")
        return
    _fail(f"BROKEN at seq {result.first_bad_seq} ({result.problem}): {result.explanation}")


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also write it here.")
    ] = None,
) -> None:
    """Sign the chain head; keep the printed checkpoint somewhere the database cannot reach."""
    token, claims = run_in_session(
        Settings(), lambda session: audit.checkpoint(session=session, actor=CLI_ACTOR)
    )
    if output is not None:
        output.write_text(token + "\n")
    typer.echo(f"checkpoint at seq {claims['seq']} head {claims['head_hash']}")
    typer.echo(token)


@receipts_app.command("verify")
def receipts_verify(
    file: Annotated[
        Path,
        typer.Argument(
            help="The receipt: the compact JWS of the X-Receipt header, or the JSON of "
            "GET /v1/receipts/{id}."
        ),
    ],
    jwks: Annotated[
        Path | None,
        typer.Option(
            "--jwks",
            help="A key set (JWKS JSON, as /.well-known/jwks.json publishes it) to check against "
            "offline; default: every key in the configured database, retired ones too.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="The downloaded file: its SHA-256 must be the receipt's."),
    ] = None,
) -> None:
    """Check a download receipt's signature (exit 1 and say why if any byte was changed)."""
    import json

    from broker.delivery import receipts
    from broker.delivery.service import file_sha256

    try:
        text = file.read_text(encoding="utf-8")
        key_set = (
            json.loads(jwks.read_text(encoding="utf-8"))
            if jwks is not None
            else run_read_only(Settings(), lambda session: keys.all_public_jwks(session=session))
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _fail(f"cannot read the receipt or the key set: {exc}")
    if not isinstance(key_set, dict):
        _fail("the key set is not a JWKS (an object with a `keys` list)")
    try:
        claims = receipts.verify_document(text, jwks=key_set)
    except receipts.ReceiptInvalid as exc:
        _fail(f"INVALID: {exc}")
    typer.echo(json.dumps(claims, ensure_ascii=False, indent=2, sort_keys=True))
    if data is not None:
        try:
            digest = file_sha256(data)
        except OSError as exc:
            _fail(f"cannot read the data file: {exc}")
        signed = claims["data"].get("sha256")
        if digest != signed:
            _fail(
                f"INVALID: {data} has SHA-256 {digest}, the receipt names {signed}: it is not "
                "the file this receipt was issued for."
            )
        typer.echo(f"data: {data} is the file the receipt names (SHA-256 {signed})")
    typer.echo(f"valid: receipt {claims['jti']} of grant {claims['grant'].get('id')}")


async def _platform_department(session: AsyncSession) -> "Department":
    """The department the CLI acts for: the platform's, made by `broker accounts bootstrap`."""
    from catalog.departments.models import Department, DepartmentKind

    platform = await session.scalar(
        select(Department).where(Department.kind == DepartmentKind.platform).limit(1)
    )
    if platform is None:
        _fail("no platform department yet; run `broker accounts bootstrap` first")
    return platform


async def _platform_viewer(session: AsyncSession) -> "Viewer":
    """The catalog as the platform administrator sees it: every department's drafts too."""
    from catalog.access import Viewer

    platform = await _platform_department(session)
    return Viewer(
        department_id=platform.id,
        department_code=platform.code,
        is_platform=True,
        is_platform_admin=True,
        is_steward=True,
    )


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="目录 sheet: delimited text or a workbook.")],
    dry_run: Annotated[bool, typer.Option(help="Only report what would change.")] = False,
) -> None:
    """Import a 目录 sheet as the platform (all or nothing, upsert by codes)."""
    from broker.sheets import service as catalog_import
    from catalog.sheets import service as sheets

    data = file.read_bytes()

    async def run(session: AsyncSession) -> sheets.ImportPlan:
        viewer = await _platform_viewer(session)
        sheet = sheets.check_sheet(
            data=data, owners=await sheets.owners(session=session), viewer=viewer
        )
        return await catalog_import.import_sheet(
            session=session,
            actor=CLI_ACTOR,
            viewer=viewer,
            sheet=sheet,
            source=file.name,
            dry_run=dry_run,
        )

    plan = run_in_session(Settings(), run)
    verb = "would create" if dry_run else "created"
    typer.echo(
        f"{plan.rows} rows: {verb} {len(plan.created)}, "
        f"{'would update' if dry_run else 'updated'} {len(plan.updated)}, "
        f"unchanged {len(plan.unchanged)}"
    )
    for warning in plan.warnings:
        typer.echo(f"  warning: {warning.location}: {warning.message}")


@catalog_app.command("export")
def catalog_export(
    format: Annotated[
        str, typer.Option("--format", help="csv (UTF-8 with a BOM, as Excel opens it) or xlsx.")
    ] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write; default: CSV to standard output."),
    ] = None,
) -> None:
    """Write the whole catalog (drafts too) as a 目录 sheet; it re-imports with no changes."""
    from catalog.sheets import io as sheet_io
    from catalog.sheets import service as sheets

    if format not in ("csv", "xlsx"):
        _fail("--format must be csv or xlsx")
    if format == "xlsx" and output is None:
        _fail("an XLSX workbook is binary: give --output FILE.xlsx")

    async def rows(session: AsyncSession) -> list[list[str]]:
        return await sheets.export_rows(session=session, viewer=await _platform_viewer(session))

    exported = run_read_only(Settings(), rows)
    content = (sheet_io.write_xlsx if format == "xlsx" else sheet_io.write_csv)(exported)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(content)
    typer.echo(f"exported {len(exported)} items to {output}")


def _report_import(plan: "ImportPlan", *, noun: str, source: str, dry_run: bool) -> None:
    """What a department or account list changed (or would), one line per kind of change."""
    if dry_run:
        typer.echo(f"{source}: dry run, nothing written; {plan.rows} rows")
        verbs = ("would create", "would update")
    else:
        typer.echo(f"{source}: {plan.rows} rows imported")
        verbs = ("created", "updated")
    typer.echo(f"  {verbs[0]} {len(plan.created)} {noun}(s): {' '.join(plan.created) or '-'}")
    updated = " ".join(f"{key} ({', '.join(fields)})" for key, fields in plan.updated.items())
    typer.echo(f"  {verbs[1]} {len(plan.updated)}: {updated or '-'}")
    typer.echo(f"  unchanged {len(plan.unchanged)}: {' '.join(plan.unchanged) or '-'}")
    for warning in plan.warnings:
        typer.secho(f"  warning: {warning}", fg=typer.colors.YELLOW, err=True)


@departments_app.command("import")
def departments_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="Department list (CSV, TSV, XLSX, XLS or ODS): 部门编码/code, 部门名称/name, "
            "部门类型/kind, optionally 上级部门/parent."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option(help="Check the whole list and say what would change; write nothing.")
    ] = False,
) -> None:
    """Register the district's departments from one list, all or nothing (re-running is safe).

    A department already registered as the list says is unchanged; a changed name or parent is
    updated; a changed kind is refused. Every problem is named by its row.
    """
    from broker.departments import onboarding

    listing = onboarding.read_departments(file.read_bytes(), filename=file.name)
    plan = run_in_session(
        Settings(),
        lambda session: onboarding.import_departments(
            session=session, actor=CLI_ACTOR, listing=listing, source=file.name, dry_run=dry_run
        ),
    )
    _report_import(plan, noun="department", source=file.name, dry_run=dry_run)


SECRETS_FILE_HELP = (
    "A new file to write the client secrets of new system accounts to, readable by you only "
    "(mode 0600); it must not exist yet. Required when the list creates system accounts."
)


def _new_secrets_file(path: Path) -> IO[str]:
    """`path`, created now for the caller alone (0600), never over an existing file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(descriptor, "w", encoding="utf-8", newline="")


def _check_new_file(path: Path) -> None:
    if path.exists():
        raise FileExistsError(errno.EEXIST, "already exists", str(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(path.parent))


@accounts_app.command("import")
def accounts_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="Account list (CSV, TSV, XLSX, XLS or ODS): 账号/name, 类型/kind (person or "
            "system), 部门/department, 角色/roles, optionally 显示名/display name."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option(help="Check the whole list and say what would change; write nothing.")
    ] = False,
    secrets_file: Annotated[
        Path | None, typer.Option("--secrets-file", help=SECRETS_FILE_HELP)
    ] = None,
) -> None:
    """Create the district's people and systems from one list, all or nothing.

    Departments come first (`broker departments import`). An account already registered as the
    list says is unchanged; changed roles or display names are updated; a changed department or
    kind is refused. Secrets are never printed: they go to --secrets-file, once.
    """
    from broker.accounts import onboarding

    listing = onboarding.read_accounts(file.read_bytes(), filename=file.name)
    settings = Settings()
    if dry_run and secrets_file is not None:
        _check_new_file(secrets_file)
    handle = _new_secrets_file(secrets_file) if secrets_file and not dry_run else None

    async def run(session: AsyncSession) -> "AccountImportPlan":
        plan = await onboarding.import_accounts(
            session=session, actor=CLI_ACTOR, listing=listing, source=file.name, dry_run=dry_run
        )
        if plan.client_secrets and handle is None:
            raise CommandFailed(
                f"the list creates {len(plan.client_secrets)} system account(s) "
                f"({', '.join(plan.client_secrets)}), and their client secrets are never "
                "printed; nothing was imported. Run it again with --secrets-file PATH (a new "
                "file, readable by you only), or make them person accounts."
            )
        if handle is not None and plan.client_secrets:
            # Written before the commit: no account exists whose secret was never kept.
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["client_id", "client_secret"])
            writer.writerows(plan.client_secrets.items())
            handle.flush()
            os.fsync(handle.fileno())
        return plan

    try:
        plan = run_in_session(settings, run)
    except BaseException:
        if handle is not None and secrets_file is not None:
            handle.close()
            secrets_file.unlink(missing_ok=True)
        raise
    _report_import(plan, noun="account", source=file.name, dry_run=dry_run)
    if handle is not None and secrets_file is not None:
        handle.close()
        if plan.client_secrets:
            typer.echo(
                f"  wrote the client secrets of {len(plan.client_secrets)} new system account(s) "
                f"to {secrets_file} (readable by you only); each gets a token with "
                "POST /oauth/token (client credentials)"
            )
        else:
            secrets_file.unlink()
            typer.echo(f"  no system account was created: {secrets_file} was not written")
    elif dry_run and plan.new_clients and secrets_file is None:
        typer.echo(
            f"  the import creates {len(plan.new_clients)} system account(s): run it with "
            "--secrets-file PATH to receive their client secrets"
        )


@app.command()
def escalate() -> None:
    """Move every overdue or refused line to coordination and mark every overdue delivery as
    escalated (run it before the dispatch meeting)."""
    from broker.auth.principal import Principal
    from broker.delivery import progress
    from broker.requests import transitions
    from core.time import utcnow

    settings = Settings()

    async def sweep(session: AsyncSession) -> tuple[list[str], list[str]]:
        # The sweep is the system's own act: a principal of the platform department holding no
        # role, named as the CLI, as the audit events and line history name CLI_ACTOR.
        platform = await _platform_department(session)
        system = Principal(
            subject=CLI_ACTOR.subject or "system:cli",
            department_id=platform.id,
            department_code=platform.code,
            roles=frozenset(),
            issuer="cli",
            department_is_platform=True,
        )
        ctx = transitions.Context(
            session=session, principal=system, actor=CLI_ACTOR, settings=settings, now=utcnow()
        )
        moved = [str(line.id) for line in await transitions.escalate_sweep(ctx=ctx)]
        late = await progress.escalate_overdue(session=session, actor=CLI_ACTOR, now=ctx.now)
        return moved, [str(grant.id) for grant in late]

    moved, late = run_in_session(settings, sweep)
    typer.echo(f"escalated {len(moved)} line(s) to coordination")
    for line_id in moved:
        typer.echo(f"  {line_id}")
    typer.echo(f"escalated {len(late)} overdue delivery(ies) (grants) to coordination")
    for grant_id in late:
        typer.echo(f"  {grant_id}")


@app.command()
def freshness(
    department: Annotated[
        str | None, typer.Option(help="Only this department's datasets (its code).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List published datasets due for an update or stale, by owning department."""
    from broker.delivery import service as delivery
    from catalog.datasets import service as datasets
    from core.time import utcnow

    async def report(session: AsyncSession) -> str:
        now = utcnow()
        behind = await datasets.falling_behind(session=session, now=now, department_code=department)
        result = delivery.freshness_report(behind, now)
        if as_json:
            return result.model_dump_json(indent=2)
        lines = [f"as of {now:%Y-%m-%d %H:%M} UTC"]
        for group in result.departments:
            lines.append(
                f"{group.department_code} {group.department_name}: "
                f"{group.due} due, {group.stale} stale"
            )
            for entry in group.datasets:
                updated = f"{entry.last_updated_at:%Y-%m-%d}" if entry.last_updated_at else "never"
                lines.append(
                    f"  {entry.freshness.value:<5}  {entry.code}  {entry.title}  "
                    f"({entry.update_cycle.value}, last updated {updated})"
                )
        if not result.departments:
            lines.append("every published dataset is fresh")
        return "\n".join(lines)

    typer.echo(run_read_only(Settings(), report))
