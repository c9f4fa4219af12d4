"""Someone with database access rewrites history; verify and checkpoints must expose it."""

import json
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from broker.audit.chain import compute_hash
from support.audit_helpers import events
from support.database import ON_POSTGRES


def _sync_url(app: FastAPI) -> str:
    url = make_url(app.state.settings.database_url)
    driver = "postgresql+psycopg" if ON_POSTGRES else "sqlite"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def tamper(app: FastAPI, change: Callable[[Connection], object]) -> None:
    """Run raw SQL as the database owner, with the append-only trigger switched off."""
    engine = create_engine(_sync_url(app))
    with engine.begin() as connection:
        if ON_POSTGRES:
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            connection.execute(
                text("ALTER TABLE audit_event DROP CONSTRAINT uq_audit_event_prev_hash")
            )
            connection.execute(text("ALTER TABLE audit_event DROP CONSTRAINT uq_audit_event_hash"))
        change(connection)
        if ON_POSTGRES:
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
    engine.dispose()


@pytest.fixture
async def history(app: FastAPI, admin_client: httpx.AsyncClient) -> str:
    """Ten events or so, and a checkpoint taken before anyone tampers."""
    for code in ("a", "b", "c", "d"):
        await admin_client.post(
            "/v1/departments", json={"code": code, "name": code, "kind": "bureau"}
        )
        await admin_client.patch(
            f"/v1/departments/{code}", json={"name": code.upper()}, headers={"If-Match": '"1"'}
        )
    checkpoint: str = (await admin_client.post("/v1/audit/checkpoints")).json()["checkpoint"]
    assert (await admin_client.get("/v1/audit/verify")).json()["ok"] is True
    return checkpoint


