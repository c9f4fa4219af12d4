import asyncio
import os
import sys
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from broker.kit.idempotency import IdempotencyRecord
from broker.requests.models import RequestLine
from core.time import utcnow
from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district

PROBLEM = "application/problem+json"


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def submitted(d: District, codes: list[str], **extra: Any) -> dict[str, dict[str, Any]]:
    draft = await bundle(d, codes, **extra)
    response = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    assert response.status_code == 200, response.text
    return {line["item_code"] or line["need"]: line for line in response.json()["lines"]}


async def decide(d: District, who: str, line: dict[str, Any], **body: Any) -> httpx.Response:
    return await d.as_(who, "POST", f"/v1/lines/{line['id']}/decisions", json=body)


async def test_a_line_is_decided_only_by_its_owner(d: District) -> None:
    lines = await submitted(d, ["SW-SSSR"])
    requesting_side = await d.identities.headers(
        "drc-steward", department="drc", department_kind="bureau", roles=("steward",)
    )
    seen_not_owned = await d.client.post(
        f"/v1/lines/{lines['SW-SSSR']['id']}/decisions",
        json={"decision": "approve", "declaration": DECLARATION},
        headers=requesting_side,
    )
    assert seen_not_owned.status_code == 403
    unseen = await decide(
        d, "commerce-steward", lines["SW-SSSR"], decision="approve", declaration=DECLARATION
    )
    assert unseen.status_code == 404, "lines of other departments' requests are not disclosed"


async def test_deciding_twice_or_out_of_order_is_409_naming_the_state(d: District) -> None:
    lines = await submitted(d, ["SW-SSSR", "SW-ZZS"])
    assert (
        await decide(
            d, "tax-steward", lines["SW-SSSR"], decision="approve", declaration=DECLARATION
        )
    ).status_code == 200
    twice = await decide(
        d,
        "tax-steward",
        lines["SW-SSSR"],
        decision="reject",
        reason="x",
        legal_basis="《政务数据共享条例》第十五条",
        declaration=DECLARATION,
    )
    assert twice.status_code == 409
    assert twice.json()["state"] == "approved"
    assert "approved" in twice.json()["detail"]
    early = await d.as_("drc-requester", "POST", f"/v1/lines/{lines['SW-ZZS']['id']}/accept")
    assert early.status_code == 409
    assert early.json()["state"] == "pending_owner"


