"""A transaction the database aborts because of another one is a retryable 409, never a 500.

PostgreSQL only: SQLite starts every writing transaction IMMEDIATE, so its writers queue and
cannot deadlock.
"""

import asyncio
import time

import httpx
import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from support.database import ON_POSTGRES
from support.identities import Identities
from support.workflow import DECLARATION, bundle, district

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="SQLite writers queue; no deadlocks")


def _lock_line(connection: Connection, line_id: str) -> None:
    connection.execute(
        text("SELECT id FROM request_line WHERE id = :id FOR UPDATE"), {"id": line_id}
    )


def _waiting_on_locks(connection: Connection) -> int:
    return int(
        connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    )


async def test_a_deadlocked_batch_decision_is_answered_409_with_retry_after(
    admin_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    identities: Identities,
    database_url: str,
) -> None:
    d = await district(admin_client, client, identities)
    draft = await bundle(d, ["SW-SSSR", "SW-ZZS"])
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    first, second = sorted(line["id"] for line in submitted.json()["lines"])

    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as other, engine.connect() as watcher:
            # The other transaction never runs the deadlock check, so the broker's does.
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            _lock_line(other, second)
            batch = asyncio.create_task(
                d.as_(
                    "tax-steward",
                    "POST",
                    "/v1/decisions",
                    json={
                        "line_ids": [second, first],
                        "decision": "approve",
                        "declaration": DECLARATION,
                    },
                )
            )
            deadline = time.monotonic() + 10
            while _waiting_on_locks(watcher) == 0:
                assert time.monotonic() < deadline, "the batch never waited for the line"
                await asyncio.sleep(0.05)
            # The batch holds the first line and waits for the second; take the first too.
            closing = asyncio.to_thread(_lock_line, other, first)
            answer, _ = await asyncio.gather(batch, closing)
            other.rollback()
    finally:
        engine.dispose()

    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "concurrent-update"
    assert answer.headers["retry-after"] == "1"
    after = await d.as_("drc-requester", "GET", f"/v1/requests/{draft['id']}")
    assert {line["state"] for line in after.json()["lines"]} == {"pending_owner"}
    retried = await d.as_(
        "tax-steward",
        "POST",
        "/v1/decisions",
        json={"line_ids": [second, first], "decision": "approve", "declaration": DECLARATION},
    )
    assert retried.status_code == 200, retried.text
