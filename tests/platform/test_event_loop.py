"""CPU-heavy work runs off the event loop, a bounded number of jobs at a time.

These tests pin the structure, not a latency: a `/healthz` request must complete while a sheet is
still being checked, and heavy jobs past the limit must wait on the one shared limiter. The
latency itself is measured by `bench/loop_latency.py`.
"""

import asyncio
import csv
import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from broker.config import Settings
from broker.sheets.router import CHECK_IN_PROCESS_ABOVE_BYTES
from catalog.sheets.layout import COLUMNS
from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities

WAIT_SECONDS = 60.0


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """One slot, so a second heavy job must queue."""
    return Settings(
        database_url=database_url, storage_root=str(tmp_path / "releases"), heavy_work_slots=1
    )


def catalog_sheet(rows: int, *, prefix: str = "BENCH", per_dataset: int = 2000) -> bytes:
    """A valid 目录 sheet of `rows` items owned by 'stats', `per_dataset` items per dataset."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.header for c in COLUMNS])
    for n in range(rows):
        dataset = f"{prefix}-{n // per_dataset:04d}"
        values = {
            "code": dataset,
            "title": f"资源 {dataset}",
            "owner": "stats",
            "category": "部门",
            "item_code": f"{dataset}-{n:07d}",
            "item_name": f"信息项{n}",
            "data_type": "string",
            "share_type": "无条件共享",
            "update_cycle": "每月",
            "sensitivity": "L1",
        }
        writer.writerow([values.get(c.key, "") for c in COLUMNS])
    return buffer.getvalue().encode()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the loop until `condition` holds; fail after WAIT_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        await asyncio.sleep(0.002)


async def import_sheet(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post(
        "/v1/catalog/import",
        params={"dry_run": "true"},
        files={"file": ("目录.csv", data, "text/csv")},
    )


@pytest.fixture
async def district(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    created = await admin_client.post(
        "/v1/departments", json={"code": "stats", "name": "区统计局", "kind": "bureau"}
    )
    assert created.status_code == 201, created.text
    return admin_client


async def test_healthz_answers_while_a_large_sheet_is_being_checked(
    district: httpx.AsyncClient, app: FastAPI
) -> None:
    limiter = app.state.heavy_work.limiter
    sheet = catalog_sheet(60_000)
    assert len(sheet) > CHECK_IN_PROCESS_ABOVE_BYTES
    importing = asyncio.create_task(import_sheet(district, sheet))
    await until(lambda: limiter.borrowed_tokens == 1, "the sheet is being checked")

    health = await district.get("/healthz")

    assert health.status_code == 200
    assert limiter.borrowed_tokens == 1, "/healthz waited for the whole sheet to be checked"
    assert not importing.done()
    imported = await importing
    assert imported.status_code == 200, imported.text
    assert imported.json()["rows"] == 60_000
    assert len(imported.json()["created"]) == 30


async def test_a_small_sheet_is_checked_off_the_loop_too(
    district: httpx.AsyncClient, app: FastAPI
) -> None:
    limiter = app.state.heavy_work.limiter
    async with limiter:  # the only slot taken: the check must queue behind it
        importing = asyncio.create_task(import_sheet(district, catalog_sheet(20)))
        await until(lambda: limiter.statistics().tasks_waiting == 1, "the check queues")
        assert (await district.get("/healthz")).status_code == 200
        assert not importing.done()

    imported = await importing
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == ["BENCH-0000"]


async def test_heavy_jobs_past_the_limit_wait_for_a_free_slot(
    district: httpx.AsyncClient, app: FastAPI
) -> None:
    limiter = app.state.heavy_work.limiter
    assert limiter.total_tokens == 1
    first = asyncio.create_task(import_sheet(district, catalog_sheet(60_000)))
    await until(lambda: limiter.borrowed_tokens == 1, "the first sheet is being checked")
    second = asyncio.create_task(import_sheet(district, catalog_sheet(10, prefix="SMALL")))
    await until(lambda: limiter.statistics().tasks_waiting == 1, "the second sheet queues")

    assert (await district.get("/healthz")).status_code == 200
    assert not first.done()
    assert not second.done()
    assert (await first).status_code == 200
    assert (await second).status_code == 200


async def test_release_validation_queues_on_the_shared_heavy_work_limiter(
    client: httpx.AsyncClient, identities: Identities, app: FastAPI
) -> None:
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    created = await client.post("/v1/datasets", json=POPULATION, headers=steward)
    assert created.status_code == 201, created.text
    limiter = app.state.heavy_work.limiter

    async with limiter:  # every slot taken: the upload's validation must queue behind it
        uploading = asyncio.create_task(
            client.post(
                f"/v1/datasets/{POPULATION['code']}/releases",
                files={"file": ("人口.csv", as_csv(people(50)), "text/csv")},
                data={"period_start": "2026-10-01", "period_end": "2026-10-31"},
                headers=steward,
            )
        )
        await until(lambda: limiter.statistics().tasks_waiting == 1, "the validation queues")
        assert (await client.get("/healthz")).status_code == 200
        assert not uploading.done()

    uploaded = await uploading
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["row_count"] == 50
