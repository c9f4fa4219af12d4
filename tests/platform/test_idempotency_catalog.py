"""An Idempotency-Key makes creating a department, an account, a dataset, a release or a checkpoint
safe to retry: the retry replays the first answer instead of creating a second object, and the
same key with another body is refused."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from broker.audit.models import AuditEvent
from broker.auth.models import Account
from broker.config import Settings
from broker.delivery.models import Release
from broker.kit.idempotency import IdempotencyRecord
from catalog.datasets.models import Dataset
from catalog.departments.models import Department
from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities

PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, storage_root=str(tmp_path / "releases"))


@pytest.fixture
async def steward(identities: Identities) -> dict[str, str]:
    return await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )


async def _count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app.state.session_factory() as session:
        found = await session.scalar(select(func.count()).select_from(model).where(*where))
        await session.commit()
    assert found is not None
    return int(found)


def _replayed(first: httpx.Response, retry: httpx.Response, status: int) -> None:
    assert first.status_code == retry.status_code == status, retry.text
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


async def test_a_retried_department_create_replays_the_first_answer(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    body = {"code": "tax", "name": "区税务局", "kind": "bureau"}
    keyed = {"Idempotency-Key": "department-1"}
    first = await admin_client.post("/v1/departments", json=body, headers=keyed)
    retry = await admin_client.post("/v1/departments", json=body, headers=keyed)
    _replayed(first, retry, 201)
    assert retry.headers["location"] == first.headers["location"] == "/v1/departments/tax"
    assert retry.headers["etag"] == first.headers["etag"]
    assert await _count(app, Department, Department.code == "tax") == 1

    other = await admin_client.post(
        "/v1/departments", json={**body, "code": "stats", "name": "区统计局"}, headers=keyed
    )
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.text
    assert await _count(app, Department, Department.code == "stats") == 0


async def test_a_retried_dataset_create_replays_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    keyed = {**steward, "Idempotency-Key": "dataset-1"}
    first = await client.post("/v1/datasets", json=POPULATION, headers=keyed)
    retry = await client.post("/v1/datasets", json=POPULATION, headers=keyed)
    _replayed(first, retry, 201)
    assert retry.headers["location"] == first.headers["location"]
    assert await _count(app, Dataset) == 1

    other = await client.post(
        "/v1/datasets", json={**POPULATION, "title": "另一个人口库"}, headers=keyed
    )
    assert other.status_code == 422, other.text
    assert await _count(app, Dataset) == 1


async def test_a_retried_release_upload_replays_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, steward: dict[str, str]
) -> None:
    created = await client.post("/v1/datasets", json=POPULATION, headers=steward)
    assert created.status_code == 201, created.text
    keyed = {**steward, "Idempotency-Key": "release-1"}
    path = f"/v1/datasets/{POPULATION['code']}/releases"
    data = as_csv(people(5))

    async def upload(content: bytes) -> httpx.Response:
        return await client.post(
            path,
            files={"file": ("人口.csv", content, "text/csv")},
            data=PERIOD,
            headers=keyed,
        )

    first = await upload(data)
    retry = await upload(data)
    _replayed(first, retry, 201)
    assert retry.headers["location"] == first.headers["location"]
    assert await _count(app, Release) == 1

    other = await upload(as_csv(people(6)))
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.text
    assert await _count(app, Release) == 1


async def test_a_retried_audit_checkpoint_replays_the_first_answer(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    keyed = {"Idempotency-Key": "checkpoint-1"}
    first = await admin_client.post("/v1/audit/checkpoints", headers=keyed)
    retry = await admin_client.post("/v1/audit/checkpoints", headers=keyed)
    _replayed(first, retry, 201)
    checkpointed = AuditEvent.action == "audit.checkpointed"
    assert await _count(app, AuditEvent, checkpointed) == 1

    other = await admin_client.post(
        "/v1/audit/checkpoints", content=b'{"note": "another"}', headers=keyed
    )
    assert other.status_code == 422, other.text
    assert await _count(app, AuditEvent, checkpointed) == 1


async def test_a_retried_account_create_replays_the_account_but_never_its_secret(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    body = {
        "name": "tax-system",
        "display_name": "税务局数据接口",
        "kind": "client",
        "department_code": "platform",
        "roles": ["steward"],
    }
    keyed = {"Idempotency-Key": "account-1"}
    first = await admin_client.post("/v1/accounts", json=body, headers=keyed)
    retry = await admin_client.post("/v1/accounts", json=body, headers=keyed)
    assert first.status_code == retry.status_code == 201, retry.text
    assert first.json()["client_secret"], "the first answer shows the secret once"
    assert retry.json() == {**first.json(), "client_secret": None}
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"]
    assert await _count(app, Account, Account.name == "tax-system") == 1
    other = await admin_client.post(
        "/v1/accounts", json={**body, "name": "other-system"}, headers=keyed
    )
    assert other.status_code == 422
    async with app.state.session_factory() as session:
        stored = await session.scalar(select(IdempotencyRecord))
        await session.commit()
    assert stored is not None
    assert first.json()["client_secret"] not in str(stored.response)
