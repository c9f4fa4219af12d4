import csv
import io
import itertools
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from broker.openapi.export import openapi_document
from support.audit_helpers import actions_after, events, head
from support.identities import Identities
from support.workflow import WORKFLOW_ROUTES

PROBLEM = "application/problem+json"


async def test_each_change_records_exactly_one_event_with_before_and_after(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    steps: list[tuple[str, str, dict[str, object] | None, str]] = [
        (
            "POST",
            "/v1/departments",
            {"code": "tax", "name": "区税务局", "kind": "bureau"},
            "department.created",
        ),
        ("PATCH", "/v1/departments/tax", {"name": "国家税务总局某区税务局"}, "department.updated"),
        (
            "POST",
            "/v1/accounts",
            {
                "name": "tax-sys",
                "display_name": "x",
                "kind": "client",
                "department_code": "tax",
                "roles": ["steward"],
            },
            "account.created",
        ),
        (
            "PUT",
            "/v1/accounts/tax-sys/roles",
            {"roles": ["steward", "requester"]},
            "account.roles_changed",
        ),
        ("POST", "/v1/accounts/tax-sys/disable", None, "account.disabled"),
        ("POST", "/v1/accounts/tax-sys/enable", None, "account.enabled"),
        ("POST", "/v1/accounts/tax-sys/secret", None, "account.secret_rotated"),
        ("POST", "/v1/audit/checkpoints", None, "audit.checkpointed"),
        (
            "POST",
            "/v1/datasets",
            {
                "code": "tax",
                "title": "税收收入月报",
                "owner_department_code": "tax",
                "category": "departmental",
                "share_type": "unconditional",
                "update_cycle": "monthly",
            },
            "dataset.created",
        ),
        ("PATCH", "/v1/datasets/tax", {"title": "税收收入月度统计"}, "dataset.updated"),
        (
            "PUT",
            "/v1/datasets/tax/items",
            {"items": [{"code": "SW-SSSR", "name": "税收收入", "data_type": "decimal"}]},
            "dataset.items_replaced",
        ),
        ("POST", "/v1/catalog/import", None, "catalog.imported"),
        ("POST", "/v1/imports/departments", None, "department.created departments.imported"),
        ("POST", "/v1/imports/accounts", None, "account.created accounts.imported"),
        ("POST", "/v1/datasets/tax/releases", None, "release.published"),
    ]
    mutating = {
        (method.upper(), path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"} and path != "/oauth/token"
    }
    mutating = {
        (m, p) for m, p in mutating if (m, re.sub(r"\{[^}]+\}", "{x}", p)) not in WORKFLOW_ROUTES
    }
    covered = {
        (method, re.sub(r"/(tax|tax-sys)(?=/|$)", "/{x}", path)) for method, path, *_ in steps
    }
    assert {(m, re.sub(r"\{[^}]+\}", "{x}", p)) for m, p in mutating} == covered, (
        "every mutating route needs a step here (POST /oauth/token is tested below)"
    )
    sheet = (
        "资源代码,资源名称,提供单位,资源分类,信息项编码,信息项名称,数据类型,共享类型,更新周期\r\n"
        "NEW-1,新表,tax,部门,NEW-1-1,指标,数值型,无条件共享,每月\r\n"
    ).encode()
    for method, path, body, action in steps:
        before = await head(app)
        headers = {}
        if path.startswith(("/v1/datasets/", "/v1/departments/")) and not path.endswith(
            "/releases"
        ):
            current = await admin_client.get(path.removesuffix("/items"))
            headers["If-Match"] = current.headers["etag"]
        if path == "/v1/catalog/import":
            response = await admin_client.post(path, files={"file": ("s.csv", sheet, "text/csv")})
        elif path.startswith("/v1/imports/"):
            listing = LISTS[path.rsplit("/", 1)[1]]
            response = await admin_client.post(path, files={"file": ("l.csv", listing, "text/csv")})
        elif path.endswith("/releases"):
            response = await admin_client.post(
                path,
                files={"file": ("tax.csv", b"SW-SSSR\n12.5\n", "text/csv")},
                data={"period_start": "2026-10-01", "period_end": "2026-10-31"},
            )
        else:
            response = await admin_client.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        # a list import records each entry it creates, then one event for the file
        assert await actions_after(app, before) == action.split(), path

    recorded = {e.action: e for e in await events(app)}
    update = recorded["department.updated"]
    assert update.details["before"]["name"] == "区税务局"
    assert update.details["after"]["name"] == "国家税务总局某区税务局"
    assert update.actor_client == "admin"
    assert update.actor_department == "platform"
    assert update.request_id
    roles = recorded["account.roles_changed"].details
    assert roles["after"]["roles"] == ["requester", "steward"]


LISTS = {
    "departments": "部门编码,部门名称,部门类型\r\nstats,区统计局,委办局\r\n".encode(),
    "accounts": "账号,类型,部门,角色\r\nstats.li,人员,stats,数据专员\r\n".encode(),
}


async def test_token_issue_and_refusal_are_recorded_without_secrets(
    app: FastAPI, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await admin_client.post(
        "/v1/departments", json={"code": "tax", "name": "税务", "kind": "bureau"}
    )
    created = await admin_client.post(
        "/v1/accounts",
        json={
            "name": "tax-sys",
            "display_name": "x",
            "kind": "client",
            "department_code": "tax",
            "roles": ["steward"],
        },
    )
    secret = created.json()["client_secret"]
    before = await head(app)
    form = {"grant_type": "client_credentials"}
    assert (
        await client.post("/oauth/token", data=form, auth=("tax-sys", "wrong"))
    ).status_code == 401
    ok = await client.post("/oauth/token", data=form, auth=("tax-sys", secret))
    assert ok.status_code == 200
    assert await actions_after(app, before) == ["token.refused", "token.issued"]
    everything = json.dumps([e.details for e in await events(app)], ensure_ascii=False)
    assert secret not in everything
    assert ok.json()["access_token"] not in everything


async def test_refused_call_records_one_access_denied_and_no_change(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities
) -> None:
    steward = await identities.headers(
        "tax-steward", department="tax", department_kind="bureau", roles=("steward",)
    )
    before = await head(app)
    refused = await client.post(
        "/v1/departments", json={"code": "x", "name": "x", "kind": "bureau"}, headers=steward
    )
    assert refused.status_code == 403
    new = [e for e in await events(app) if e.seq > before]
    assert [e.action for e in new] == ["access.denied"]
    assert new[0].outcome == "denied"
    assert new[0].actor_client == "tax-steward"
    assert new[0].object_id == "POST /v1/departments"
    assert new[0].details["operation"] == "create_department"


async def test_failed_change_leaves_no_event(app: FastAPI, admin_client: httpx.AsyncClient) -> None:
    await admin_client.post(
        "/v1/departments", json={"code": "tax", "name": "税务", "kind": "bureau"}
    )
    before = await head(app)
    duplicate = await admin_client.post(
        "/v1/departments", json={"code": "tax", "name": "again", "kind": "bureau"}
    )
    assert duplicate.status_code == 409
    assert await actions_after(app, before) == []


async def test_export_by_a_steward_is_forbidden_and_recorded(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities
) -> None:
    steward = await identities.headers(
        "tax-steward", department="tax", department_kind="bureau", roles=("steward",)
    )
    before = await head(app)
    response = await client.get("/v1/audit/export", headers=steward)
    assert response.status_code == 403
    assert await actions_after(app, before) == ["access.denied"]


async def test_event_listing_filters_and_pages(
    app: FastAPI, admin_client: httpx.AsyncClient, identities: Identities
) -> None:
    for code in ("a", "b", "c"):
        await admin_client.post(
            "/v1/departments", json={"code": code, "name": code, "kind": "bureau"}
        )
    await admin_client.patch("/v1/departments/a", json={"name": "A"}, headers={"If-Match": '"1"'})
    auditor = await identities.headers("auditor1", roles=("auditor",))
    created = await admin_client.get(
        "/v1/audit/events", params={"action": "department.created"}, headers=auditor
    )
    assert [e["object"]["id"] for e in created.json()["items"]] == ["a", "b", "c"]
    prefix = await admin_client.get("/v1/audit/events", params={"action": "department."})
    assert len(prefix.json()["items"]) == 4

    first = (await admin_client.get("/v1/audit/events", params={"limit": 2})).json()
    second = (
        await admin_client.get(
            "/v1/audit/events", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 4

    all_events = await events(app)
    pivot = all_events[2].time
    half_open = await admin_client.get(
        "/v1/audit/events",
        params={"until": pivot.isoformat(), "limit": 200},
    )
    assert [e["seq"] for e in half_open.json()["items"]] == [
        e.seq for e in all_events if e.time < pivot
    ]
    by_actor = await admin_client.get("/v1/audit/events", params={"actor": "admin"})
    assert all(e["actor"]["client_id"] == "admin" for e in by_actor.json()["items"])
    by_department = await admin_client.get("/v1/audit/events", params={"department": "nowhere"})
    assert by_department.json()["items"] == []


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "query.since"),
        ({"since": "2026-02-01T00:00:00"}, "query.since"),
        ({"since": "yesterday"}, "query.since"),
        ({"cursor": "garbage"}, "query.cursor"),
        ({"format": "xml"}, "query.format"),
    ],
)
async def test_malformed_audit_queries_are_422_problems(
    admin_client: httpx.AsyncClient, params: dict[str, str], location: str
) -> None:
    path = "/v1/audit/export" if "format" in params else "/v1/audit/events"
    response = await admin_client.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert location in [e["location"] for e in response.json()["errors"]]


async def test_jsonl_export_carries_every_event_and_a_checkable_trailer(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    for code in ("a", "b"):
        await admin_client.post(
            "/v1/departments", json={"code": code, "name": code, "kind": "bureau"}
        )
    response = await admin_client.get("/v1/audit/export", params={"format": "jsonl"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    trailer = lines[-1]["trailer"]
    exported = lines[:-1]
    assert [e["action"] for e in exported][-1] == "audit.exported"
    assert trailer["count"] == len(exported)
    assert trailer["last_seq"] == exported[-1]["seq"]
    assert trailer["last_hash"] == exported[-1]["hash"]
    for previous, event in itertools.pairwise(exported):
        assert event["prev_hash"] == previous["hash"]


async def test_csv_export_is_rfc4180_and_neutralises_formulas(
    admin_client: httpx.AsyncClient,
) -> None:
    await admin_client.post(
        "/v1/departments",
        json={"code": "evil", "name": '=HYPERLINK("http://x","点我")', "kind": "bureau"},
    )
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = await admin_client.get("/v1/audit/export", params={"format": "csv", "since": since})
    assert response.status_code == 200
    assert "\r\n" in response.text
    rows = list(csv.reader(io.StringIO(response.text)))
    header, body, trailer = rows[0], rows[1:-1], rows[-1]
    assert header[0] == "seq"
    assert all(len(row) == len(header) for row in rows)
    assert trailer[0] == "#trailer"
    assert json.loads(trailer[header.index("details")])["count"] == len(body)
    created = next(r for r in body if r[header.index("action")] == "department.created")
    details = created[header.index("details")]
    assert "=HYPERLINK" in details
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell


async def test_verify_reports_ok_with_count_and_head(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    await admin_client.post("/v1/departments", json={"code": "a", "name": "a", "kind": "bureau"})
    result = (await admin_client.get("/v1/audit/verify")).json()
    rows = await events(app)
    assert result["ok"] is True
    assert result["count"] == len(rows)
    assert result["head_hash"] == rows[-1].hash
