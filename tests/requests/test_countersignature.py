"""Issue 14: L4 and important-grade lines settled by the leader are granted only once a platform
steward countersigns; the catalog's defaults (masking, in-platform use only) bind the leader."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from catalog.datasets.models import DataItem, Dataset
from catalog.vocab import DataGrade, Sensitivity
from support.audit_helpers import actions_after, events, head
from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district

PROBLEM = "application/problem+json"
BASIS = "《政务数据共享条例》第十五条"
MEETING = "2026年第12次调度会"
OVERRIDE = {"legal_basis": BASIS, "meeting_reference": MEETING}
LEADER_TERMS = {"purpose": "经济运行监测", "no_reshare": True}


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def make_l4(app: FastAPI, item_code: str) -> None:
    async with app.state.session_factory() as session:
        await session.execute(
            update(DataItem).where(DataItem.code == item_code).values(sensitivity=Sensitivity.L4)
        )
        await session.commit()


async def make_important(app: FastAPI, dataset_code: str) -> None:
    async with app.state.session_factory() as session:
        await session.execute(
            update(Dataset)
            .where(Dataset.code == dataset_code)
            .values(data_grade=DataGrade.important)
        )
        await session.commit()


async def escalated(d: District, code: str, owner: str = "tax-steward") -> dict[str, Any]:
    """A line for `code`, refused by its owner on a legal basis and escalated by the requester."""
    draft = await bundle(d, [code])
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    line: dict[str, Any] = submitted.json()["lines"][0]
    refused = await d.as_(
        owner,
        "POST",
        f"/v1/lines/{line['id']}/decisions",
        json={
            "decision": "reject",
            "reason": "不宜共享",
            "legal_basis": BASIS,
            "declaration": DECLARATION,
        },
    )
    assert refused.status_code == 200, refused.text
    moved = await d.as_(
        "drc-requester", "POST", f"/v1/lines/{line['id']}/escalate", json={"reason": "申请协调"}
    )
    assert moved.status_code == 200, moved.text
    return line


async def settle(d: District, line: dict[str, Any], who: str = "leader", **body: Any) -> Any:
    return await d.as_(
        who,
        "POST",
        f"/v1/lines/{line['id']}/leader-decision",
        json={"decision": "approve", "note": "协调同意", **OVERRIDE, **body},
    )


async def countersign(
    d: District, line: dict[str, Any], who: str = "platform-steward", **body: Any
) -> httpx.Response:
    return await d.as_(
        who,
        "POST",
        f"/v1/lines/{line['id']}/countersignature",
        json={"decision": "countersign", **body},
    )


async def request_of(d: District, line: dict[str, Any], who: str = "drc-requester") -> Any:
    response = await d.as_(who, "GET", f"/v1/requests/{line['request_id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def grant_conditions(d: District, grant_id: str) -> dict[str, Any]:
    response = await d.as_("drc-requester", "GET", f"/v1/grants/{grant_id}")
    assert response.status_code == 200, response.text
    conditions: dict[str, Any] = response.json()["conditions"]
    return conditions


async def test_an_l4_override_is_granted_only_once_a_platform_steward_countersigns(
    app: FastAPI, d: District
) -> None:
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")

    settled = await settle(d, line, conditions=LEADER_TERMS)
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "awaiting_countersignature"
    assert settled.json()["grant_id"] is None
    assert settled.json()["conditions"]["no_reshare"] is True
    grants = (await d.as_("drc-requester", "GET", "/v1/grants")).json()["items"]
    assert [g for g in grants if g["line_id"] == line["id"]] == []

    # Both sides see the line waiting; the request is still in progress.
    for who in ("drc-requester", "tax-steward"):
        seen = await request_of(d, line, who)
        assert seen["status"] == "in_progress", who
        assert seen["lines"][0]["state"] == "awaiting_countersignature", who
    inbox = (await d.as_("platform-steward", "GET", "/v1/inbox")).json()["items"]
    assert [i["id"] for i in inbox if i["state"] == "awaiting_countersignature"] == [line["id"]]
    agenda = (await d.as_("leader", "GET", "/v1/coordination/agenda")).json()["outstanding"]
    row = next(o for o in agenda if o["line_id"] == line["id"])
    assert row["state"] == "awaiting_countersignature"
    swept = await d.as_("admin", "POST", "/v1/coordination/escalations")
    assert line["id"] not in swept.json()["escalated"]

    before = await head(app)
    signed = await countersign(d, line, note="已复核会议纪要")
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "approved"
    assert signed.json()["grant_id"] is not None
    assert await actions_after(app, before) == ["line.countersign", "grant.issued"]
    terms = await grant_conditions(d, signed.json()["grant_id"])
    assert (terms["purpose"], terms["no_reshare"]) == ("经济运行监测", True)
    # An L4 item without a declared default leaves hashed, though the leader wrote no masking.
    assert terms["masking"] == {"SW-SSSR": "hash"}
    assert terms["lift_masking"] == {}
    assert (await request_of(d, line))["status"] == "completed"
    assert [
        i["id"]
        for i in (await d.as_("platform-steward", "GET", "/v1/inbox")).json()["items"]
        if i["id"] == line["id"]
    ] == []


async def test_an_important_grade_override_also_waits_for_the_countersignature(
    app: FastAPI, d: District
) -> None:
    await make_important(app, "SW-SSSR-M")
    line = await escalated(d, "SW-SSSR")

    settled = await settle(d, line, decision="approve", conditions=None)
    assert settled.status_code == 200, settled.text
    assert (settled.json()["state"], settled.json()["grant_id"]) == (
        "awaiting_countersignature",
        None,
    )

    signed = await countersign(d, line, who="platform-steward2")
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "approved"
    assert signed.json()["grant_id"] is not None


async def test_a_general_low_sensitivity_line_settled_by_the_leader_is_granted_at_once(
    d: District,
) -> None:
    line = await escalated(d, "SW-SSSR")

    settled = await settle(d, line, conditions=LEADER_TERMS)
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "approved"
    terms = await grant_conditions(d, settled.json()["grant_id"])
    assert (terms["no_reshare"], terms["in_platform_only"]) == (True, False)
    assert terms["masking"] == {}


async def test_only_a_platform_steward_who_did_not_decide_may_countersign(
    app: FastAPI, d: District, identities: Identities
) -> None:
    d.people["head-and-steward"] = await identities.headers(
        "head-and-steward", roles=("leader", "steward")
    )
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")
    settled = await settle(d, line, who="head-and-steward")
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "awaiting_countersignature"

    before = await head(app)
    for who in ("tax-steward", "admin", "leader", "drc-requester"):
        refused = await countersign(d, line, who=who)
        assert refused.status_code == 403, (who, refused.text)
        assert refused.headers["content-type"] == PROBLEM
    own = await countersign(d, line, who="head-and-steward")
    assert own.status_code == 403, own.text
    assert "会签" in own.json()["rule"]
    assert await actions_after(app, before) == ["access.denied"] * 5
    seen = await request_of(d, line)
    assert (seen["lines"][0]["state"], seen["lines"][0]["grant_id"]) == (
        "awaiting_countersignature",
        None,
    )

    signed = await countersign(d, line)
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "approved"


async def test_countersigning_a_line_in_another_state_is_409_naming_it(
    app: FastAPI, d: District
) -> None:
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")

    early = await countersign(d, line)
    assert early.status_code == 409, early.text
    assert early.headers["content-type"] == PROBLEM
    assert early.json()["state"] == "escalated"

    assert (await settle(d, line)).status_code == 200
    assert (await countersign(d, line)).status_code == 200
    again = await countersign(d, line, who="platform-steward2")
    assert again.status_code == 409, again.text
    assert again.json()["state"] == "approved"


async def test_a_refused_countersignature_refuses_the_line_for_good(
    app: FastAPI, d: District
) -> None:
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")
    assert (await settle(d, line, conditions=LEADER_TERMS)).status_code == 200

    silent = await countersign(d, line, decision="refuse")
    assert silent.status_code == 422, silent.text
    assert [e["location"] for e in silent.json()["errors"]] == ["body.note"]

    before = await head(app)
    refused = await countersign(d, line, decision="refuse", note="会议纪要未载明用途，不予会签")
    assert refused.status_code == 200, refused.text
    body = refused.json()
    assert (body["state"], body["reason"], body["grant_id"]) == (
        "rejected_final",
        "会议纪要未载明用途，不予会签",
        None,
    )
    assert await actions_after(app, before) == ["line.countersign_refused"]
    assert (await request_of(d, line))["status"] == "completed"


async def test_the_requester_may_withdraw_a_line_awaiting_its_countersignature(
    app: FastAPI, d: District
) -> None:
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")
    assert (await settle(d, line)).status_code == 200

    withdrawn = await d.as_("drc-requester", "POST", f"/v1/lines/{line['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    late = await countersign(d, line)
    assert late.status_code == 409, late.text


async def test_a_coordination_decision_cannot_lift_an_items_default_masking(
    app: FastAPI, d: District
) -> None:
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")

    lifted = await settle(d, line, conditions={"lift_masking": {"SW-SSSR": "会议同意明文提供"}})
    assert lifted.status_code == 422, lifted.text
    assert lifted.headers["content-type"] == PROBLEM
    assert [e["location"] for e in lifted.json()["errors"]] == ["body.conditions.lift_masking"]
    assert (await request_of(d, line))["lines"][0]["state"] == "escalated"


async def test_data_the_catalog_keeps_in_the_platform_stays_there_under_an_override(
    d: District,
) -> None:
    # 常住人口: 共享方式 平台内使用 only; important-grade and L4.
    line = await escalated(d, "PT-CZRK", owner="platform-steward")

    settled = await settle(d, line, conditions={**LEADER_TERMS, "in_platform_only": False})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "awaiting_countersignature"
    assert settled.json()["conditions"]["in_platform_only"] is True

    signed = await countersign(d, line, who="platform-steward2")
    assert signed.status_code == 200, signed.text
    terms = await grant_conditions(d, signed.json()["grant_id"])
    assert (terms["in_platform_only"], terms["no_reshare"]) == (True, True)
    download = await d.as_("drc-requester", "GET", f"/v1/grants/{signed.json()['grant_id']}/data")
    assert download.status_code == 403, download.text
    assert "in-platform" in download.json()["detail"]


async def test_the_leaders_decision_and_the_countersignature_are_both_on_record(
    app: FastAPI, d: District
) -> None:
    await make_l4(app, "SW-SSSR")
    line = await escalated(d, "SW-SSSR")
    assert (await settle(d, line, conditions=LEADER_TERMS)).status_code == 200
    assert (await countersign(d, line, note="已复核")).status_code == 200

    recorded = [e for e in await events(app) if e.object_id == line["id"]]
    decided = next(e for e in recorded if e.action == "line.leader_decide")
    assert decided.details["to"] == "awaiting_countersignature"
    assert (decided.details["legal_basis"], decided.details["meeting_reference"]) == (
        BASIS,
        MEETING,
    )
    signed = next(e for e in recorded if e.action == "line.countersign")
    assert (signed.details["from"], signed.details["to"]) == (
        "awaiting_countersignature",
        "approved",
    )
    assert signed.details["note"] == "已复核"
    assert signed.actor_subject != decided.actor_subject


async def test_the_platform_stewards_inbox_pages_through_lines_awaiting_it(
    app: FastAPI, d: District
) -> None:
    for code in ("SW-SSSR", "SW-ZZS"):
        await make_l4(app, code)
    waiting = []
    for code in ("SW-SSSR", "SW-ZZS"):
        line = await escalated(d, code)
        assert (await settle(d, line)).status_code == 200
        waiting.append(line["id"])

    first = (await d.as_("platform-steward", "GET", "/v1/inbox", params={"limit": 1})).json()
    assert [i["id"] for i in first["items"]] == waiting[:1]
    assert first["next_cursor"] is not None
    second = (
        await d.as_(
            "platform-steward",
            "GET",
            "/v1/inbox",
            params={"limit": 1, "cursor": first["next_cursor"]},
        )
    ).json()
    assert [i["id"] for i in second["items"]] == waiting[1:]
    assert second["next_cursor"] is None
    bureau = (await d.as_("tax-steward", "GET", "/v1/inbox")).json()["items"]
    assert not {i["id"] for i in bureau} & set(waiting)
