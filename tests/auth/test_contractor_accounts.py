"""Contractor accounts (开发公司): an enterprise's people hold the contractor role and nothing else,
and nobody else holds it (issue 14)."""

import httpx
import pytest

from broker.auth.models import Role


@pytest.fixture
async def departments(admin_client: httpx.AsyncClient) -> None:
    for code, kind in (("acme", "enterprise"), ("drc", "bureau")):
        created = await admin_client.post(
            "/v1/departments", json={"code": code, "name": code, "kind": kind}
        )
        assert created.status_code == 201, created.text


def _account(name: str, department: str, *roles: str) -> dict[str, object]:
    return {
        "name": name,
        "display_name": name,
        "kind": "person",
        "department_code": department,
        "roles": list(roles),
    }


@pytest.mark.usefixtures("departments")
async def test_a_contractor_role_on_a_bureau_account_is_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    refused = await admin_client.post("/v1/accounts", json=_account("x", "drc", "contractor"))
    assert refused.status_code == 422, refused.text
    assert [e["location"] for e in refused.json()["errors"]] == ["body.roles"]


@pytest.mark.usefixtures("departments")
@pytest.mark.parametrize(
    "roles",
    [("requester",), ("steward",), ("contractor", "requester"), ("leader",)],
)
async def test_an_enterprise_account_holds_only_the_contractor_role(
    admin_client: httpx.AsyncClient, roles: tuple[str, ...]
) -> None:
    refused = await admin_client.post("/v1/accounts", json=_account("dev", "acme", *roles))
    assert refused.status_code == 422, refused.text
    assert [e["location"] for e in refused.json()["errors"]] == ["body.roles"]


@pytest.mark.usefixtures("departments")
async def test_an_enterprise_contractor_is_registered_and_cannot_be_made_a_requester(
    admin_client: httpx.AsyncClient,
) -> None:
    created = await admin_client.post("/v1/accounts", json=_account("dev", "acme", "contractor"))
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == [Role.contractor.value]
    promoted = await admin_client.put(
        "/v1/accounts/dev/roles", json={"roles": ["contractor", "requester"]}
    )
    assert promoted.status_code == 422, promoted.text
