"""Grants are bound to their scenario: only its people download, contractors inside their window
acting for the lead, and nothing once the scenario is retired (issue 14)."""

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from broker.scenarios.models import ScenarioMember
from core.time import utcnow
from support.identities import Identities
from support.sharing import Sharing, sharing


@pytest.fixture
async def s(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Sharing:
    return await sharing(app, client, identities)


async def _move_window(s: Sharing, member_id: str, **window: object) -> None:
    """Let time pass for a membership, as the clock would."""
    async with s.app.state.session_factory() as session:
        await session.execute(
            update(ScenarioMember).where(ScenarioMember.id == uuid.UUID(member_id)).values(**window)
        )
        await session.commit()


async def test_a_grant_stops_downloading_the_moment_its_scenario_is_retired(s: Sharing) -> None:
    await s.scenario(phase="development")
    grant = await s.grant()
    assert (await s.download(grant["id"], s.requester)).status_code == 200

    retired = await s.client.patch(
        "/v1/scenarios/econ", json={"phase": "retired"}, headers=s.requester
    )
    assert retired.status_code == 200, retired.text

    refused = await s.download(grant["id"], s.requester)
    assert refused.status_code == 403
    assert "retired" in refused.json()["detail"]
    after = (await s.client.get(f"/v1/grants/{grant['id']}", headers=s.steward)).json()
    assert (after["status"], after["status_reason"]) == ("revoked", "scenario econ retired")
    revoked = await s.events("grant.revoked")
    assert [(e.object_id, e.details["reason"]) for e in revoked] == [
        (grant["id"], "scenario econ retired")
    ]
    assert (await s.events("access.denied"))[-1].object_id == f"GET /v1/grants/{grant['id']}/data"
    assert len(await s.events("data.downloaded")) == 1


async def test_retirement_is_final(s: Sharing) -> None:
    await s.scenario()
    retired = await s.client.patch(
        "/v1/scenarios/econ", json={"phase": "retired"}, headers=s.requester
    )
    assert retired.status_code == 200, retired.text
    revived = await s.client.patch(
        "/v1/scenarios/econ", json={"phase": "operation"}, headers=s.requester
    )
    assert revived.status_code == 409, revived.text


async def test_an_unlisted_steward_of_the_grantee_is_refused_until_listed_as_a_member(
    s: Sharing,
) -> None:
    await s.scenario()
    grant = await s.grant()
    steward = await s.person("drc-steward", "drc", "bureau", "steward")

    refused = await s.download(grant["id"], steward)
    assert refused.status_code == 403
    assert "members" in refused.json()["detail"]
    denied = (await s.events("access.denied"))[-1]
    assert "econ" in denied.details["reason"]

    added = await s.add_member("drc-steward", "member")
    assert added.status_code == 201, added.text
    member = added.json()
    assert (member["kind"], member["acting_for_department_code"], member["active"]) == (
        "member",
        "drc",
        True,
    )
    assert (await s.download(grant["id"], steward)).status_code == 200

    ended = await s.end_member(member["id"])
    assert ended.status_code == 200, ended.text
    assert (await s.download(grant["id"], steward)).status_code == 403


async def test_a_member_departments_requesters_download_only_while_it_takes_part(
    s: Sharing,
) -> None:
    planning = await s.person("planning-requester", "planning", "bureau", "requester")
    await s.scenario(members=["planning"])
    theirs = await s.grant(planning)
    ours = await s.grant()
    assert theirs["grantee_department_code"] == "planning"
    assert (await s.download(theirs["id"], planning)).status_code == 200

    dropped = await s.client.patch("/v1/scenarios/econ", json={"members": []}, headers=s.requester)
    assert dropped.status_code == 200, dropped.text
    refused = await s.download(theirs["id"], planning)
    assert refused.status_code == 403
    assert "takes part" in refused.json()["detail"]
    assert (await s.download(ours["id"], s.requester)).status_code == 200, "the lead stays"


async def test_a_contractor_downloads_only_inside_its_window_acting_for_the_lead(
    s: Sharing,
) -> None:
    await s.scenario(phase="development")
    grant = await s.grant()
    contractor = await s.contractor()
    unseen = await s.download(grant["id"], contractor)
    assert unseen.status_code == 404, "an unlisted contractor does not learn the grant exists"

    now = utcnow()
    early = await s.add_member(
        "acme-dev",
        "contractor",
        valid_from=now + timedelta(days=1),
        valid_until=now + timedelta(days=30),
    )
    assert early.status_code == 201, early.text
    assert early.json()["acting_for_department_code"] == "drc"
    assert early.json()["active"] is False
    before = await s.download(grant["id"], contractor)
    assert before.status_code == 403
    assert "opens" in before.json()["detail"]

    await _move_window(s, early.json()["id"], valid_from=now - timedelta(minutes=1))
    inside = await s.download(grant["id"], contractor)
    assert inside.status_code == 200, inside.text
    downloaded = (await s.events("data.downloaded"))[-1]
    assert downloaded.actor_department == "acme"
    assert downloaded.actor_roles == ["contractor"]
    assert downloaded.details["acting_for"] == "drc"
    assert downloaded.details["purpose"] == grant["purpose"]
    seen = await s.client.get(f"/v1/grants/{grant['id']}", headers=contractor)
    assert seen.status_code == 200
    listed = await s.client.get("/v1/grants", headers=contractor)
    assert [g["id"] for g in listed.json()["items"]] == [grant["id"]]

    await _move_window(s, early.json()["id"], valid_until=utcnow() - timedelta(minutes=1))
    after = await s.download(grant["id"], contractor)
    assert after.status_code == 403
    assert "closed" in after.json()["detail"]
    assert (await s.events("access.denied"))[-1].actor_department == "acme"


async def test_the_lead_ends_a_contractors_access_at_once(s: Sharing) -> None:
    await s.scenario()
    grant = await s.grant()
    contractor = await s.contractor()
    added = await s.add_member("acme-dev", "contractor", valid_until=utcnow() + timedelta(days=30))
    assert added.status_code == 201, added.text
    assert (await s.download(grant["id"], contractor)).status_code == 200

    ended = await s.end_member(added.json()["id"])
    assert ended.status_code == 200, ended.text
    assert ended.json()["active"] is False
    assert ended.json()["end_reason"] == "合同到期"
    refused = await s.download(grant["id"], contractor)
    assert refused.status_code == 403
    assert "ended" in refused.json()["detail"]
    events = await s.events("scenario.member_ended")
    assert events[-1].details["account"] == "acme-dev"


async def test_a_contractor_never_works_under_a_member_departments_grant(s: Sharing) -> None:
    """A contractor acts for the lead: another taking-part department's grant is not its."""
    planning = await s.person("planning-requester", "planning", "bureau", "requester")
    await s.scenario(members=["planning"])
    contractor = await s.contractor()
    added = await s.add_member("acme-dev", "contractor", valid_until=utcnow() + timedelta(days=30))
    assert added.status_code == 201, added.text
    theirs = await s.grant(planning)
    ours = await s.grant()
    assert (await s.download(theirs["id"], contractor)).status_code == 404
    assert (await s.download(ours["id"], contractor)).status_code == 200
    unlisted = await s.contractor("acme-other")
    assert (await s.download(ours["id"], unlisted)).status_code == 404
