"""Concurrent appends from two API processes keep the audit chain a single, gapless line.

Two `uvicorn` processes share one database; four writer tasks, alternating between them, each send
a run of PATCH /v1/departments/{code} (one `department.updated` event apiece). Afterwards the chain
is checked straight in the database (no fork: every prev_hash distinct, seqs 1..N without a gap,
every link pointing at its predecessor), through GET /v1/audit/verify and through `broker audit
verify`.

On PostgreSQL the appends take turns on the chain's advisory lock; on SQLite every write
transaction is BEGIN IMMEDIATE with a 15 s busy timeout, so the writers are serialised by the
database itself. Both run the full 4 x 500: on an idle 2-core box the writing takes about 27 s
on PostgreSQL and 33 s on SQLite (the whole test 35-45 s), so SQLite needs no smaller run.
"""

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from broker.audit.models import AuditEvent
from support.processes import Api, bootstrap_admin, run_broker, start_api, wait_until_ready

REQUEST_TIMEOUT_SECONDS = 60.0

WRITERS = 4
UPDATES_PER_WRITER = 500


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[tuple[Api, Api]]:
    """Two API processes on one database, both ready; both stopped afterwards, pass or fail."""
    with ExitStack() as stack:
        apis = [start_api(database_url, tmp_path / f"api-{n}.log", stack) for n in ("a", "b")]
        for api in apis:
            wait_until_ready(api)
        yield apis[0], apis[1]


def _sync_url(database_url: str) -> str:
    url = make_url(database_url)
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


async def _write(base_urls: list[str], token: str) -> list[tuple[int, int, str]]:
    """Create one department per writer, then run the writers concurrently.

    Returns every PATCH that did not answer 200, as (writer, attempt, status and body).
    """
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
    async with (
        httpx.AsyncClient(base_url=base_urls[0], headers=headers, timeout=timeout) as api_a,
        httpx.AsyncClient(base_url=base_urls[1], headers=headers, timeout=timeout) as api_b,
    ):
        apis = (api_a, api_b)
        for writer in range(WRITERS):
            created = await apis[writer % 2].post(
                "/v1/departments",
                json={"code": f"w{writer}", "name": f"w{writer}", "kind": "bureau"},
            )
            assert created.status_code == 201, created.text

        failures: list[tuple[int, int, str]] = []

        async def writer_task(writer: int) -> None:
            api = apis[writer % 2]
            for attempt in range(UPDATES_PER_WRITER):
                response = await api.patch(
                    f"/v1/departments/w{writer}",
                    json={"name": f"writer {writer} update {attempt}"},
                    headers={"If-Match": f'"{attempt + 1}"'},
                )
                if response.status_code != 200:
                    failures.append((writer, attempt, f"{response.status_code} {response.text}"))

        await asyncio.gather(*(writer_task(writer) for writer in range(WRITERS)))
        return failures


def test_concurrent_writers_on_two_processes_never_fork_the_chain(
    database_url: str, replicas: tuple[Api, Api]
) -> None:
    api_a, api_b = replicas
    secret = bootstrap_admin(database_url)

    issued = httpx.post(
        f"{api_a.base_url}/oauth/token",
        auth=("admin", secret),
        data={"grant_type": "client_credentials"},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    started = time.monotonic()
    failures = asyncio.run(_write([api_a.base_url, api_b.base_url], token))
    elapsed = time.monotonic() - started
    assert failures == [], f"{len(failures)} PATCHes failed, first: {failures[:3]}"
    print(f"\n{WRITERS}x{UPDATES_PER_WRITER} PATCHes on two processes in {elapsed:.1f}s")

    engine = create_engine(_sync_url(database_url))
    try:
        with engine.connect() as connection:
            count, distinct_prev, max_seq = connection.execute(
                select(
                    func.count(),
                    func.count(func.distinct(AuditEvent.prev_hash)),
                    func.max(AuditEvent.seq),
                )
            ).one()
            links = connection.execute(
                select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash).order_by(
                    AuditEvent.seq
                )
            ).all()
            writers_in_order = connection.scalars(
                select(AuditEvent.object_id)
                .where(AuditEvent.action == "department.updated")
                .order_by(AuditEvent.seq)
            ).all()
            updates = connection.execute(
                select(AuditEvent.object_id, func.count())
                .where(AuditEvent.action == "department.updated")
                .group_by(AuditEvent.object_id)
            ).all()
    finally:
        engine.dispose()

    assert count == distinct_prev == max_seq, (count, distinct_prev, max_seq)
    assert [row.seq for row in links] == list(range(1, count + 1))
    broken = [row.seq for before, row in pairwise(links) if row.prev_hash != before.hash]
    assert broken == [], f"events not linked to their predecessor: {broken[:10]}"
    assert dict(updates) == {f"w{writer}": UPDATES_PER_WRITER for writer in range(WRITERS)}
    assert sum(n for _code, n in updates) == WRITERS * UPDATES_PER_WRITER
    # The writers really ran at once: one after another would switch only WRITERS - 1 times.
    switches = sum(1 for before, after in pairwise(writers_in_order) if before != after)
    assert switches > 10 * WRITERS, f"the writers hardly interleaved ({switches} switches)"

    verified = httpx.get(
        f"{api_b.base_url}/v1/audit/verify",
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["ok"] is True, body
    assert body["count"] == count
    assert body["head_seq"] == count

    assert f"ok: {count} events" in run_broker(database_url, "audit", "verify")
