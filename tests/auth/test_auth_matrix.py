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

from broker.openapi.export import openapi_document
from support.forgery import forge, tamper

ROLES = ("requester", "steward", "platform_admin", "leader", "auditor")
_unique = itertools.count()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Callable[[], dict[str, Any]] | None = None
    versioned: bool = False  # send If-Match with the current ETag of `path`
    upload: bytes | None = None  # send as the multipart `file` field
    form: dict[str, str] | None = None  # multipart form fields sent with the upload


@dataclass(frozen=True)
class Rule:
    call: Call
    allowed: frozenset[str]
    ok: int
    other_department: int  # a steward of another bureau acting on Tax's object
    overrides: tuple[tuple[str, int], ...] = ()  # roles allowed in, who then find the work done


ADMIN = frozenset({"platform_admin"})
AUDIT = frozenset({"platform_admin", "auditor"})
EVERYONE = frozenset(ROLES)

STEWARD = frozenset({"steward"})
REQUESTER = frozenset({"requester"})
OWNER_OR_PLATFORM = frozenset({"steward", "platform_admin"})
REASON = {"reason": "matrix"}
DECLARE = {"update_cycle": "monthly", "publication_lag_days": 10, "sensitivity": "L1"}
TAX_RELEASE = (
    ",".join(f"TAX-I{i}" for i in range(1, 13)) + "\n" + ",".join(["1.5"] * 12) + "\n"
).encode()
PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}


def _request_body() -> dict[str, Any]:
    today = time.strftime("%Y-%m-%d")
    return {
        "scenario_code": "tax-scn",
        "title": "税收分析",
        "purpose": "测试",
        "usage_start": today,
        "usage_end": "2099-12-31",
        "lines": [{"item_code": "TAX-I1"}],
    }