async def test_accepting_conditions_twice_is_409(d: District) -> None:
    lines = await submitted(d, ["SW-SSSR"])
    await decide(
        d,
        "tax-steward",
        lines["SW-SSSR"],
        decision="approve_with_conditions",
        declaration=DECLARATION,
        conditions={"purpose": "监测"},
    )
    first = await d.as_("drc-requester", "POST", f"/v1/lines/{lines['SW-SSSR']['id']}/accept")
    assert first.status_code == 200
    again = await d.as_("drc-requester", "POST", f"/v1/lines/{lines['SW-SSSR']['id']}/accept")
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "location"),
    [
        (
            {
                "decision": "approve_with_conditions",
                "declaration": DECLARATION,
                "conditions": {"columns": ["NOPE"]},
            },
            422,
            "body.conditions",
        ),
        (
            {
                "decision": "approve_with_conditions",
                "declaration": DECLARATION,
                "conditions": {"masking": {"SW-ZZS": "partial"}},
            },
            422,
            "body.conditions",
        ),
        (
            {
                "decision": "reject",
                "legal_basis": "《政务数据共享条例》第十五条",
                "declaration": DECLARATION,
            },
            422,
            "body",
        ),
        ({"decision": "approve"}, 422, "body"),
        ({"decision": "not_held", "reroute_to": "nowhere"}, 422, "body.reroute_to"),
        ({"decision": "veto"}, 422, "body.decision"),
    ],
)
async def test_malformed_decisions_are_422(
    d: District, body: dict[str, Any], status: int, location: str
) -> None:
    lines = await submitted(d, ["SW-SSSR"])
    response = await decide(d, "tax-steward", lines["SW-SSSR"], **body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert any(e["location"].startswith(location) for e in response.json()["errors"])


async def test_request_level_bad_input(d: District, admin_client: httpx.AsyncClient) -> None:
    await d.as_("drc-requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "经济运行"})
    base = {
        "scenario_code": "econ",
        "title": "t",
        "purpose": "p",
        "usage_start": date.today().isoformat(),
        "usage_end": (date.today() + timedelta(days=30)).isoformat(),
    }
    past = await d.as_(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={**base, "usage_start": "2020-01-01", "usage_end": "2020-12-31"},
    )
    assert past.status_code == 422
    assert past.json()["errors"][0]["location"] == "body.usage_end"
    unknown = await d.as_(
        "drc-requester", "POST", "/v1/requests", json={**base, "lines": [{"item_code": "NOPE"}]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["location"] == "body.lines.0.item_code"
    draft_ds = await admin_client.post(
        "/v1/datasets",
        json={
            "code": "DRAFT-1",
            "title": "草稿",
            "owner_department_code": "tax",
            "category": "departmental",
            "share_type": "unconditional",
            "update_cycle": "monthly",
            "status": "draft",
            "items": [{"code": "DRAFT-I", "name": "草稿项", "data_type": "string"}],
        },
    )
    assert draft_ds.status_code == 201
    on_draft = await d.as_(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={**base, "lines": [{"dataset_code": "DRAFT-1"}]},
    )
    assert on_draft.status_code == 422
    # Tax's draft is hidden from Development and Reform: it reads like an unknown code.
    assert on_draft.json()["detail"] == "No dataset has the code 'DRAFT-1'."
    empty = (await d.as_("drc-requester", "POST", "/v1/requests", json=base)).json()
    no_lines = await d.as_("drc-requester", "POST", f"/v1/requests/{empty['id']}/submit")
    assert no_lines.status_code == 422
    pasted = await d.as_(
        "drc-requester",
        "POST",
        f"/v1/requests/{empty['id']}/lines",
        json={"item_codes": ["SW-SSSR", "BOGUS-1", "DRAFT-I"]},
    )
    assert pasted.json() == {"added": 1, "unknown_codes": ["BOGUS-1", "DRAFT-I"]}
    two_things = await d.as_(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={**base, "lines": [{"item_code": "SW-SSSR", "dataset_code": "SW-SSSR-M"}]},
    )
    assert two_things.status_code == 422


async def test_submit_with_idempotency_key_replays_refuses_other_bodies_and_in_flight(
    d: District, app: FastAPI
) -> None:
    draft = await bundle(d, ["SW-SSSR", "TJ-GDP"])
    path = f"/v1/requests/{draft['id']}/submit"
    first = await d.as_("drc-requester", "POST", path, headers={"Idempotency-Key": "k-1"})
    replay = await d.as_("drc-requester", "POST", path, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    plain_again = await d.as_("drc-requester", "POST", path)
    assert plain_again.status_code == 409, "without the key a second submit is refused"
    other = await bundle(d, ["TJ-GDPZS"])
    reused = await d.as_(
        "drc-requester",
        "POST",
        f"/v1/requests/{other['id']}/submit",
        headers={"Idempotency-Key": "k-1"},
    )
    assert reused.status_code == 422
    async with app.state.session_factory() as session:
        record = IdempotencyRecord(
            subject=(await _subject(d, app)), key="k-2", fingerprint="x" * 64, created_at=utcnow()
        )
        session.add(record)
        await session.commit()
    in_flight = await d.as_(
        "drc-requester",
        "POST",
        f"/v1/requests/{other['id']}/submit",
        headers={"Idempotency-Key": "k-2"},
    )
    assert in_flight.status_code in (409, 422)


async def _subject(d: District, app: FastAPI) -> str:
    from broker.accounts import service as accounts

    async with app.state.session_factory() as session:
        account = await accounts.get_by_name(session=session, name="drc-requester")
        await session.commit()
        return str(account.id)


async def test_failed_submit_releases_the_key_for_a_retry(d: District) -> None:
    draft = await d.as_(
        "drc-requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "x"}
    )
    assert draft.status_code == 201
    empty = (
        await d.as_(
            "drc-requester",
            "POST",
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "t",
                "purpose": "p",
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=9)).isoformat(),
            },
        )
    ).json()
    path = f"/v1/requests/{empty['id']}/submit"
    assert (
        await d.as_("drc-requester", "POST", path, headers={"Idempotency-Key": "k"})
    ).status_code == 422
    await d.as_(
        "drc-requester",
        "POST",
        f"/v1/requests/{empty['id']}/lines",
        json={"item_codes": ["SW-SSSR"]},
    )
    assert (
        await d.as_("drc-requester", "POST", path, headers={"Idempotency-Key": "k"})
    ).status_code == 200


async def test_a_question_pauses_the_clock_and_the_answer_resumes_it(
    d: District, app: FastAPI
) -> None:
    lines = await submitted(d, ["SW-SSSR"])
    line = lines["SW-SSSR"]
    asked = (await decide(d, "tax-steward", line, decision="needs_info", question="口径？")).json()
    assert asked["state"] == "needs_info"
    async with app.state.session_factory() as session:  # the question sat for three weeks
        await session.execute(
            update(RequestLine)
            .where(RequestLine.id == uuid.UUID(asked["id"]))
            .values(paused_at=utcnow() - timedelta(days=21), version=RequestLine.version + 1)
        )
        await session.commit()
    answered = (
        await d.as_(
            "drc-requester", "POST", f"/v1/lines/{line['id']}/answer", json={"answer": "现价"}
        )
    ).json()
    assert answered["state"] == "pending_owner"
    assert answered["due_at"] > line["due_at"], "the paused weeks are given back"
    assert answered["overdue"] is False


async def test_needs_flow_through_registration_and_rerouting(d: District) -> None:
    draft = await d.as_(
        "drc-requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "x"}
    )
    assert draft.status_code == 201
    created = (
        await d.as_(
            "drc-requester",
            "POST",
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "t",
                "purpose": "p",
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=90)).isoformat(),
                "lines": [
                    {"need": "规模以上工业能耗", "believed_department_code": "commerce"},
                    {"need": "招商项目落地率", "believed_department_code": "invest"},
                ],
            },
        )
    ).json()
    lines = (await d.as_("drc-requester", "POST", f"/v1/requests/{created['id']}/submit")).json()[
        "lines"
    ]
    assert {line["state"] for line in lines} == {"pending_registration"}
    moved = await decide(d, "commerce-steward", lines[0], decision="not_held", reroute_to="stats")
    assert moved.json()["owner_department_code"] == "stats"
    assert moved.json()["state"] == "pending_registration"
    registered = await decide(
        d, "invest-steward", lines[1], decision="register", item_code="TC-DWZJ"
    )
    assert registered.status_code == 200, registered.text
    assert (registered.json()["state"], registered.json()["item_code"]) == (
        "auto_approved",
        "TC-DWZJ",
    )
    foreign = await decide(d, "stats-steward", lines[0], decision="register", item_code="TC-DWZJ")
    assert foreign.status_code == 403


