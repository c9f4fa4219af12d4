"""GET and HEAD requests read without the write lock; GET routes that write say so and keep it.

On SQLite a read request's transaction is deferred: it takes no lock, so reads go on while a
writer holds the database. A read session that tries to write is refused at once on both
databases, so a GET route that writes without its `writes_on_read` mark fails in every test, not
only under load (where a deferred transaction that writes hits SQLITE_BUSY).
"""

import asyncio
import sqlite3
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from broker.db import WriteInReadOnlySession, make_request_read_session_factory
from broker.demo import population_dataset
from broker.kit.session import SessionDep, writes_on_read
from catalog.departments.models import Department, DepartmentKind
from core.time import utcnow
from support.database import ON_POSTGRES

DATASET = population_dataset()


async def _with_dataset(admin_client: httpx.AsyncClient) -> str:
    body = {"code": "police", "name": "区公安分局", "kind": "bureau"}
    assert (await admin_client.post("/v1/departments", json=body)).status_code == 201
    created = await admin_client.post(
        "/v1/datasets", json={**DATASET, "owner_department_code": "police"}
    )
    assert created.status_code == 201, created.text
    return f"/v1/datasets/{DATASET['code']}"


def _department_values(code: str) -> dict[str, object]:
    now = utcnow()
    return {
        "id": uuid.uuid4(),
        "code": code,
        "name": code,
        "kind": DepartmentKind.bureau,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL readers never wait for writers")
async def test_dataset_is_read_while_another_process_holds_the_sqlite_write_lock(
    admin_client: httpx.AsyncClient, database_url: str
) -> None:
    path = await _with_dataset(admin_client)
    writer = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # what a long write holds, as a replica would
        answer = await asyncio.wait_for(admin_client.get(path), timeout=5)
        assert answer.status_code == 200, answer.text
        head = await asyncio.wait_for(admin_client.head(path), timeout=5)
        assert head.status_code in {200, 405}
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_read_session_refuses_to_write_and_still_reads(app: FastAPI) -> None:
    factory = make_request_read_session_factory(app.state.engine)
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Department)) is not None
        with pytest.raises(WriteInReadOnlySession, match="writes_on_read"):
            await session.execute(insert(Department).values(**_department_values("nope")))
        await session.rollback()
    async with app.state.session_factory() as session:
        found = await session.scalar(select(Department).where(Department.code == "nope"))
    assert found is None


async def test_get_route_that_writes_works_only_when_marked(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def unmarked(session: SessionDep) -> dict[str, str]:
        await session.execute(insert(Department).values(**_department_values("unmarked")))
        return {"status": "written"}

    @writes_on_read
    async def marked(session: SessionDep) -> dict[str, str]:
        await session.execute(insert(Department).values(**_department_values("marked")))
        return {"status": "written"}

    app.add_api_route("/test-writes/unmarked", unmarked, methods=["GET"])
    app.add_api_route("/test-writes/marked", marked, methods=["GET"])

    assert (await client.get("/test-writes/unmarked")).status_code == 500
    answer = await client.get("/test-writes/marked")
    assert answer.status_code == 200, answer.text
    async with app.state.session_factory() as session:
        codes = set(
            await session.scalars(
                select(Department.code).where(Department.code.in_(["marked", "unmarked"]))
            )
        )
    assert codes == {"marked"}


async def test_concurrent_reads_and_writes_all_succeed(admin_client: httpx.AsyncClient) -> None:
    path = await _with_dataset(admin_client)

    async def write(n: int) -> int:
        body = {"code": f"dept{n}", "name": f"部门{n}", "kind": "bureau"}
        return (await admin_client.post("/v1/departments", json=body)).status_code

    async def read() -> int:
        return (await admin_client.get(path)).status_code

    statuses = await asyncio.gather(*(write(n) if n % 5 == 0 else read() for n in range(40)))
    assert statuses.count(201) == 8
    assert statuses.count(200) == 32
