"""A grant bound to its scenario: Development and Reform leads `econ` and receives the police's
population register; the people around it (stewards, members, contractors) as tests need them."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from broker.audit.models import AuditEvent
from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities
from support.workflow import DECLARATION

PURPOSE = "常住人口与经济运行关联分析"
PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}


@dataclass
class Sharing:
    app: FastAPI
    client: httpx.AsyncClient
    identities: Identities
    steward: dict[str, str]
    requester: dict[str, str]

    async def person(self, name: str, department: str, kind: str, *roles: str) -> dict[str, str]:
        return await self.identities.headers(
            name, department=department, department_kind=kind, roles=roles
        )

    async def contractor(self, name: str = "acme-dev") -> dict[str, str]:
        """A developer of Acme, the enterprise building the scenario's application."""
        return await self.person(name, "acme", "enterprise", "contractor")

    async def scenario(self, **fields: Any) -> dict[str, Any]:
        created = await self.client.post(
            "/v1/scenarios",
            json={"code": "econ", "name": "经济运行监测", **fields},
            headers=self.requester,
        )
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    async def request_line(self, requester: dict[str, str] | None = None) -> dict[str, Any]:
        """A submitted request for the population register, its one line waiting for police."""
        requester = requester or self.requester
        created = await self.client.post(
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "人口数据需求",
                "purpose": PURPOSE,
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=180)).isoformat(),
                "lines": [{"dataset_code": POPULATION["code"]}],
            },
            headers=requester,
        )
        assert created.status_code == 201, created.text
        submitted = await self.client.post(
            f"/v1/requests/{created.json()['id']}/submit", headers=requester
        )
        assert submitted.status_code == 200, submitted.text
        line: dict[str, Any] = submitted.json()["lines"][0]
        assert line["state"] == "pending_owner", line
        return line

    async def grant(self, requester: dict[str, str] | None = None) -> dict[str, Any]:
        """The police's grant of the population register to the requester's department
        (Development and Reform unless told)."""
        requester = requester or self.requester
        line = await self.request_line(requester)
        decided = await self.client.post(
            f"/v1/lines/{line['id']}/decisions",
            json={
                "decision": "approve_with_conditions",
                "declaration": DECLARATION,
                "conditions": {"masking": {"RK-XM": "hash", "RK-ZZ": "null"}},
            },
            headers=self.steward,
        )
        assert decided.status_code == 200, decided.text
        accepted = await self.client.post(f"/v1/lines/{line['id']}/accept", headers=requester)
        assert accepted.status_code == 200, accepted.text
        grant_id = accepted.json()["grant_id"]
        found = await self.client.get(f"/v1/grants/{grant_id}", headers=requester)
        assert found.status_code == 200, found.text
        result: dict[str, Any] = found.json()
        return result

    async def download(self, grant_id: str, headers: dict[str, str]) -> httpx.Response:
        return await self.client.get(f"/v1/grants/{grant_id}/data", headers=headers)

    async def add_member(
        self,
        account: str,
        kind: str,
        *,
        headers: dict[str, str] | None = None,
        scenario: str = "econ",
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"account": account, "kind": kind}
        if valid_from is not None:
            body["valid_from"] = valid_from.isoformat()
        if valid_until is not None:
            body["valid_until"] = valid_until.isoformat()
        return await self.client.post(
            f"/v1/scenarios/{scenario}/members", json=body, headers=headers or self.requester
        )

    async def end_member(
        self, member_id: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/scenarios/econ/members/{member_id}/end",
            json={"reason": "合同到期"},
            headers=headers or self.requester,
        )

    async def events(self, action: str) -> list[AuditEvent]:
        async with self.app.state.session_factory() as session:
            rows = await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
            return list(rows.all())


async def sharing(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities, rows: int = 5
) -> Sharing:
    """The police's population register with one accepted release of `rows` people; Development
    and Reform's requester; no scenario yet."""
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    created = await client.post("/v1/datasets", json=POPULATION, headers=steward)
    assert created.status_code == 201, created.text
    published = await client.post(
        f"/v1/datasets/{POPULATION['code']}/releases",
        files={"file": ("人口.csv", as_csv(people(rows)), "text/csv")},
        data=PERIOD,
        headers=steward,
    )
    assert published.status_code == 201, published.text
    return Sharing(app, client, identities, steward, requester)