async def test_sweep_moves_overdue_and_refused_lines_to_coordination(
    d: District, app: FastAPI
) -> None:
    lines = await submitted(d, ["SW-SSSR", "SW-ZZS", "SW-YNSE"])
    async with app.state.session_factory() as session:
        await session.execute(
            update(RequestLine)
            .where(RequestLine.id == uuid.UUID(lines["SW-SSSR"]["id"]))
            .values(due_at=utcnow() - timedelta(days=1), version=RequestLine.version + 1)
        )
        await session.commit()
    board = (await d.as_("drc-requester", "GET", "/v1/scenarios/econ/readiness")).json()
    assert {r["department_code"]: r["overdue"] for r in board["departments"]} == {"tax": 1}
    swept = await d.as_("admin", "POST", "/v1/coordination/escalations")
    assert sorted(swept.json()["escalated"]) == sorted(
        [lines["SW-SSSR"]["id"], lines["SW-YNSE"]["id"]]
    )
    csv_agenda = await d.as_("leader", "GET", "/v1/coordination/agenda", params={"format": "csv"})
    assert csv_agenda.text.count("escalated") == 2
    refused = await d.as_("drc-requester", "GET", "/v1/coordination/agenda")
    assert refused.status_code == 403


async def test_grants_are_revoked_suspended_and_resumed_by_the_owner_with_reasons(
    d: District,
) -> None:
    lines = await submitted(d, ["SW-SSSR"])
    approved = (
        await decide(
            d, "tax-steward", lines["SW-SSSR"], decision="approve", declaration=DECLARATION
        )
    ).json()
    grant = approved["grant_id"]
    assert (
        await d.as_("drc-requester", "POST", f"/v1/grants/{grant}/revoke", json={"reason": "x"})
    ).status_code == 403
    assert (await d.as_("commerce-steward", "GET", f"/v1/grants/{grant}")).status_code == 404
    suspended = await d.as_(
        "tax-steward", "POST", f"/v1/grants/{grant}/suspend", json={"reason": "数据核查中"}
    )
    assert suspended.json()["status"] == "suspended"
    resumed = await d.as_(
        "tax-steward", "POST", f"/v1/grants/{grant}/resume", json={"reason": "核查完毕"}
    )
    assert resumed.json()["status"] == "active"
    revoked = await d.as_(
        "tax-steward", "POST", f"/v1/grants/{grant}/revoke", json={"reason": "用途超出申请范围"}
    )
    assert (revoked.json()["status"], revoked.json()["status_reason"]) == (
        "revoked",
        "用途超出申请范围",
    )
    again = await d.as_("admin", "POST", f"/v1/grants/{grant}/revoke", json={"reason": "x"})
    assert again.status_code == 409
    missing_reason = await d.as_("tax-steward", "POST", f"/v1/grants/{grant}/suspend", json={})
    assert missing_reason.status_code == 422
    seen = await d.as_("drc-requester", "GET", f"/v1/grants/{grant}")
    assert seen.json()["status"] == "revoked"