async def verify(client: httpx.AsyncClient, checkpoint: str | None = None) -> dict[str, object]:
    params = {"checkpoint": checkpoint} if checkpoint else {}
    response = await client.get("/v1/audit/verify", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_an_edited_event_is_named(
    app: FastAPI, admin_client: httpx.AsyncClient, history: str
) -> None:
    tamper(
        app, lambda c: c.execute(text("UPDATE audit_event SET outcome = 'failure' WHERE seq = 4"))
    )
    result = await verify(admin_client)
    assert result["ok"] is False
    assert (result["first_bad_seq"], result["problem"]) == (4, "edited")


async def test_a_deleted_event_is_named(
    app: FastAPI, admin_client: httpx.AsyncClient, history: str
) -> None:
    tamper(app, lambda c: c.execute(text("DELETE FROM audit_event WHERE seq = 5")))
    result = await verify(admin_client)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (False, 5, "deleted")


async def test_reordered_events_are_named(
    app: FastAPI, admin_client: httpx.AsyncClient, history: str
) -> None:
    def swap(connection: Connection) -> None:
        connection.execute(text("UPDATE audit_event SET seq = -3 WHERE seq = 3"))
        connection.execute(text("UPDATE audit_event SET seq = 3 WHERE seq = 4"))
        connection.execute(text("UPDATE audit_event SET seq = 4 WHERE seq = -3"))

    tamper(app, swap)
    result = await verify(admin_client)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (False, 3, "reordered")


@pytest.mark.parametrize("well_hashed", [True, False], ids=["well-hashed", "unlinked"])
async def test_an_inserted_event_is_named(
    app: FastAPI, admin_client: httpx.AsyncClient, history: str, well_hashed: bool
) -> None:
    """A forger inserts an event at seq 6 and renumbers the rest.

    Well hashed: it links to seq 5 and carries a correct hash (the forger knows the algorithm);
    that needs the UNIQUE guard on prev_hash dropped, which only the PostgreSQL owner can do here.
    Unlinked: it points at no event of the chain.
    """
    if well_hashed and not ON_POSTGRES:
        pytest.skip("SQLite cannot drop the UNIQUE(prev_hash) guard that blocks this forgery")
    rows = await events(app)
    template = rows[5]  # seq 6; the forgery goes in at seq 6, originals move up by one

    def insert(connection: Connection) -> None:
        from broker.audit.chain import event_document

        connection.execute(text("UPDATE audit_event SET seq = -seq WHERE seq >= 6"))
        connection.execute(text("UPDATE audit_event SET seq = -seq + 1 WHERE seq <= -6"))
        forged = template
        forged.seq = 6
        forged.prev_hash = rows[4].hash if well_hashed else "f" * 64
        forged.action = "department.deleted"
        forged.id = uuid.UUID(int=6)
        forged.details = {}
        document = event_document(forged)
        connection.execute(
            text(
                "INSERT INTO audit_event (seq, id, time, actor_subject, actor_department, "
                "actor_roles, actor_client, action, object_type, object_id, outcome, request_id, "
                "client_address, details, prev_hash, hash) VALUES (:seq, :id, :time, :subject, "
                ":department, :roles, :client, :action, :otype, :oid, :outcome, :rid, :addr, "
                ":details, :prev, :hash)"
            ),
            {
                "seq": 6,
                "id": str(forged.id) if ON_POSTGRES else forged.id.hex,
                "time": forged.time,
                "subject": forged.actor_subject,
                "department": forged.actor_department,
                "roles": json.dumps(forged.actor_roles),
                "client": forged.actor_client,
                "action": forged.action,
                "otype": forged.object_type,
                "oid": forged.object_id,
                "outcome": forged.outcome,
                "rid": forged.request_id,
                "addr": forged.client_address,
                "details": "{}",
                "prev": forged.prev_hash,
                "hash": compute_hash(forged.prev_hash, document),
            },
        )

    tamper(app, insert)
    result = await verify(admin_client)
    assert (result["ok"], result["problem"]) == (False, "inserted")
    assert result["first_bad_seq"] == 6


async def test_a_checkpoint_exposes_history_cut_off_at_the_end(
    app: FastAPI, admin_client: httpx.AsyncClient, history: str
) -> None:
    """Deleting the newest events leaves a valid chain; only the checkpoint can tell."""
    claims_seq = (await verify(admin_client, history))["checkpoint"]["seq"]  # type: ignore[index]
    tamper(
        app,
        lambda c: c.execute(text("DELETE FROM audit_event WHERE seq >= :s"), {"s": claims_seq - 1}),
    )
    plain = await verify(admin_client)
    assert plain["ok"] is True
    against_checkpoint = await verify(admin_client, history)
    assert against_checkpoint["ok"] is False
    assert against_checkpoint["problem"] == "truncated"


async def test_a_checkpoint_exposes_a_rewritten_chain(
    app: FastAPI, admin_client: httpx.AsyncClient, history: str
) -> None:
    """Edit an event and recompute every later hash: the chain verifies, the checkpoint does not."""
    rows = await events(app)

    def rewrite(connection: Connection) -> None:
        from broker.audit.chain import event_document

        prev = rows[1].hash
        for row in rows[2:]:
            row.prev_hash = prev
            if row.seq == 3:
                row.outcome = "failure"
            row.hash = compute_hash(prev, event_document(row))
            connection.execute(
                text(
                    "UPDATE audit_event SET outcome = :o, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"o": row.outcome, "p": row.prev_hash, "h": row.hash, "s": row.seq},
            )
            prev = row.hash

    tamper(app, rewrite)
    assert (await verify(admin_client))["ok"] is True
    result = await verify(admin_client, history)
    assert (result["ok"], result["problem"]) == (False, "rewritten")


async def test_a_forged_checkpoint_is_refused(
    admin_client: httpx.AsyncClient, history: str
) -> None:
    header, payload, signature = history.split(".")
    response = await admin_client.get(
        "/v1/audit/verify", params={"checkpoint": f"{header}.{payload}x.{signature}"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "query.checkpoint"


@pytest.mark.skipif(not ON_POSTGRES, reason="the append-only trigger is PostgreSQL's")
async def test_postgres_refuses_update_delete_and_truncate(app: FastAPI, history: str) -> None:
    engine = create_engine(_sync_url(app))
    for statement in (
        "UPDATE audit_event SET outcome = 'x' WHERE seq = 1",
        "DELETE FROM audit_event WHERE seq = 1",
        "TRUNCATE audit_event",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    engine.dispose()
