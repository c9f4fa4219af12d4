"""Stewards racing on one line: exactly one decision wins, the rest get 409, one grant at most."""

import asyncio
from collections import Counter

import httpx

from support.identities import Identities
from support.workflow import DECLARATION, bundle, district


async def test_ten_concurrent_decisions_on_one_line_have_one_winner(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> None:
    d = await district(admin_client, client, identities)
    stewards = [
        await identities.headers(
            f"tax-s{i}", department="tax", department_kind="bureau", roles=("steward",)
        )
        for i in range(10)
    ]
    draft = await bundle(d, ["SW-SSSR", "SW-ZZS"])
    lines = (await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")).json()[
        "lines"
    ]
    for line in lines:
        decisions = [
            {"decision": "approve", "declaration": DECLARATION},
            {
                "decision": "reject",
                "reason": "不予提供",
                "legal_basis": "《政务数据共享条例》第十五条",
                "declaration": DECLARATION,
            },
            {"decision": "needs_info", "question": "用途？"},
        ]
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/v1/lines/{line['id']}/decisions",
                    json=decisions[i % len(decisions)],
                    headers=stewards[i],
                )
                for i in range(10)
            )
        )
        statuses = Counter(a.status_code for a in answers)
        assert statuses == {200: 1, 409: 9}, [a.text for a in answers if a.status_code != 409]
        losers = [a.json() for a in answers if a.status_code == 409]
        winner = next(a.json() for a in answers if a.status_code == 200)
        assert {loser["state"] for loser in losers} == {winner["state"]}

    request = (await d.as_("drc-requester", "GET", f"/v1/requests/{draft['id']}")).json()
    grants = (await d.as_("admin", "GET", "/v1/grants")).json()["items"]
    approved = [line for line in request["lines"] if line["state"] == "approved"]
    assert len(grants) == len(approved)
    assert len({g["line_id"] for g in grants}) == len(grants)
    history = (
        await d.as_("admin", "GET", "/v1/audit/events", params={"action": "line.", "limit": 200})
    ).json()["items"]
    decided = [e for e in history if e["action"] != "line.route"]
    assert len(decided) == 2, "one recorded decision per line, none for the losers"
