"""Refusals name their legal basis; the leader's override has limits (政务数据共享条例 2025,
国发〔2016〕51号: coordination is upward, not unlimited)."""

import csv
import io
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from broker.requests.models import Decision
from catalog.datasets.models import Dataset
from catalog.vocab import DataGrade
from support.audit_helpers import events
from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district

PROBLEM = "application/problem+json"
REASON = "跨部门共享须经本局审批，本次用途不符"
BASIS = "《政务数据共享条例》第十五条"
MEETING = "2026年第12次调度会"


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def submitted(d: District, codes: list[str]) -> tuple[str, dict[str, dict[str, Any]]]:
    draft = await bundle(d, codes)
    response = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    assert response.status_code == 200, response.text
    return draft["id"], {line["item_code"]: line for line in response.json()["lines"]}


async def refuse(d: District, line: dict[str, Any], **body: Any) -> httpx.Response:
    return await d.as_(
        "tax-steward",
        "POST",
        f"/v1/lines/{line['id']}/decisions",
        json={"decision": "reject", "declaration": DECLARATION, **body},
    )


async def refused_and_escalated(d: District, code: str) -> dict[str, Any]:
    _, lines = await submitted(d, [code])
    refused = await refuse(d, lines[code], reason=REASON, legal_basis=BASIS)
    assert refused.status_code == 200, refused.text
    escalated = await d.as_(
        "drc-requester",
        "POST",
        f"/v1/lines/{lines[code]['id']}/escalate",
        json={"reason": "经济运行监测需要，申请协调"},
    )
    assert escalated.status_code == 200, escalated.text
    return lines[code]


async def settle(d: District, line: dict[str, Any], **body: Any) -> httpx.Response:
    return await d.as_(
        "leader", "POST", f"/v1/lines/{line['id']}/leader-decision", json={"note": "协调", **body}
    )


async def test_a_refusal_without_a_legal_basis_is_422_naming_it(d: District) -> None:
    request_id, lines = await submitted(d, ["SW-SSSR"])
    response = await refuse(d, lines["SW-SSSR"], reason=REASON)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [e["location"] for e in response.json()["errors"]] == ["body.legal_basis"]
    after = (await d.as_("drc-requester", "GET", f"/v1/requests/{request_id}")).json()
    assert after["lines"][0]["state"] == "pending_owner"


async def test_the_requester_and_the_agenda_see_the_reason_and_its_basis(d: District) -> None:
    request_id, lines = await submitted(d, ["SW-SSSR"])
    refused = await refuse(d, lines["SW-SSSR"], reason=REASON, legal_basis=BASIS)
    assert refused.status_code == 200, refused.text
    assert (refused.json()["reason"], refused.json()["refusal_basis"]) == (REASON, BASIS)

    seen = (await d.as_("drc-requester", "GET", f"/v1/requests/{request_id}")).json()["lines"][0]
    assert (seen["state"], seen["reason"], seen["refusal_basis"]) == ("rejected", REASON, BASIS)

    agenda = (await d.as_("leader", "GET", "/v1/coordination/agenda")).json()["outstanding"]
    row = next(o for o in agenda if o["line_id"] == lines["SW-SSSR"]["id"])
    assert (row["reason"], row["refusal_basis"]) == (REASON, BASIS)

    as_csv = await d.as_("leader", "GET", "/v1/coordination/agenda", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    found = next(r for r in rows if r["line_id"] == lines["SW-SSSR"]["id"])
    assert (found["reason"], found["refusal_basis"]) == (REASON, BASIS)

    markdown = await d.as_(
        "leader", "GET", "/v1/coordination/agenda", params={"format": "markdown"}
    )
    assert "| note | legal basis |" in markdown.text
    assert f"| {REASON} | {BASIS} |" in markdown.text


async def test_a_policy_refusal_quotes_the_datasets_legal_basis(d: District) -> None:
    _, lines = await submitted(d, ["SW-NSRSBH"])
    line = lines["SW-NSRSBH"]
    assert line["state"] == "rejected"
    assert line["refusal_basis"].startswith("《中华人民共和国税收征收管理法》")
    assert line["refusal_basis"] in line["reason"]


async def test_core_grade_data_is_never_granted_by_override(d: District, app: FastAPI) -> None:
    async with app.state.session_factory() as session:
        await session.execute(
            update(Dataset).where(Dataset.code == "SW-SSSR-M").values(data_grade=DataGrade.core)
        )
        await session.commit()
    line = await refused_and_escalated(d, "SW-SSSR")

    override = await settle(
        d, line, decision="approve", legal_basis=BASIS, meeting_reference=MEETING
    )
    assert override.status_code == 409, override.text
    assert override.headers["content-type"] == PROBLEM
    assert "核心数据不得通过协调授权" in override.json()["rule"]
    assert "核心数据不得通过协调授权" in override.json()["detail"]

    final = await settle(d, line, decision="rejected_final")
    assert final.status_code == 200, final.text
    assert final.json()["state"] == "rejected_final"


async def test_overriding_a_refusal_needs_its_basis_and_the_meeting(
    d: District, app: FastAPI
) -> None:
    line = await refused_and_escalated(d, "SW-SSSR")

    bare = await settle(d, line, decision="approve")
    assert bare.status_code == 422, bare.text
    assert {e["location"] for e in bare.json()["errors"]} == {
        "body.legal_basis",
        "body.meeting_reference",
    }
    no_meeting = await settle(d, line, decision="approve", legal_basis=BASIS)
    assert no_meeting.status_code == 422, no_meeting.text
    assert [e["location"] for e in no_meeting.json()["errors"]] == ["body.meeting_reference"]

    granted = await settle(
        d, line, decision="approve", legal_basis=BASIS, meeting_reference=MEETING
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["state"] == "approved"
    assert granted.json()["grant_id"] is not None

    async with app.state.session_factory() as session:
        payload = await session.scalar(
            select(Decision.payload).where(
                Decision.line_id == uuid.UUID(line["id"]), Decision.action == "leader_decide"
            )
        )
    assert payload is not None
    assert (payload["legal_basis"], payload["meeting_reference"]) == (BASIS, MEETING)
    audited = [e for e in await events(app) if e.action == "line.leader_decide"]
    assert (audited[-1].details["legal_basis"], audited[-1].details["meeting_reference"]) == (
        BASIS,
        MEETING,
    )
