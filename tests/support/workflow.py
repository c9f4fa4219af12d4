"""Helpers for request workflow tests: the district, its people, and a submitted bundle."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from broker.demo import ECONOMIC_INDICATORS_SHEET as SHEET
from support import catalog_data
from support.identities import Identities

# (method, path template) of every workflow route: each records the events of its transitions
WORKFLOW_ROUTES = {
    ("POST", "/v1/scenarios"),
    ("PATCH", "/v1/scenarios/{x}"),
    ("POST", "/v1/scenarios/{x}/members"),
    ("POST", "/v1/scenarios/{x}/members/{x}/end"),
    ("POST", "/v1/requests"),
    ("POST", "/v1/requests/{x}/lines"),
    ("POST", "/v1/requests/{x}/submit"),
    ("POST", "/v1/lines/{x}/decisions"),
    ("POST", "/v1/decisions"),
    ("POST", "/v1/lines/{x}/answer"),
    ("POST", "/v1/lines/{x}/accept"),
    ("POST", "/v1/lines/{x}/decline"),
    ("POST", "/v1/lines/{x}/withdraw"),
    ("POST", "/v1/lines/{x}/escalate"),
    ("POST", "/v1/lines/{x}/leader-decision"),
    ("POST", "/v1/lines/{x}/countersignature"),
    ("POST", "/v1/coordination/escalations"),
    ("POST", "/v1/grants/{x}/revoke"),
    ("POST", "/v1/grants/{x}/suspend"),
    ("POST", "/v1/grants/{x}/resume"),
}

DECLARATION = {"update_cycle": "monthly", "publication_lag_days": 15, "sensitivity": "L2"}


@dataclass
class District:
    admin: httpx.AsyncClient
    client: httpx.AsyncClient
    identities: Identities
    people: dict[str, dict[str, str]]

    async def as_(
        self, who: str, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        merged = {**self.people[who], **(headers or {})}
        return await self.client.request(method, path, headers=merged, **kwargs)


async def district(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    """The 14-department district with its 95-item catalog and one person per role needed."""
    await catalog_data.seed_district(admin)
    imported = await admin.post(
        "/v1/catalog/import", files={"file": ("目录.csv", SHEET.read_bytes(), "text/csv")}
    )
    assert imported.status_code == 200, imported.text
    people: dict[str, dict[str, str]] = {}
    for code, _name in catalog_data.DISTRICT:
        people[f"{code}-steward"] = await identities.headers(
            f"{code}-steward", department=code, department_kind="bureau", roles=("steward",)
        )
        people[f"{code}-steward2"] = await identities.headers(
            f"{code}-steward2", department=code, department_kind="bureau", roles=("steward",)
        )
    people["platform-steward"] = await identities.headers("platform-steward", roles=("steward",))
    people["platform-steward2"] = await identities.headers("platform-steward2", roles=("steward",))
    people["drc-requester"] = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    people["leader"] = await identities.headers("deputy-head", roles=("leader",))
    people["admin"] = await identities.headers("admin")
    return District(admin, client, identities, people)


def all_item_codes() -> list[str]:
    import csv

    with SHEET.open(encoding="utf-8") as handle:
        return [row["信息项编码"] for row in csv.DictReader(handle)]


async def bundle(d: District, codes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Development and Reform's scenario and a draft request for `codes` (default: all 95)."""
    scenario = await d.as_(
        "drc-requester",
        "POST",
        "/v1/scenarios",
        json={"code": "econ", "name": "经济运行指标监测", "phase": "development"},
    )
    assert scenario.status_code in (201, 409), scenario.text
    today = date.today()
    created = await d.as_(
        "drc-requester",
        "POST",
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "经济运行指标数据需求",
            "purpose": "经济运行监测分析与月度研判",
            "usage_start": today.isoformat(),
            "usage_end": (today + timedelta(days=365)).isoformat(),
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    request: dict[str, Any] = created.json()
    pasted = await d.as_(
        "drc-requester",
        "POST",
        f"/v1/requests/{request['id']}/lines",
        json={"item_codes": codes if codes is not None else all_item_codes()},
    )
    assert pasted.status_code == 200, pasted.text
    return request