WORKFLOW: dict[str, Rule] = {
    "create_scenario": Rule(
        Call("POST", "/v1/scenarios", lambda: {"code": f"s{next(_unique)}", "name": "场景"}),
        REQUESTER,
        201,
        403,
    ),
    "list_scenarios": Rule(Call("GET", "/v1/scenarios"), EVERYONE, 200, 200),
    "get_scenario": Rule(Call("GET", "/v1/scenarios/tax-scn"), EVERYONE, 200, 404),
    "update_scenario": Rule(
        Call("PATCH", "/v1/scenarios/tax-scn", lambda: {"phase": "development"}),
        REQUESTER,
        200,
        403,
    ),
    "scenario_readiness": Rule(Call("GET", "/v1/scenarios/tax-scn/readiness"), EVERYONE, 200, 404),
    "create_request": Rule(Call("POST", "/v1/requests", _request_body), REQUESTER, 201, 403),
    "get_request": Rule(Call("GET", "/v1/requests/{main}"), EVERYONE, 200, 404),
    "request_readiness": Rule(Call("GET", "/v1/requests/{main}/readiness"), EVERYONE, 200, 404),
    "add_request_lines": Rule(
        Call("POST", "/v1/requests/{draft}/lines", lambda: {"item_codes": ["TAX-I2"]}),
        REQUESTER,
        200,
        403,
    ),
    "submit_request": Rule(Call("POST", "/v1/requests/{to_submit}/submit"), REQUESTER, 200, 403),
    "inbox": Rule(Call("GET", "/v1/inbox"), STEWARD, 200, 200),
    "deliveries_inbox": Rule(Call("GET", "/v1/inbox/deliveries"), STEWARD, 200, 200),
    "decide_line": Rule(
        Call(
            "POST",
            "/v1/lines/{pending}/decisions",
            lambda: {"decision": "approve", "declaration": DECLARE},
        ),
        STEWARD,
        200,
        404,
    ),
    "decide_lines": Rule(
        Call(
            "POST",
            "/v1/decisions",
            lambda: {
                "line_ids": [WORLD_IDS["batch"]],
                "decision": "approve",
                "declaration": DECLARE,
            },
        ),
        STEWARD,
        200,
        404,
    ),
    "answer_line_question": Rule(
        Call("POST", "/v1/lines/{needs_info}/answer", lambda: {"answer": "口径一致"}),
        REQUESTER,
        200,
        403,
    ),
    "accept_line_conditions": Rule(
        Call("POST", "/v1/lines/{conditions}/accept"), REQUESTER, 200, 403
    ),
    "decline_line_conditions": Rule(
        Call("POST", "/v1/lines/{conditions2}/decline"), REQUESTER, 200, 403
    ),
    "withdraw_line": Rule(Call("POST", "/v1/lines/{withdraw}/withdraw"), REQUESTER, 200, 403),
    "escalate_line": Rule(
        Call("POST", "/v1/lines/{rejected}/escalate", lambda: REASON),
        frozenset({"requester", "platform_admin"}),
        200,
        403,
        overrides=(("platform_admin", 409),),
    ),
    "settle_escalated_line": Rule(
        Call(
            "POST",
            "/v1/lines/{escalated}/leader-decision",
            lambda: {"decision": "rejected_final", "note": "依法不予共享"},
        ),
        frozenset({"leader"}),
        200,
        403,
    ),
    # Only a steward of the platform countersigns, and no such caller is in this world: the
    # bureau's steward may see the line yet is refused (tests/requests/test_countersignature.py).
    "countersign_leader_decision": Rule(
        Call(
            "POST",
            "/v1/lines/{escalated}/countersignature",
            lambda: {"decision": "countersign"},
        ),
        frozenset(),
        200,
        404,
    ),
    "escalate_overdue_and_refused": Rule(
        Call("POST", "/v1/coordination/escalations"), ADMIN, 200, 403
    ),
    "coordination_agenda": Rule(
        Call("GET", "/v1/coordination/agenda"), frozenset({"platform_admin", "leader"}), 200, 403
    ),
    "list_grants": Rule(Call("GET", "/v1/grants"), EVERYONE, 200, 200),
    "get_grant": Rule(Call("GET", "/v1/grants/{grant}"), EVERYONE, 200, 404),
    "revoke_grant": Rule(
        Call("POST", "/v1/grants/{grant}/revoke", lambda: REASON),
        OWNER_OR_PLATFORM,
        200,
        404,
        overrides=(("platform_admin", 409),),
    ),
    "suspend_grant": Rule(
        Call("POST", "/v1/grants/{grant}/suspend", lambda: REASON),
        OWNER_OR_PLATFORM,
        200,
        404,
        overrides=(("platform_admin", 409),),
    ),
    # Only the scenario's people download: Tax's steward is not listed as a member of tax-scn.
    "download_grant_data": Rule(
        Call("GET", "/v1/grants/{grant}/data"),
        frozenset({"requester", "steward"}),
        200,
        404,
        overrides=(("steward", 403),),
    ),
    # A grant's releases are listed to those who may download under it.
    "list_grant_releases": Rule(
        Call("GET", "/v1/grants/{grant}/releases"),
        frozenset({"requester", "steward"}),
        200,
        404,
        overrides=(("steward", 403),),
    ),
    # Receipts read like grants: both sides of the grant (here one department), 404 elsewhere.
    "list_receipts": Rule(Call("GET", "/v1/grants/{grant}/receipts"), EVERYONE, 200, 404),
    "get_receipt": Rule(Call("GET", "/v1/receipts/{receipt}"), EVERYONE, 200, 404),
    "add_scenario_member": Rule(
        Call(
            "POST",
            "/v1/scenarios/tax-scn/members",
            lambda: {"account": "tax-target", "kind": "member"},
        ),
        frozenset({"requester", "steward", "platform_admin"}),
        201,
        404,
        overrides=(("steward", 409), ("platform_admin", 409)),
    ),
    "list_scenario_members": Rule(Call("GET", "/v1/scenarios/tax-scn/members"), EVERYONE, 200, 404),
    "get_scenario_member": Rule(
        Call("GET", "/v1/scenarios/tax-scn/members/{member}"), EVERYONE, 200, 404
    ),
    "end_scenario_member": Rule(
        Call("POST", "/v1/scenarios/tax-scn/members/{member}/end", lambda: REASON),
        frozenset({"requester", "steward", "platform_admin"}),
        200,
        404,
        overrides=(("steward", 409), ("platform_admin", 409)),
    ),
    # The world already holds a release of PERIOD: one copy holds one release per period.
    "publish_release": Rule(
        Call("POST", "/v1/datasets/TAX-DS/releases", upload=TAX_RELEASE, form=PERIOD),
        OWNER_OR_PLATFORM,
        201,
        403,
        overrides=(("steward", 409), ("platform_admin", 409)),
    ),
    "list_releases": Rule(Call("GET", "/v1/datasets/TAX-DS/releases"), EVERYONE, 200, 403),
    "get_release": Rule(Call("GET", "/v1/datasets/TAX-DS/releases/{release}"), EVERYONE, 200, 403),
    "freshness_report": Rule(Call("GET", "/v1/freshness"), EVERYONE, 200, 200),
    "resume_grant": Rule(
        Call("POST", "/v1/grants/{suspended_grant}/resume", lambda: REASON),
        OWNER_OR_PLATFORM,
        200,
        404,
        overrides=(("platform_admin", 409),),
    ),
}
WORLD_IDS: dict[str, str] = {}

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
        Call("PATCH", "/v1/departments/tax", lambda: {"name": "区税务局"}, versioned=True),
        ADMIN,
        200,
        403,
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
            lambda: {
                "items": [
                    {"code": f"TAX-I{i}", "name": f"税收指标{i}（修订）", "data_type": "decimal"}
                    for i in range(1, 13)
                ]
            },
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
    "import_departments": Rule(
        Call(
            "POST",
            "/v1/imports/departments?dry_run=true",
            upload="部门编码,部门名称,部门类型\r\nnewdept,新部门,委办局\r\n".encode(),
        ),
        ADMIN,
        200,
        403,
    ),
    "import_accounts": Rule(
        Call(
            "POST",
            "/v1/imports/accounts?dry_run=true",
            upload="账号,类型,部门,角色\r\nnew.person,人员,tax,数据专员\r\n".encode(),
        ),
        ADMIN,
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

SPEC |= WORKFLOW

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
    path = rule.call.path.format_map(WORLD_IDS) if "{" in rule.call.path else rule.call.path
    rule = Rule(
        Call(
            rule.call.method,
            path,
            rule.call.body,
            rule.call.versioned,
            rule.call.upload,
            rule.call.form,
        ),
        rule.allowed,
        rule.ok,
        rule.other_department,
    )
    if rule.call.versioned:
        current = await client.get(
            rule.call.path.removesuffix("/items"), headers={"Authorization": f"Bearer {admin}"}
        )
        headers["If-Match"] = current.headers["etag"]
    if rule.call.upload is not None:
        files = {"file": ("sheet.csv", rule.call.upload, "text/csv")}
        return await client.request(
            rule.call.method, rule.call.path, files=files, data=rule.call.form, headers=headers
        )
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
        "tax-target", department="tax", department_kind="bureau", roles=("requester",), client=True
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
            "items": [
                {"code": f"TAX-I{i}", "name": f"税收指标{i}", "data_type": "decimal"}
                for i in range(1, 13)
            ],
        },
    )
    assert created.status_code == 201, created.text
    WORLD_IDS.clear()
    WORLD_IDS.update(await _workflow(client, tokens))
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


