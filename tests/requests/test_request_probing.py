"""Filing a request never tells a hidden object from a made-up one (404-style answers as 422)."""

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from support.delivery_data import POPULATION
from support.identities import Identities


@pytest.fixture
async def people(client: httpx.AsyncClient, identities: Identities) -> dict[str, dict[str, str]]:
    found = {
        "police": await identities.headers(
            "police-steward", department="police", department_kind="bureau", roles=("steward",)
        ),
        "drc": await identities.headers(
            "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
        ),
        "tax": await identities.headers(
            "tax-requester", department="tax", department_kind="bureau", roles=("requester",)
        ),
    }
    draft = await client.post(
        "/v1/datasets", json={**POPULATION, "status": "draft"}, headers=found["police"]
    )
    assert draft.status_code == 201, draft.text
    for who, code in (("drc", "econ"), ("tax", "tax-only")):
        made = await client.post(
            "/v1/scenarios", json={"code": code, "name": code}, headers=found[who]
        )
        assert made.status_code == 201, made.text
    return found


async def _file(
    client: httpx.AsyncClient, headers: dict[str, str], scenario: str, line: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/v1/requests",
        json={
            "scenario_code": scenario,
            "title": "人口数据需求",
            "purpose": "经济运行分析",
            "usage_start": date.today().isoformat(),
            "usage_end": (date.today() + timedelta(days=30)).isoformat(),
            "lines": [line],
        },
        headers=headers,
    )


def _shape(response: httpx.Response, name: str) -> tuple[int, Any]:
    """The answer with the code it names taken out, so two answers can be compared."""
    body = response.json()
    body.pop("instance", None)
    body.pop("request_id", None)
    return response.status_code, str(body).replace(name, "<code>")


@pytest.mark.parametrize(
    ("field", "hidden", "made_up"),
    [("dataset_code", POPULATION["code"], "GA-NOPE"), ("item_code", "RK-SFZH", "RK-NOPE")],
)
async def test_another_departments_draft_reads_like_an_unknown_code(
    client: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    field: str,
    hidden: str,
    made_up: str,
) -> None:
    seen = await _file(client, people["drc"], "econ", {field: hidden})
    unknown = await _file(client, people["drc"], "econ", {field: made_up})
    assert seen.status_code == 422
    assert _shape(seen, hidden) == _shape(unknown, made_up)
    assert "draft" not in seen.text


async def test_a_scenario_the_caller_takes_no_part_in_reads_like_an_unknown_one(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    line = {"dataset_code": "GA-NOPE"}
    foreign = await _file(client, people["drc"], "tax-only", line)
    unknown = await _file(client, people["drc"], "no-such", line)
    assert foreign.status_code == 422
    assert _shape(foreign, "tax-only") == _shape(unknown, "no-such")


async def test_the_owner_still_learns_its_own_draft_is_not_requestable(
    client: httpx.AsyncClient, identities: Identities, people: dict[str, dict[str, str]]
) -> None:
    police_requester = await identities.headers(
        "police-requester", department="police", department_kind="bureau", roles=("requester",)
    )
    await client.post("/v1/scenarios", json={"code": "ga", "name": "ga"}, headers=police_requester)
    own = await _file(client, police_requester, "ga", {"dataset_code": POPULATION["code"]})
    assert own.status_code == 422
    assert "draft" in own.json()["detail"]
