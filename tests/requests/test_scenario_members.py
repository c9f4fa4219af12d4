"""The people of a scenario: who lists them and which windows are allowed (issue 14)."""

from datetime import date, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from broker.scenarios.service import SHANGHAI
from core.time import utcnow
from support.identities import Identities
from support.sharing import Sharing, sharing


@pytest.fixture
async def s(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Sharing:
    return await sharing(app, client, identities)


def _field(response: httpx.Response) -> list[str]:
    return [e["location"] for e in response.json().get("errors", [])]


def _today() -> date:
    return utcnow().astimezone(SHANGHAI).date()


async def test_a_contractor_window_outside_the_scenarios_life_is_refused(s: Sharing) -> None:
    ends_on = _today() + timedelta(days=30)
    await s.scenario(ends_on=ends_on.isoformat())
    await s.contractor()
    last_moment = datetime.combine(ends_on + timedelta(days=1), datetime.min.time(), SHANGHAI)

    past_end = await s.add_member(
        "acme-dev", "contractor", valid_until=last_moment + timedelta(seconds=1)
    )
    assert past_end.status_code == 422, past_end.text
    assert _field(past_end) == ["body.valid_until"]

    before_start = await s.add_member(
        "acme-dev",
        "contractor",
        valid_from=utcnow() - timedelta(days=2),
        valid_until=utcnow() + timedelta(days=1),
    )
    assert before_start.status_code == 422, before_start.text
    assert _field(before_start) == ["body.valid_from"]

    backwards = await s.add_member(
        "acme-dev",
        "contractor",
        valid_from=utcnow() + timedelta(days=2),
        valid_until=utcnow() + timedelta(days=1),
    )
    assert backwards.status_code == 422, backwards.text
    assert _field(backwards) == ["body.valid_until"]

    whole_life = await s.add_member("acme-dev", "contractor", valid_until=last_moment)
    assert whole_life.status_code == 201, whole_life.text


async def test_a_contractor_needs_an_end_to_its_access(s: Sharing) -> None:
    await s.scenario()
    await s.contractor()
    open_ended = await s.add_member("acme-dev", "contractor")
    assert open_ended.status_code == 422, open_ended.text
    assert _field(open_ended) == ["body.valid_until"]


async def test_only_an_enterprises_people_are_contractors_and_never_members(s: Sharing) -> None:
    await s.scenario(members=["police"])
    await s.contractor()
    as_member = await s.add_member("acme-dev", "member")
    assert as_member.status_code == 422, as_member.text
    assert _field(as_member) == ["body.account"]
    bureau_person = await s.add_member(
        "police-steward", "contractor", valid_until=utcnow() + timedelta(days=1)
    )
    assert bureau_person.status_code == 422, bureau_person.text
    assert _field(bureau_person) == ["body.kind"]
    await s.person("tax-steward", "tax", "bureau", "steward")
    outsider = await s.add_member("tax-steward", "member")
    assert outsider.status_code == 422, outsider.text
    assert _field(outsider) == ["body.account"]
    unknown = await s.add_member("nobody", "member")
    assert unknown.status_code == 422, unknown.text
    assert _field(unknown) == ["body.account"]
    police = await s.add_member("police-steward", "member")
    assert police.status_code == 201, police.text
    assert police.json()["acting_for_department_code"] == "police"


async def test_only_the_lead_department_or_the_platform_lists_and_ends_people(
    s: Sharing,
) -> None:
    await s.scenario(members=["police"])
    await s.contractor()
    by_member_department = await s.add_member(
        "acme-dev", "contractor", headers=s.steward, valid_until=utcnow() + timedelta(days=1)
    )
    assert by_member_department.status_code == 403, by_member_department.text
    denied = await s.events("access.denied")
    assert denied[-1].object_id == "POST /v1/scenarios/econ/members"

    admin = await s.identities.headers("admin")
    by_platform = await s.add_member(
        "acme-dev", "contractor", headers=admin, valid_until=utcnow() + timedelta(days=1)
    )
    assert by_platform.status_code == 201, by_platform.text
    member_id = by_platform.json()["id"]
    assert (await s.end_member(member_id, headers=s.steward)).status_code == 403
    assert (await s.end_member(member_id, headers=admin)).status_code == 200
    again = await s.end_member(member_id)
    assert again.status_code == 409, again.text

    listed = await s.client.get("/v1/scenarios/econ/members", headers=s.steward)
    assert listed.status_code == 200
    [member] = listed.json()["items"]
    assert (member["account"], member["kind"], member["active"]) == (
        "acme-dev",
        "contractor",
        False,
    )
    assert member["ended_by"] == "admin"
    outsider = await s.person("tax-requester", "tax", "bureau", "requester")
    hidden = await s.client.get("/v1/scenarios/econ/members", headers=outsider)
    assert hidden.status_code == 404


async def test_an_account_takes_part_once_at_a_time(s: Sharing) -> None:
    await s.scenario()
    await s.contractor()
    until = utcnow() + timedelta(days=3)
    first = await s.add_member("acme-dev", "contractor", valid_until=until)
    assert first.status_code == 201, first.text
    second = await s.add_member("acme-dev", "contractor", valid_until=until)
    assert second.status_code == 409, second.text
    assert second.json()["member_id"] == first.json()["id"]
    assert (await s.end_member(first.json()["id"])).status_code == 200
    third = await s.add_member("acme-dev", "contractor", valid_until=until)
    assert third.status_code == 201, third.text
    added = await s.events("scenario.member_added")
    assert [(e.details["account"], e.details["acting_for"]) for e in added] == [
        ("acme-dev", "drc"),
        ("acme-dev", "drc"),
    ]


async def test_a_contractor_sees_its_scenario_but_cannot_request(s: Sharing) -> None:
    await s.scenario()
    contractor = await s.contractor()
    assert (await s.client.get("/v1/scenarios/econ", headers=contractor)).status_code == 404
    added = await s.add_member("acme-dev", "contractor", valid_until=utcnow() + timedelta(days=3))
    assert added.status_code == 201, added.text
    seen = await s.client.get("/v1/scenarios/econ", headers=contractor)
    assert seen.status_code == 200
    listed = await s.client.get("/v1/scenarios", headers=contractor)
    assert [x["code"] for x in listed.json()["items"]] == ["econ"]
    members = await s.client.get("/v1/scenarios/econ/members", headers=contractor)
    assert members.status_code == 200
    request = await s.client.post(
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "t",
            "purpose": "p",
            "usage_start": _today().isoformat(),
            "usage_end": _today().isoformat(),
        },
        headers=contractor,
    )
    assert request.status_code == 403, request.text