async def _workflow(client: httpx.AsyncClient, tokens: dict[str, str]) -> dict[str, str]:
    """A Tax scenario and request whose lines sit in every state some route needs."""

    async def call(who: str, method: str, path: str, body: Any = None) -> Any:
        response = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {tokens[who]}"}
        )
        assert response.status_code in (200, 201), (path, response.text)
        return response.json()

    await call("requester", "POST", "/v1/scenarios", {"code": "tax-scn", "name": "税收分析场景"})
    member = await call(
        "requester",
        "POST",
        "/v1/scenarios/tax-scn/members",
        {"account": "tax-auditor", "kind": "member"},
    )
    body = _request_body() | {"lines": [{"item_code": f"TAX-I{i}"} for i in range(1, 12)]}
    main = await call("requester", "POST", "/v1/requests", body)
    lines = {
        line["item_code"]: line["id"]
        for line in (await call("requester", "POST", f"/v1/requests/{main['id']}/submit"))["lines"]
    }
    steward_decides = {
        "TAX-I2": {"decision": "needs_info", "question": "口径？"},
        "TAX-I3": {
            "decision": "approve_with_conditions",
            "declaration": DECLARE,
            "conditions": {"purpose": "分析"},
        },
        "TAX-I4": {
            "decision": "approve_with_conditions",
            "declaration": DECLARE,
            "conditions": {"purpose": "分析"},
        },
        "TAX-I5": {
            "decision": "reject",
            "reason": "不宜共享",
            "legal_basis": "《政务数据共享条例》第十五条",
            "declaration": DECLARE,
        },
        "TAX-I6": {
            "decision": "reject",
            "reason": "不宜共享",
            "legal_basis": "《政务数据共享条例》第十五条",
            "declaration": DECLARE,
        },
        "TAX-I7": {"decision": "approve", "declaration": DECLARE},
        "TAX-I8": {"decision": "approve", "declaration": DECLARE},
    }
    decided = {}
    for code, decision in steward_decides.items():
        decided[code] = await call(
            "steward", "POST", f"/v1/lines/{lines[code]}/decisions", decision
        )
    await call("requester", "POST", f"/v1/lines/{lines['TAX-I6']}/escalate", REASON)
    suspended = decided["TAX-I8"]["grant_id"]
    await call("steward", "POST", f"/v1/grants/{suspended}/suspend", REASON)
    release = await client.post(
        "/v1/datasets/TAX-DS/releases",
        files={"file": ("tax.csv", TAX_RELEASE, "text/csv")},
        data=PERIOD,
        headers={"Authorization": f"Bearer {tokens['steward']}"},
    )
    assert release.status_code == 201, release.text
    downloaded = await client.get(
        f"/v1/grants/{decided['TAX-I7']['grant_id']}/data",
        headers={"Authorization": f"Bearer {tokens['requester']}"},
    )
    assert downloaded.status_code == 200, downloaded.text
    draft = await call("requester", "POST", "/v1/requests", _request_body())
    to_submit = await call("requester", "POST", "/v1/requests", _request_body())
    return {
        "main": main["id"],
        "draft": draft["id"],
        "to_submit": to_submit["id"],
        "pending": lines["TAX-I1"],
        "batch": lines["TAX-I9"],
        "withdraw": lines["TAX-I10"],
        "needs_info": lines["TAX-I2"],
        "conditions": lines["TAX-I3"],
        "conditions2": lines["TAX-I4"],
        "rejected": lines["TAX-I5"],
        "escalated": lines["TAX-I6"],
        "grant": decided["TAX-I7"]["grant_id"],
        "suspended_grant": suspended,
        "release": release.json()["id"],
        "member": member["id"],
        "receipt": downloaded.headers["x-receipt-id"],
    }


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
    expected |= dict(rule.overrides)
    assert outcomes == expected
