"""Every workflow route records exactly the events of the transitions it makes."""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from support.audit_helpers import actions_after, head
from support.identities import Identities
from support.workflow import DECLARATION, WORKFLOW_ROUTES, District, district


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def step(
    app: FastAPI, d: District, who: str, method: str, path: str, body: Any = None
) -> tuple[dict[str, Any], list[str]]:
    before = await head(app)
    response = await d.as_(who, method, path, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json(), await actions_after(app, before)


async def test_each_workflow_route_records_one_event_per_transition(
    app: FastAPI, d: District
) -> None:
    covered: set[tuple[str, str]] = set()

    async def check(
        who: str, method: str, path: str, body: Any, expected: list[str]
    ) -> dict[str, Any]:
        result, recorded = await step(app, d, who, method, path, body)
        assert recorded == expected, (path, recorded)
        covered.add((method, re.sub(r"/[0-9a-f-]{36}|/econ(?=/|$)", "/{x}", path)))
        return result

    await check(
        "drc-requester",
        "POST",
        "/v1/scenarios",
        {"code": "econ", "name": "经济"},
        ["scenario.created"],
    )
    await check(
        "drc-requester",
        "PATCH",
        "/v1/scenarios/econ",
        {"phase": "development"},
        ["scenario.updated"],
    )
    member = await check(
        "drc-requester",
        "POST",
        "/v1/scenarios/econ/members",
        {"account": "drc-steward", "kind": "member"},
        ["scenario.member_added"],
    )
    await check(
        "drc-requester",
        "POST",
        f"/v1/scenarios/econ/members/{member['id']}/end",
        {"reason": "调岗"},
        ["scenario.member_ended"],
    )
    today = "2026-11-29"
    request = await check(
        "drc-requester",
        "POST",
        "/v1/requests",
        {
            "scenario_code": "econ",
            "title": "t",
            "purpose": "p",
            "usage_start": today,
            "usage_end": "2099-01-01",
        },
        ["request.created"],
    )
    rid = request["id"]
    codes = ["SW-SSSR", "SW-ZZS", "SW-QYSDS", "SW-GRSDS", "SW-QJSS", "SW-YNSE", "TJ-GDP", "SW-SSZS"]
    await check(
        "drc-requester",
        "POST",
        f"/v1/requests/{rid}/lines",
        {"item_codes": codes},
        ["request.lines_added"],
    )
    submitted = await check(
        "drc-requester",
        "POST",
        f"/v1/requests/{rid}/submit",
        None,
        ["request.submitted"]
        + ["line.route"] * 5
        + ["line.route", "line.route", "grant.issued", "line.route"],
    )
    line = {ln["item_code"]: ln["id"] for ln in submitted["lines"]}
    await check(
        "tax-steward",
        "POST",
        f"/v1/lines/{line['SW-SSSR']}/decisions",
        {"decision": "approve", "declaration": DECLARATION},
        ["line.approve", "grant.issued"],
    )
    await check(
        "tax-steward",
        "POST",
        "/v1/decisions",
        {"line_ids": [line["SW-ZZS"]], "decision": "needs_info", "question": "口径？"},
        ["line.needs_info"],
    )
    await check(
        "drc-requester",
        "POST",
        f"/v1/lines/{line['SW-ZZS']}/answer",
        {"answer": "现价"},
        ["line.answer"],
    )
    for code in ("SW-QYSDS", "SW-GRSDS"):
        await check(
            "tax-steward",
            "POST",
            f"/v1/lines/{line[code]}/decisions",
            {
                "decision": "approve_with_conditions",
                "declaration": DECLARATION,
                "conditions": {"purpose": "监测"},
            },
            ["line.approve_with_conditions"],
        )
    await check(
        "drc-requester",
        "POST",
        f"/v1/lines/{line['SW-QYSDS']}/accept",
        None,
        ["line.accept", "grant.issued"],
    )
    await check(
        "drc-requester", "POST", f"/v1/lines/{line['SW-GRSDS']}/decline", None, ["line.decline"]
    )
    await check(
        "drc-requester", "POST", f"/v1/lines/{line['SW-QJSS']}/withdraw", None, ["line.withdraw"]
    )
    await check(
        "drc-requester",
        "POST",
        f"/v1/lines/{line['SW-YNSE']}/escalate",
        {"reason": "需要"},
        ["line.escalate"],
    )
    await check(
        "leader",
        "POST",
        f"/v1/lines/{line['SW-YNSE']}/leader-decision",
        {
            "decision": "approve",
            "note": "同意",
            "legal_basis": "《政务数据共享条例》第十五条",
            "meeting_reference": "2026年第12次调度会",
        },
        ["line.leader_decide"],
    )
    await check(
        "platform-steward",
        "POST",
        f"/v1/lines/{line['SW-YNSE']}/countersignature",
        {"decision": "countersign"},
        ["line.countersign", "grant.issued"],
    )
    await check(
        "tax-steward",
        "POST",
        f"/v1/lines/{line['SW-SSZS']}/decisions",
        {
            "decision": "reject",
            "reason": "无",
            "legal_basis": "《政务数据共享条例》第十五条",
            "declaration": DECLARATION,
        },
        ["line.reject"],
    )
    await check("admin", "POST", "/v1/coordination/escalations", None, ["line.escalate"])
    grant = (await d.as_("drc-requester", "GET", f"/v1/requests/{rid}")).json()["lines"][0][
        "grant_id"
    ]
    await check(
        "tax-steward",
        "POST",
        f"/v1/grants/{grant}/suspend",
        {"reason": "核查"},
        ["grant.suspended"],
    )
    await check(
        "tax-steward", "POST", f"/v1/grants/{grant}/resume", {"reason": "完毕"}, ["grant.resumed"]
    )
    await check(
        "tax-steward", "POST", f"/v1/grants/{grant}/revoke", {"reason": "超范围"}, ["grant.revoked"]
    )
    assert covered == WORKFLOW_ROUTES

    before = await head(app)
    refused = await d.as_(
        "commerce-steward", "POST", f"/v1/grants/{grant}/revoke", json={"reason": "x"}
    )
    assert refused.status_code == 404
    denied = await d.as_("drc-requester", "POST", "/v1/coordination/escalations")
    assert denied.status_code == 403
    assert await actions_after(app, before) == ["access.denied"]
