"""The delivery clock (issue 15): once a line is approved its owner has N working days to deliver
a first release; late, the grant is on the agenda and the sweep escalates it."""

import asyncio
import os
import sys
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from broker.config import Settings
from core.time import utcnow
from core.workdays import add_working_days
from support.audit_helpers import details_of, events
from support.deliveries import deliver, move_delivery_clock
from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def approved_tax_line(d: District) -> tuple[str, str]:
    """Development and Reform's line for tax revenue, approved by tax: (line id, grant id)."""
    draft = await bundle(d, ["SW-SSSR"])
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    line = submitted.json()["lines"][0]
    approved = await d.as_(
        "tax-steward",
        "POST",
        f"/v1/lines/{line['id']}/decisions",
        json={"decision": "approve", "declaration": DECLARATION},
    )
    assert approved.status_code == 200, approved.text
    return line["id"], approved.json()["grant_id"]


async def agenda(d: District, format: str = "json") -> httpx.Response:
    response = await d.as_("leader", "GET", "/v1/coordination/agenda", params={"format": format})
    assert response.status_code == 200, response.text
    return response


async def test_a_grant_is_due_for_delivery_n_working_days_after_issue(
    d: District, settings: Settings
) -> None:
    _line_id, grant_id = await approved_tax_line(d)
    issued = datetime.fromisoformat(
        (await d.as_("drc-requester", "GET", f"/v1/grants/{grant_id}")).json()["valid_from"]
    )
    inbox = await d.as_("tax-steward", "GET", "/v1/inbox/deliveries")
    assert inbox.status_code == 200, inbox.text
    [waiting] = inbox.json()["items"]
    due, _basis = add_working_days(issued, settings.delivery_working_days)
    assert settings.delivery_working_days == 5
    assert datetime.fromisoformat(waiting["delivery_due_at"]) == due
    shown = ("grant_id", "dataset_code", "grantee_code", "scenario_code")
    assert {k: waiting[k] for k in shown} == {
        "grant_id": grant_id,
        "dataset_code": "SW-SSSR-M",
        "grantee_code": "drc",
        "scenario_code": "econ",
    }
    assert waiting["purpose"] == "经济运行监测分析与月度研判"
    assert (waiting["overdue"], waiting["escalated_at"]) == (False, None)
    assert (await agenda(d)).json()["overdue_deliveries"] == []


async def test_only_the_owning_departments_stewards_see_deliveries_they_owe(d: District) -> None:
    await approved_tax_line(d)
    other = await d.as_("stats-steward", "GET", "/v1/inbox/deliveries")
    assert other.status_code == 200
    assert other.json()["items"] == []
    requester = await d.as_("drc-requester", "GET", "/v1/inbox/deliveries")
    assert requester.status_code == 403


async def test_an_overdue_delivery_is_on_the_agenda_escalated_once_and_leaves_when_delivered(
    d: District, app: FastAPI
) -> None:
    line_id, grant_id = await approved_tax_line(d)
    await move_delivery_clock(app, grant_id, utcnow() - timedelta(days=2))

    [late] = (await agenda(d)).json()["overdue_deliveries"]
    assert (late["grant_id"], late["line_id"], late["department_code"]) == (
        grant_id,
        line_id,
        "tax",
    )
    assert (late["grantee_code"], late["escalated_at"], late["age_days"]) == ("drc", None, 2)
    assert grant_id in (await agenda(d, "csv")).text
    assert "| delivery_overdue | 2 |" in (await agenda(d, "markdown")).text
    board = (await d.as_("drc-requester", "GET", "/v1/scenarios/econ/readiness")).json()
    assert (board["granted"], board["delivered"], board["delivery_overdue"]) == (1, 0, 1)
    [held] = board["blocking"]["delivered"]
    assert (held["line_id"], held["item_code"]) == (line_id, "SW-SSSR")

    swept = await d.as_("admin", "POST", "/v1/coordination/escalations")
    assert swept.status_code == 200, swept.text
    assert swept.json() == {"escalated": [], "deliveries_escalated": [grant_id]}
    again = await d.as_("admin", "POST", "/v1/coordination/escalations")
    assert again.json()["deliveries_escalated"] == []
    [event] = [e for e in await events(app) if e.action == "grant.delivery_escalated"]
    assert (event.object_id, details_of(event)["owner"]) == (grant_id, "tax")
    [escalated] = (await agenda(d)).json()["overdue_deliveries"]
    assert escalated["escalated_at"] is not None
    assert "| delivery_escalated |" in (await agenda(d, "markdown")).text
    [owed] = (await d.as_("tax-steward", "GET", "/v1/inbox/deliveries")).json()["items"]
    assert (owed["overdue"], owed["escalated_at"]) == (True, escalated["escalated_at"])

    await deliver(d, "tax-steward", "SW-SSSR-M")
    assert (await agenda(d)).json()["overdue_deliveries"] == []
    assert (await d.as_("tax-steward", "GET", "/v1/inbox/deliveries")).json()["items"] == []
    board = (await d.as_("drc-requester", "GET", "/v1/scenarios/econ/readiness")).json()
    assert (board["delivered"], board["delivery_overdue"]) == (1, 0)
    download = await d.as_("drc-requester", "GET", f"/v1/grants/{grant_id}/data")
    assert download.status_code == 200, download.text


async def test_a_revoked_grant_is_owed_nothing(d: District, app: FastAPI) -> None:
    _line_id, grant_id = await approved_tax_line(d)
    await move_delivery_clock(app, grant_id, utcnow() - timedelta(days=1))
    revoked = await d.as_(
        "tax-steward", "POST", f"/v1/grants/{grant_id}/revoke", json={"reason": "需求取消"}
    )
    assert revoked.status_code == 200, revoked.text
    assert (await agenda(d)).json()["overdue_deliveries"] == []
    swept = await d.as_("admin", "POST", "/v1/coordination/escalations")
    assert swept.json()["deliveries_escalated"] == []


async def test_the_inbox_of_deliveries_pages_by_due_date(d: District, app: FastAPI) -> None:
    draft = await bundle(d, ["SW-SSSR", "SW-ZZS", "SW-QYSDS"])
    lines = (await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")).json()[
        "lines"
    ]
    grants = []
    for offset, line in enumerate(lines):
        approved = await d.as_(
            "tax-steward",
            "POST",
            f"/v1/lines/{line['id']}/decisions",
            json={"decision": "approve", "declaration": DECLARATION},
        )
        grants.append(approved.json()["grant_id"])
        await move_delivery_clock(app, grants[-1], utcnow() + timedelta(days=3 - offset))
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await d.as_("tax-steward", "GET", "/v1/inbox/deliveries", params=params)).json()
        seen += [item["grant_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(grants))
    forged = await d.as_("tax-steward", "GET", "/v1/inbox/deliveries", params={"cursor": "x"})
    assert forged.status_code == 422


async def test_cli_escalate_marks_overdue_deliveries(
    d: District, app: FastAPI, settings: Settings
) -> None:
    _line_id, grant_id = await approved_tax_line(d)
    await move_delivery_clock(app, grant_id, utcnow() - timedelta(days=1))
    broker = os.path.join(os.path.dirname(sys.executable), "broker")
    process = await asyncio.create_subprocess_exec(
        broker,
        "escalate",
        env={**os.environ, "BROKER_DATABASE_URL": settings.database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    assert f"escalated 1 overdue delivery(ies) (grants) to coordination\n  {grant_id}" in (
        out.decode()
    )
    [late] = (await agenda(d)).json()["overdue_deliveries"]
    assert late["escalated_at"] is not None
