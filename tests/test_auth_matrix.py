"""Every secured route × every kind of caller: the status each one gets.

The route list comes from the published OpenAPI document; a secured route missing from SPEC
fails the suite, so each new route must state who may call it.
"""

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from broker.openapi_export import openapi_document
from forgery import forge, tamper

ROLES = ("requester", "steward", "platform_admin", "leader", "auditor")
_unique = itertools.count()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Callable[[], dict[str, Any]] | None = None
    versioned: bool = False  # send If-Match with the current ETag of `path`
    upload: bytes | None = None  # send as the multipart `file` field


@dataclass(frozen=True)
class Rule:
    call: Call
    allowed: frozenset[str]
    ok: int
    other_department: int  # a steward of another bureau acting on Tax's object


ADMIN = frozenset({"platform_admin"})
AUDIT = frozenset({"platform_admin", "auditor"})
EVERYONE = frozenset(ROLES)

SPEC: dict[str, Rule] = {
    "list_departments": Rule(Call("GET", "/v1/departments"), EVERYONE, 200, 200),
    "get_department": Rule(Call("GET", "/v1/departments/tax"), EVERYONE, 200, 200),
    "create_department": Rule(
        Call(
            "POST",
            "/v1/departments",
            lambda: {"code": f"new{next(_unique)}", "name": "新部门", "kind": "bureau"},
        ),
        ADMIN,
        201,
        403,
    ),
    "update_department": Rule(
        Call("PATCH", "/v1/departments/tax", lambda: {"name": "区税务局"}), ADMIN, 200, 403
    ),
    "list_accounts": Rule(Call("GET", "/v1/accounts"), ADMIN, 200, 403),
    "create_account": Rule(
        Call(
            "POST",
            "/v1/accounts",
            lambda: {
                "name": f"acct{next(_unique)}",
                "display_name": "x",
                "kind": "person",
                "department_code": "tax",
                "roles": ["requester"],
            },
        ),
        ADMIN,
        201,
        403,
    ),
    "get_account": Rule(Call("GET", "/v1/accounts/tax-target"), ADMIN, 200, 403),
    "set_account_roles": Rule(
        Call("PUT", "/v1/accounts/tax-target/roles", lambda: {"roles": ["requester"]}),
        ADMIN,
        200,
        403,
    ),
    "disable_account": Rule(Call("POST", "/v1/accounts/tax-target/disable"), ADMIN, 200, 403),
    "enable_account": Rule(Call("POST", "/v1/accounts/tax-target/enable"), ADMIN, 200, 403),
    "search_datasets": Rule(Call("GET", "/v1/datasets?q=税收"), EVERYONE, 200, 200),
    "get_dataset": Rule(Call("GET", "/v1/datasets/TAX-DS"), EVERYONE, 200, 200),
    "search_items": Rule(Call("GET", "/v1/items?q=税收"), EVERYONE, 200, 200),
    "create_dataset": Rule(
        Call(
            "POST",
            "/v1/datasets",
            lambda: {
                "code": f"NEW-{next(_unique)}",
                "title": "新数据集",
                "owner_department_code": "tax",
                "category": "departmental",
                "share_type": "unconditional",
                "update_cycle": "monthly",
            },
        ),
        frozenset({"platform_admin", "steward"}),
        201,
        403,
    ),
    "update_dataset": Rule(
        Call("PATCH", "/v1/datasets/TAX-DS", lambda: {"title": "税收收入月报"}, versioned=True),
        frozenset({"platform_admin", "steward"}),
        200,
        403,
    ),
    "replace_dataset_items": Rule(
        Call(
            "PUT",
            "/v1/datasets/TAX-DS/items",
            lambda: {"items": [{"code": "TAX-I1", "name": "税收收入", "data_type": "decimal"}]},
            versioned=True,
        ),
        frozenset({"platform_admin", "steward"}),
        200,
        403,
    ),
    "import_catalog_sheet": Rule(
        Call(
            "POST",
            "/v1/catalog/import?dry_run=true",
            upload="资源代码,资源名称,提供单位,资源分类,信息项编码,信息项名称,数据类型,共享类型,"
            "更新周期\r\nTAX-NEW,新表,tax,部门,TAX-NEW-1,指标,数值型,无条件共享,每月\r\n".encode(),
        ),
        frozenset({"platform_admin", "steward"}),
        200,
        403,
    ),
    "export_catalog_sheet": Rule(Call("GET", "/v1/catalog/export?format=csv"), EVERYONE, 200, 200),
    "export_catalog_dcat": Rule(Call("GET", "/v1/catalog/dcat"), EVERYONE, 200, 200),
    "list_audit_events": Rule(Call("GET", "/v1/audit/events"), AUDIT, 200, 403),
    "export_audit_events": Rule(Call("GET", "/v1/audit/export?format=csv"), AUDIT, 200, 403),
    "verify_audit_chain": Rule(Call("GET", "/v1/audit/verify"), AUDIT, 200, 403),
    "create_audit_checkpoint": Rule(Call("POST", "/v1/audit/checkpoints"), AUDIT, 201, 403),
    "rotate_client_secret": Rule(Call("POST", "/v1/accounts/tax-target/secret"), ADMIN, 200, 403),
}