async def test_withdrawal_is_possible_until_a_grant_exists(d: District) -> None:
    lines = await submitted(d, ["SW-SSSR", "TJ-GDP"])
    gone = await d.as_("drc-requester", "POST", f"/v1/lines/{lines['SW-SSSR']['id']}/withdraw")
    assert gone.json()["state"] == "withdrawn"
    granted = await d.as_("drc-requester", "POST", f"/v1/lines/{lines['TJ-GDP']['id']}/withdraw")
    assert granted.status_code == 409


async def test_a_freshness_need_the_dataset_cannot_meet_is_flagged(d: District) -> None:
    await d.as_("drc-requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "x"})
    created = (
        await d.as_(
            "drc-requester",
            "POST",
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "t",
                "purpose": "p",
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=90)).isoformat(),
                "lines": [
                    {
                        "item_code": "TJ-GDP",
                        "freshness_need": {"update_cycle": "monthly", "within_days": 20},
                    },
                    {
                        "item_code": "TJ-GYZCZ",
                        "freshness_need": {"update_cycle": "monthly", "within_days": 20},
                    },
                ],
            },
        )
    ).json()
    lines = (await d.as_("drc-requester", "POST", f"/v1/requests/{created['id']}/submit")).json()[
        "lines"
    ]
    warnings = {line["item_code"]: line["freshness_warning"] for line in lines}
    assert warnings["TJ-GYZCZ"] is None
    assert "quarterly, not monthly" in warnings["TJ-GDP"]
    assert "30 days" in warnings["TJ-GDP"]


async def test_cli_escalate_moves_refused_lines(d: District, settings: Any) -> None:
    lines = await submitted(d, ["SW-YNSE", "SW-SSSR"])
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
    assert "escalated 1 line(s)" in out.decode()
    assert lines["SW-YNSE"]["id"] in out.decode()
    request_id = lines["SW-YNSE"]["request_id"]
    after = (await d.as_("drc-requester", "GET", f"/v1/requests/{request_id}")).json()
    assert {ln["item_code"]: ln["state"] for ln in after["lines"]} == {
        "SW-YNSE": "escalated",
        "SW-SSSR": "pending_owner",
    }
