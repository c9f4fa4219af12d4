"""The owner decides a line knowing what the data is for, for whom, in which scenario (issue 14)."""

import httpx
import pytest
from fastapi import FastAPI

from support.identities import Identities
from support.sharing import PURPOSE, Sharing, sharing


@pytest.fixture
async def s(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Sharing:
    return await sharing(app, client, identities)


async def test_the_owner_sees_purpose_requesting_department_and_scenario_in_the_inbox(
    s: Sharing,
) -> None:
    await s.scenario()
    await s.request_line()
    inbox = await s.client.get("/v1/inbox", headers=s.steward)
    assert inbox.status_code == 200, inbox.text
    [line] = inbox.json()["items"]
    assert (line["purpose"], line["requesting_department_code"], line["scenario_code"]) == (
        PURPOSE,
        "drc",
        "econ",
    )