BAD_TOKENS = ("no token", "expired", "tampered", "wrong audience", "not yet valid", "garbage")


def secured_operations() -> dict[str, tuple[str, str]]:
    found = {}
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                found[operation["operationId"]] = (method.upper(), path)
    return found


def test_every_secured_route_has_a_rule_and_public_routes_are_the_expected_ones() -> None:
    secured = secured_operations()
    assert set(secured) == set(SPEC), "add each new secured route to SPEC"
    public = {
        operation["operationId"]
        for operations in openapi_document()["paths"].values()
        for operation in operations.values()
        if not operation.get("security")
    }
    assert public == {"healthz", "readyz", "issue_token", "jwks", "authorization_server_metadata"}


async def send(
    client: httpx.AsyncClient, rule: Rule, token: str | None, admin: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if rule.call.versioned:
        current = await client.get(
            rule.call.path.removesuffix("/items"), headers={"Authorization": f"Bearer {admin}"}
        )
        headers["If-Match"] = current.headers["etag"]
    if rule.call.upload is not None:
        files = {"file": ("sheet.csv", rule.call.upload, "text/csv")}
        return await client.request(rule.call.method, rule.call.path, files=files, headers=headers)
    body = rule.call.body() if rule.call.body else None
    return await client.request(rule.call.method, rule.call.path, json=body, headers=headers)


@pytest.fixture
async def world(app: FastAPI, identities: Any, client: httpx.AsyncClient) -> dict[str, str]:
    """Tax and Commerce bureaus, one account per role, and a target account to manage."""
    tokens = {"platform_admin": await identities.token("admin")}
    for role in ROLES:
        if role != "platform_admin":
            tokens[role] = await identities.token(
                f"tax-{role}", department="tax", department_kind="bureau", roles=(role,)
            )
    await identities.token(
        "tax-target", department="tax", department_kind="bureau", roles=("requester",)
    )
    created = await client.post(
        "/v1/datasets",
        headers={"Authorization": f"Bearer {tokens['platform_admin']}"},
        json={
            "code": "TAX-DS",
            "title": "税收收入月报",
            "owner_department_code": "tax",
            "category": "departmental",
            "share_type": "unconditional",
            "update_cycle": "monthly",
            "status": "published",
            "items": [{"code": "TAX-I1", "name": "税收收入", "data_type": "decimal"}],
        },
    )
    assert created.status_code == 201, created.text
    tokens["other_department"] = await identities.token(
        "commerce-steward", department="commerce", department_kind="bureau", roles=("steward",)
    )
    now = time.time()
    tokens["expired"] = await forge(app, "admin", iat=int(now) - 7200, exp=int(now) - 3600)
    tokens["not yet valid"] = await forge(app, "admin", nbf=int(now) + 3600)
    tokens["wrong audience"] = await forge(app, "admin", aud="another-service")
    tokens["tampered"] = tamper(tokens["steward"])
    tokens["garbage"] = "not.a.jwt"
    return tokens


@pytest.mark.parametrize("operation", sorted(SPEC))
async def test_route_answers_each_caller_with_the_right_status(
    client: httpx.AsyncClient, world: dict[str, str], operation: str
) -> None:
    rule = SPEC[operation]
    outcomes: dict[str, int] = {}
    for case in BAD_TOKENS:
        response = await send(client, rule, world.get(case), world["platform_admin"])
        outcomes[case] = response.status_code
        assert response.headers["www-authenticate"].startswith("Bearer"), case
        assert response.headers["content-type"] == "application/problem+json"
    for role in ROLES:
        outcomes[role] = (
            await send(client, rule, world[role], world["platform_admin"])
        ).status_code
    other = await send(client, rule, world["other_department"], world["platform_admin"])
    outcomes["other_department"] = other.status_code

    expected = {case: 401 for case in BAD_TOKENS}
    expected |= {role: rule.ok if role in rule.allowed else 403 for role in ROLES}
    expected["other_department"] = rule.other_department
    assert outcomes == expected
