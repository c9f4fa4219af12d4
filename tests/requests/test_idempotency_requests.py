"""An Idempotency-Key makes creating a scenario or a request safe to retry: the retry replays the
first answer instead of creating a second object; the key with another body is refused."""

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from broker.requests.models import Request
from broker.scenarios.models import Scenario
from support.identities import Identities

SCENARIO = {"code": "econ", "name": "经济运行指标监测", "phase": "development"}


@pytest.fixture
async def requester(identities: Identities) -> dict[str, str]:
    return await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )


def _draft(title: str = "经济运行指标数据需求") -> dict[str, Any]:
    today = date.today()
    return {
        "scenario_code": SCENARIO["code"],
        "title": title,
        "purpose": "经济运行监测分析",
        "usage_start": today.isoformat(),
        "usage_end": (today + timedelta(days=90)).isoformat(),
    }


async def _count(app: FastAPI, model: type[Request] | type[Scenario]) -> int:
    async with app.state.session_factory() as session:
        found = await session.scalar(select(func.count()).select_from(model))
        await session.commit()
    assert found is not None
    count: int = found
    return count


async def test_a_retried_scenario_create_replays_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, requester: dict[str, str]
) -> None:
    keyed = {**requester, "Idempotency-Key": "scenario-1"}
    first = await client.post("/v1/scenarios", json=SCENARIO, headers=keyed)
    retry = await client.post("/v1/scenarios", json=SCENARIO, headers=keyed)
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"] == "/v1/scenarios/econ"
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(app, Scenario) == 1


async def test_a_scenario_key_reused_for_another_body_is_refused(
    app: FastAPI, client: httpx.AsyncClient, requester: dict[str, str]
) -> None:
    keyed = {**requester, "Idempotency-Key": "scenario-1"}
    assert (await client.post("/v1/scenarios", json=SCENARIO, headers=keyed)).status_code == 201
    other = await client.post(
        "/v1/scenarios", json={**SCENARIO, "code": "tax", "name": "税收"}, headers=keyed
    )
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.text
    assert await _count(app, Scenario) == 1


async def test_a_scenario_create_without_a_key_is_not_replayed(
    client: httpx.AsyncClient, requester: dict[str, str]
) -> None:
    first = await client.post("/v1/scenarios", json=SCENARIO, headers=requester)
    again = await client.post("/v1/scenarios", json=SCENARIO, headers=requester)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 409, "without a key the second create is a duplicate code"


async def test_a_retried_request_create_replays_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, requester: dict[str, str]
) -> None:
    assert (await client.post("/v1/scenarios", json=SCENARIO, headers=requester)).is_success
    keyed = {**requester, "Idempotency-Key": "draft-1"}
    first = await client.post("/v1/requests", json=_draft(), headers=keyed)
    retry = await client.post("/v1/requests", json=_draft(), headers=keyed)
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert first.headers["location"] == f"/v1/requests/{first.json()['id']}"
    assert retry.headers["idempotent-replayed"] == "true"
    assert await _count(app, Request) == 1


async def test_a_request_key_reused_for_another_body_is_refused(
    app: FastAPI, client: httpx.AsyncClient, requester: dict[str, str]
) -> None:
    assert (await client.post("/v1/scenarios", json=SCENARIO, headers=requester)).is_success
    keyed = {**requester, "Idempotency-Key": "draft-1"}
    assert (await client.post("/v1/requests", json=_draft(), headers=keyed)).status_code == 201
    other = await client.post("/v1/requests", json=_draft("另一个需求"), headers=keyed)
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.text
    assert await _count(app, Request) == 1


async def test_request_creates_without_a_key_each_file_a_draft(
    app: FastAPI, client: httpx.AsyncClient, requester: dict[str, str]
) -> None:
    assert (await client.post("/v1/scenarios", json=SCENARIO, headers=requester)).is_success
    first = await client.post("/v1/requests", json=_draft(), headers=requester)
    second = await client.post("/v1/requests", json=_draft(), headers=requester)
    assert first.status_code == second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert await _count(app, Request) == 2
