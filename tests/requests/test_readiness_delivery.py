"""Ready means delivered (issue 15): the board follows each line through granted, delivered and
fresh, counts exactly what the grantee can download, and names to each caller only its lines."""

import csv
import io
from datetime import date
from typing import Any

import httpx
import pytest

from support.deliveries import deliver
from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district

STEPS = ("requested", "granted", "delivered", "fresh")


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def scenario(d: District) -> dict[str, dict[str, Any]]:
    """Development and Reform leads `econ` with tax and statistics taking part. Tax approves two
    lines of its monthly revenue and refuses one, and delivers last month; statistics' two lines
    are available at once, its quarterly GDP delivered for an old quarter only, its industry
    report not at all."""
    created = await d.as_(
        "drc-requester",
        "POST",
        "/v1/scenarios",
        json={"code": "econ", "name": "经济运行监测", "members": ["tax", "stats"]},
    )
    assert created.status_code == 201, created.text
    draft = await bundle(d, ["SW-SSSR", "SW-ZZS", "SW-QYSDS", "TJ-GDP", "TJ-GYZCZ"])
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    lines = {line["item_code"]: line for line in submitted.json()["lines"]}
    assert (lines["TJ-GDP"]["state"], lines["TJ-GYZCZ"]["state"]) == (
        "auto_approved",
        "auto_approved",
    )
    for code in ("SW-SSSR", "SW-ZZS"):
        approved = await d.as_(
            "tax-steward",
            "POST",
            f"/v1/lines/{lines[code]['id']}/decisions",
            json={"decision": "approve", "declaration": DECLARATION},
        )
        assert approved.status_code == 200, approved.text
    refused = await d.as_(
        "tax-steward",
        "POST",
        f"/v1/lines/{lines['SW-QYSDS']['id']}/decisions",
        json={
            "decision": "reject",
            "reason": "企业所得税按户数据涉及纳税人秘密",
            "legal_basis": "《税收征收管理法》第八条",
            "declaration": DECLARATION,
        },
    )
    assert refused.status_code == 200, refused.text
    await deliver(d, "tax-steward", "SW-SSSR-M")
    await deliver(d, "stats-steward", "TJ-GDP-Q", (date(2020, 1, 1), date(2020, 3, 31)))
    request = await d.as_("drc-requester", "GET", f"/v1/requests/{draft['id']}")
    return {line["item_code"]: line for line in request.json()["lines"]}


def counts(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[step] for step in STEPS)


def held(board: dict[str, Any], step: str) -> dict[str, str]:
    return {b["item_code"]: b["why"] for b in board["blocking"][step]}


async def test_the_board_counts_delivered_exactly_what_the_grantee_can_download(
    d: District,
) -> None:
    lines = await scenario(d)
    board = (await d.as_("drc-requester", "GET", "/v1/scenarios/econ/readiness")).json()
    rows = {row["department_code"]: row for row in board["departments"]}
    assert {code: counts(row) for code, row in rows.items()} == {
        "tax": (3, 2, 2, 2),
        "stats": (2, 2, 1, 0),
    }
    assert counts(board) == (5, 4, 3, 2)
    assert board["coverage"] == "4/5 ready"
    assert set(held(board, "granted")) == {"SW-QYSDS"}
    assert held(board, "delivered") == {"TJ-GYZCZ": held(board, "delivered")["TJ-GYZCZ"]}
    assert "no accepted release of TJ-GYQY-M" in held(board, "delivered")["TJ-GYZCZ"]
    assert held(board, "fresh") == {"TJ-GDP": "TJ-GDP-Q is stale"}
    assert {code: list(held(row, "delivered")) for code, row in rows.items()} == {
        "tax": [],
        "stats": ["TJ-GYZCZ"],
    }

    not_delivered = set(held(board, "granted")) | set(held(board, "delivered"))
    tried = {}
    for code, line in lines.items():
        if line["grant_id"] is None:
            continue
        download = await d.as_("drc-requester", "GET", f"/v1/grants/{line['grant_id']}/data")
        tried[code] = download.status_code
    assert tried == {"SW-SSSR": 200, "SW-ZZS": 200, "TJ-GDP": 200, "TJ-GYZCZ": 404}
    assert {code for code, status in tried.items() if status == 200} == set(lines) - not_delivered
    assert sum(status == 200 for status in tried.values()) == board["delivered"]


async def test_the_csv_board_carries_the_steps_and_their_blocking_lines(d: District) -> None:
    await scenario(d)
    response = await d.as_(
        "drc-requester", "GET", "/v1/scenarios/econ/readiness", params={"format": "csv"}
    )
    text = response.content.decode("utf-8-sig")
    rows = {row["department_code"]: row for row in csv.DictReader(io.StringIO(text))}
    total = rows["TOTAL"]
    assert total["department_name"] == "ready 4/5"
    assert counts({step: int(total[step]) for step in STEPS}) == (5, 4, 3, 2)
    assert (total["granted_blocked_by"], total["delivered_blocked_by"]) == ("SW-QYSDS", "TJ-GYZCZ")
    assert (rows["stats"]["fresh_blocked_by"], rows["tax"]["fresh_blocked_by"]) == ("TJ-GDP", "")


async def test_an_owning_departments_steward_sees_counts_but_only_its_own_lines(
    d: District,
) -> None:
    await scenario(d)
    seen = await d.as_("stats-steward", "GET", "/v1/scenarios/econ/readiness")
    assert seen.status_code == 200, seen.text
    board = seen.json()
    assert counts(board) == (5, 4, 3, 2), "counts cover the whole scenario"
    named = {
        b["item_code"]
        for step in ("granted", "delivered", "fresh")
        for b in board["blocking"][step]
    }
    assert named == {"TJ-GYZCZ", "TJ-GDP"}
    rows = {row["department_code"]: row for row in board["departments"]}
    assert rows["tax"]["blocking"]["granted"] == []
    assert all(o["department_code"] == "stats" for o in board["outstanding"])
    assert "SW-QYSDS" not in seen.text

    lead = (await d.as_("drc-requester", "GET", "/v1/scenarios/econ/readiness")).json()
    assert {o["item"].split()[0] for o in lead["outstanding"]} == {"SW-QYSDS"}
    platform = (await d.as_("admin", "GET", "/v1/scenarios/econ/readiness")).json()
    assert platform["blocking"] == lead["blocking"]


async def test_a_delivered_line_is_not_fresh_when_its_latest_period_misses_the_lines_need(
    d: District,
) -> None:
    await d.as_("drc-requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "x"})
    created = await d.as_(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "旬度监测",
            "purpose": "经济运行监测",
            "usage_start": date.today().isoformat(),
            "usage_end": date.today().replace(year=date.today().year + 1).isoformat(),
            "lines": [
                {
                    "item_code": "SW-SSSR",
                    "freshness_need": {"update_cycle": "daily", "within_days": 0},
                },
                {"item_code": "SW-ZZS"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{created.json()['id']}/submit")
    for line in submitted.json()["lines"]:
        approved = await d.as_(
            "tax-steward",
            "POST",
            f"/v1/lines/{line['id']}/decisions",
            json={"decision": "approve", "declaration": DECLARATION},
        )
        assert approved.status_code == 200, approved.text
    await deliver(d, "tax-steward", "SW-SSSR-M")
    board = (await d.as_("drc-requester", "GET", "/v1/scenarios/econ/readiness")).json()
    assert counts(board) == (2, 2, 2, 1)
    [short] = board["blocking"]["fresh"]
    assert short["item_code"] == "SW-SSSR"
    assert "needs daily data within 0 days" in short["why"]
