"""Issue 14: each department sees only its part of a request; the requesting side sees it whole."""

from typing import Any

import httpx
import pytest

from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district

TAX = ["SW-SSSR", "SW-ZZS"]
STATS = ["TJ-GYZCZ", "TJ-GDP"]
HEADER = (
    "scenario_code",
    "requesting_department_code",
    "title",
    "purpose",
    "usage_start",
    "usage_end",
)


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def _decided_bundle(d: District) -> tuple[str, dict[str, dict[str, Any]]]:
    """Tax and Statistics lines in one request, one line of each approved (a declaration and a
    grant each), keyed by item code as the requester sees them."""
    draft = await bundle(d, TAX + STATS)
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    lines = {line["item_code"]: line for line in submitted.json()["lines"]}
    for who, code in (("tax-steward", "SW-SSSR"), ("stats-steward", "TJ-GYZCZ")):
        if lines[code]["state"] == "pending_owner":
            decided = await d.as_(
                who,
                "POST",
                f"/v1/lines/{lines[code]['id']}/decisions",
                json={"decision": "approve", "declaration": DECLARATION},
            )
            assert decided.status_code == 200, decided.text
    whole = await d.as_("drc-requester", "GET", f"/v1/requests/{draft['id']}")
    assert whole.status_code == 200, whole.text
    return draft["id"], {line["item_code"]: line for line in whole.json()["lines"]}


async def test_a_steward_sees_the_header_and_exactly_its_own_lines(d: District) -> None:
    request_id, lines = await _decided_bundle(d)
    assert lines["SW-SSSR"]["grant_id"] is not None
    assert lines["TJ-GYZCZ"]["grant_id"] is not None
    whole = (await d.as_("drc-requester", "GET", f"/v1/requests/{request_id}")).json()
    for who, own, others in (("tax-steward", TAX, STATS), ("stats-steward", STATS, TAX)):
        response = await d.as_(who, "GET", f"/v1/requests/{request_id}")
        assert response.status_code == 200, response.text
        seen = response.json()
        assert {k: seen[k] for k in HEADER} == {k: whole[k] for k in HEADER}
        assert sorted(line["id"] for line in seen["lines"]) == sorted(lines[c]["id"] for c in own)
        body = response.text
        for code in others:
            assert lines[code]["id"] not in body
            assert code not in body
            if lines[code]["grant_id"] is not None:
                assert lines[code]["grant_id"] not in body


async def test_a_stewards_readiness_board_covers_only_its_own_lines(d: District) -> None:
    request_id, _lines = await _decided_bundle(d)
    board = (await d.as_("tax-steward", "GET", f"/v1/requests/{request_id}/readiness")).json()
    assert board["total"] == len(TAX)
    assert {row["department_code"] for row in board["departments"]} == {"tax"}
    assert all(o["department_code"] == "tax" for o in board["outstanding"])
    whole = (await d.as_("drc-requester", "GET", f"/v1/requests/{request_id}/readiness")).json()
    assert whole["total"] == len(TAX + STATS)


async def test_requester_platform_leader_and_auditor_see_every_line(
    d: District, identities: Identities
) -> None:
    request_id, lines = await _decided_bundle(d)
    d.people["auditor"] = await identities.headers("auditor", roles=("auditor",))
    every = sorted(line["id"] for line in lines.values())
    for who in ("drc-requester", "admin", "leader", "auditor"):
        response = await d.as_(who, "GET", f"/v1/requests/{request_id}")
        assert response.status_code == 200, (who, response.text)
        assert sorted(line["id"] for line in response.json()["lines"]) == every, who
        declared = {line["item_code"]: line["declaration"] for line in response.json()["lines"]}
        assert declared["SW-SSSR"] is not None, who


async def test_the_line_endpoints_keep_hiding_other_departments_lines(d: District) -> None:
    _request_id, lines = await _decided_bundle(d)
    for who, foreign in (("tax-steward", "TJ-GDP"), ("stats-steward", "SW-ZZS")):
        refused = await d.as_(
            who,
            "POST",
            f"/v1/lines/{lines[foreign]['id']}/decisions",
            json={"decision": "approve", "declaration": DECLARATION},
        )
        assert refused.status_code == 404, (who, refused.text)
        batch = await d.as_(
            who,
            "POST",
            "/v1/decisions",
            json={
                "line_ids": [lines[foreign]["id"]],
                "decision": "approve",
                "declaration": DECLARATION,
            },
        )
        assert batch.status_code == 404, (who, batch.text)