async def test_a_retired_scenario_takes_no_members(s: Sharing) -> None:
    await s.scenario()
    await s.contractor()
    retired = await s.client.patch(
        "/v1/scenarios/econ", json={"phase": "retired"}, headers=s.requester
    )
    assert retired.status_code == 200, retired.text
    late = await s.add_member("acme-dev", "contractor", valid_until=utcnow() + timedelta(days=1))
    assert late.status_code == 409, late.text


async def test_a_scenario_cannot_end_in_the_past_nor_before_a_window_it_gave(
    s: Sharing,
) -> None:
    yesterday = _today() - timedelta(days=1)
    past = await s.client.post(
        "/v1/scenarios",
        json={"code": "econ", "name": "n", "ends_on": yesterday.isoformat()},
        headers=s.requester,
    )
    assert past.status_code == 422, past.text
    assert _field(past) == ["body.ends_on"]

    created = await s.scenario(ends_on=(_today() + timedelta(days=60)).isoformat())
    assert created["ends_on"] == (_today() + timedelta(days=60)).isoformat()
    await s.contractor()
    added = await s.add_member("acme-dev", "contractor", valid_until=utcnow() + timedelta(days=40))
    assert added.status_code == 201, added.text
    shorter = await s.client.patch(
        "/v1/scenarios/econ",
        json={"ends_on": (_today() + timedelta(days=10)).isoformat()},
        headers=s.requester,
    )
    assert shorter.status_code == 422, shorter.text
    assert _field(shorter) == ["body.ends_on"]
    cleared = await s.client.patch(
        "/v1/scenarios/econ", json={"ends_on": None}, headers=s.requester
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ends_on"] is None


async def test_an_enterprise_is_never_a_member_department(s: Sharing) -> None:
    await s.contractor()
    refused = await s.client.post(
        "/v1/scenarios",
        json={"code": "econ", "name": "n", "members": ["acme"]},
        headers=s.requester,
    )
    assert refused.status_code == 422, refused.text
    assert _field(refused) == ["body.members"]
