"""Hostile input answers a 4xx problem naming what to fix, never a 500 or a stored oddity.

Control characters, non-finite numbers, dates past any calendar we compute with, cursors and
ETags of the wrong shape, oversized CSV fields; and after any error the connection stays usable.
"""

import base64
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from broker.app import create_app
from broker.config import Settings
from broker.openapi.export import openapi_document
from catalog.datasets.freshness import deadlines
from catalog.vocab import UpdateCycle
from support.identities import Identities
from support.processes import free_port

PROBLEM = "application/problem+json"
PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}


def assert_problem(response: httpx.Response, status: int, location: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    if location is not None:
        assert location in [e["location"] for e in body.get("errors", [])], body


def dataset(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "title": "地区生产总值",
        "category": "departmental",
        "share_type": "unconditional",
        "update_cycle": "monthly",
        **extra,
    }


GDP_ITEMS: list[dict[str, Any]] = [
    {"code": "GDP-Q", "name": "季度", "data_type": "string", "nullable": False, "is_key": True},
    {"code": "GDP-V", "name": "地区生产总值", "data_type": "decimal", "unit": "亿元"},
]


@pytest.fixture
async def omni(app: FastAPI, identities: Identities) -> AsyncIterator[httpx.AsyncClient]:
    """Every role at once, so each route gets past authorization to its input checks."""
    roles = ("requester", "steward", "platform_admin", "leader", "auditor")
    headers = await identities.headers("omni", roles=roles)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://broker.test", headers=headers
    ) as http:
        yield http


# ---------------------------------------------------------------- control characters


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"code": "nul", "name": "统计\x00局", "kind": "bureau"}, "body.name"),
        ({"code": "esc", "name": "统计\x1b[31m局", "kind": "bureau"}, "body.name"),
        ({"code": "bel\x07", "name": "统计局", "kind": "bureau"}, "body.code"),
    ],
    ids=["nul", "escape", "bell-in-code"],
)
async def test_control_characters_in_a_json_body_are_a_422_naming_the_field(
    admin_client: httpx.AsyncClient, body: dict[str, Any], location: str
) -> None:
    response = await admin_client.post("/v1/departments", json=body)
    assert_problem(response, 422, location)
    listed = await admin_client.get("/v1/departments", params={"limit": 200})
    assert all("\x00" not in d["name"] for d in listed.json()["items"])


async def test_control_characters_deep_in_a_json_body_name_the_nested_field(
    omni: httpx.AsyncClient,
) -> None:
    body = dataset("NESTED", items=[GDP_ITEMS[0], {**GDP_ITEMS[1], "unit": "亿\x00元"}])
    assert_problem(await omni.post("/v1/datasets", json=body), 422, "body.items.1.unit")


async def test_line_breaks_and_tabs_in_long_text_are_kept(omni: httpx.AsyncClient) -> None:
    description = "第一行\r\n第二行\n\t缩进"
    created = await omni.post("/v1/datasets", json=dataset("LINES", description=description))
    assert created.status_code == 201, created.text
    assert created.json()["description"] == description


async def test_control_characters_in_query_path_and_headers_are_422s(
    omni: httpx.AsyncClient,
) -> None:
    assert_problem(await omni.get("/v1/datasets", params={"q": "a\x00b"}), 422, "query.q")
    assert_problem(await omni.get("/v1/departments/pla%00tform"), 422, "path")
    assert_problem(
        await omni.patch(
            "/v1/departments/platform", json={"name": "平台"}, headers={"If-Match": '"1\x00"'}
        ),
        422,
        "header.If-Match",
    )
    assert_problem(
        await omni.post(
            "/v1/requests/00000000-0000-4000-8000-000000000000/submit",
            headers={"Idempotency-Key": "k\x01"},
        ),
        422,
        "header.Idempotency-Key",
    )


async def test_control_characters_in_multipart_form_fields_are_a_422(
    omni: httpx.AsyncClient,
) -> None:
    await omni.post("/v1/datasets", json=dataset("FORM", items=GDP_ITEMS))
    response = await omni.post(
        "/v1/datasets/FORM/releases",
        files={"file": ("gdp.csv", b"GDP-Q,GDP-V\n2026Q1,1.5\n", "text/csv")},
        data={**PERIOD, "format": "csv\x00"},
    )
    assert_problem(response, 422, "form.format")


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "s"},
        {"grant_type": "client_credentials\x00", "client_id": "a", "client_secret": "s"},
    ],
    ids=["client_id", "grant_type"],
)
async def test_control_characters_at_the_token_endpoint_are_an_rfc6749_invalid_request(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await client.post("/oauth/token", data=form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


async def test_control_characters_in_basic_credentials_are_an_rfc6749_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/oauth/token", auth=("a\x00b", "secret"), data={"grant_type": "client_credentials"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


# ---------------------------------------------------------------- numbers and dates


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_item_bounds_are_a_422(omni: httpx.AsyncClient, literal: str) -> None:
    raw = json.dumps(dataset("NAN", items=[GDP_ITEMS[0], {**GDP_ITEMS[1], "minimum": 0}]))
    raw = raw.replace('"minimum": 0', f'"minimum": {literal}')
    response = await omni.post(
        "/v1/datasets", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "body.items.1.minimum")
    assert (await omni.get("/v1/datasets/NAN")).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("last_updated_at", "9999-12-31T23:59:59Z"),
        ("last_updated_at", "0001-01-01T00:00:00Z"),
        ("temporal_start", "0001-01-01"),
        ("temporal_end", "9999-12-31"),
    ],
)
async def test_dates_outside_the_calendar_window_are_a_422(
    omni: httpx.AsyncClient, field: str, value: str
) -> None:
    response = await omni.post("/v1/datasets", json=dataset("FAR", **{field: value}))
    assert_problem(response, 422, f"body.{field}")
    created = await omni.post("/v1/datasets", json=dataset("FAR"))
    assert created.status_code == 201, created.text
    patched = await omni.patch(
        "/v1/datasets/FAR", json={field: value}, headers={"If-Match": created.headers["etag"]}
    )
    assert_problem(patched, 422, f"body.{field}")


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("body.usage_end", {"usage_end": "9999-12-31"}),
        ("body.usage_start", {"usage_start": "0001-01-01"}),
    ],
    ids=["usage-end-9999", "usage-start-year-1"],
)
async def test_request_dates_outside_the_calendar_window_are_a_422(
    omni: httpx.AsyncClient, field: str, body: dict[str, str]
) -> None:
    request = {
        "scenario_code": "econ",
        "title": "需求",
        "purpose": "分析",
        "usage_start": "2026-01-01",
        "usage_end": "2026-12-31",
        **body,
    }
    assert_problem(await omni.post("/v1/requests", json=request), 422, field)


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "1e999"])
async def test_non_finite_decimals_in_a_release_fail_validation_naming_column_and_row(
    omni: httpx.AsyncClient, value: str
) -> None:
    created = await omni.post("/v1/datasets", json=dataset("GDP", items=GDP_ITEMS))
    assert created.status_code == 201, created.text
    data = f"GDP-Q,GDP-V\n2026Q1,1.5\n2026Q2,{value}\n2026Q3,2.5\n".encode()
    response = await omni.post(
        "/v1/datasets/GDP/releases",
        files={"file": ("gdp.csv", data, "text/csv")},
        data=PERIOD,
    )
    assert_problem(response, 422)
    checks = response.json()["report"]["checks"]
    assert checks == [
        {
            "column": "GDP-V",
            "check": "data_type",
            "failure_count": 1,
            "examples": [{"row": 2, "value": value}],
        }
    ], checks


def test_deadlines_past_the_calendar_are_never_due_rather_than_a_crash() -> None:
    stored_before_the_window = datetime(9999, 12, 1, tzinfo=UTC)
    assert deadlines(stored_before_the_window, UpdateCycle.annual, 30) == (None, None)


# ---------------------------------------------------------------- cursors


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor(position: dict[str, Any]) -> str:
    return raw_cursor(json.dumps(position))


# Each list endpoint, the keys of its cursor, and positions with those keys but values of the
# wrong type, or of the right type but outside what the database or the clock can compare.
NAME = ["5", '["x"]', '{"a": 1}', "null", "true", '"a\\u0000b"', '"\\ud800"']
UUID = ["5", '"not-a-uuid"', "null", '["x"]']
SEQ = ['"x"', "1.5", "true", "null", str(10**30), "-1"]
SCORE = ['"x"', "NaN", "Infinity", "null", "true"]
MOMENT = ['"x"', "5", '"2026-01-01T00:00:00"', '"9999-12-31T23:59:59-23:59"', "null"]
DAY = ['"x"', "5", '"2026-13-01"', '"10000-01-01"', "null", '["x"]']
CURSORS: list[tuple[str, dict[str, str], dict[str, list[str]]]] = [
    ("/v1/departments", {}, {"code": NAME}),
    ("/v1/accounts", {}, {"name": NAME}),
    ("/v1/datasets", {}, {"s": SCORE, "c": NAME}),
    ("/v1/datasets", {"sort": "updated"}, {"u": MOMENT, "c": NAME}),
    ("/v1/items", {"q": "产值"}, {"s": SCORE, "c": NAME}),
    ("/v1/scenarios", {}, {"code": NAME}),
    ("/v1/inbox", {}, {"t": MOMENT, "i": UUID}),
    ("/v1/inbox/deliveries", {}, {"t": MOMENT, "i": UUID}),
    ("/v1/grants", {}, {"id": UUID}),
    ("/v1/grants/{grant_id}/receipts", {}, {"t": MOMENT, "i": UUID}),
    ("/v1/grants/{grant_id}/releases", {}, {"p": DAY, "i": UUID}),
    ("/v1/scenarios/CUR/members", {}, {"id": UUID}),
    ("/v1/datasets/CUR/releases", {}, {"id": UUID}),
    ("/v1/audit/events", {}, {"seq": SEQ}),
]
GOOD = {
    "p": '"2026-01-01"',
    "code": '"a"',
    "name": '"a"',
    "c": '"a"',
    "s": "1",
    "u": '"2026-01-01T00:00:00+00:00"',
    "t": '"2026-01-01T00:00:00+00:00"',
    "i": '"00000000-0000-4000-8000-000000000000"',
    "id": '"00000000-0000-4000-8000-000000000000"',
    "seq": "1",
}


def test_every_endpoint_with_a_cursor_is_covered_by_the_cursor_test() -> None:
    paths = openapi_document()["paths"]
    with_cursor = {
        path.replace("{code}", "CUR")
        for path, operations in paths.items()
        for operation in operations.values()
        if any(p["name"] == "cursor" for p in operation.get("parameters", []))
    }
    assert with_cursor == {path for path, _, _ in CURSORS}


async def _scenario_with_a_grant(omni: httpx.AsyncClient) -> str:
    """Scenario CUR with one auto-approved line on dataset CUR; the line's grant id."""
    published = await omni.patch(
        "/v1/datasets/CUR",
        json={"status": "published", "aggregated": True, "sensitivity": "L1"},
        headers={"If-Match": (await omni.get("/v1/datasets/CUR")).headers["etag"]},
    )
    assert published.status_code == 200, published.text
    scenario = await omni.post("/v1/scenarios", json={"code": "CUR", "name": "游标场景"})
    assert scenario.status_code == 201, scenario.text
    drafted = await omni.post(
        "/v1/requests",
        json={
            "scenario_code": "CUR",
            "title": "游标",
            "purpose": "测试",
            "usage_start": "2026-01-01",
            "usage_end": "2099-12-31",
            "lines": [{"item_code": "GDP-V"}],
        },
    )
    assert drafted.status_code == 201, drafted.text
    submitted = await omni.post(f"/v1/requests/{drafted.json()['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    grant_id: str = submitted.json()["lines"][0]["grant_id"]
    return grant_id


@pytest.mark.parametrize(
    ("path", "params", "wrong"), CURSORS, ids=[f"{p} {q}" for p, q, _ in CURSORS]
)
async def test_a_cursor_with_wrongly_typed_values_is_a_422_and_the_client_goes_on(
    omni: httpx.AsyncClient, path: str, params: dict[str, str], wrong: dict[str, list[str]]
) -> None:
    created = await omni.post("/v1/datasets", json=dataset("CUR", items=GDP_ITEMS))
    assert created.status_code == 201, created.text
    if "CUR/members" in path or "{grant_id}" in path:
        path = path.replace("{grant_id}", await _scenario_with_a_grant(omni))
    well_typed = "{" + ",".join(f'"{k}": {GOOD[k]}' for k in wrong) + "}"
    assert (await omni.get(path, params={**params, "cursor": raw_cursor(well_typed)})).is_success
    for key, values in wrong.items():
        for value in values:
            position = {k: GOOD[k] for k in wrong} | {key: value}
            text = "{" + ",".join(f'"{k}": {v}' for k, v in position.items()) + "}"
            response = await omni.get(path, params={**params, "cursor": raw_cursor(text)})
            assert_problem(response, 422, "query.cursor")
            assert response.json()["errors"][0]["type"] == "invalid_cursor", text
            after = await omni.get(path, params=params)
            assert after.status_code == 200, after.text


# ---------------------------------------------------------------- ETags


@pytest.mark.parametrize(
    "if_match", [b'"\xb2"', b'"' + b"9" * 5000 + b'"', b'"' + b"1" * 40 + b'"', b'"-1"', b'""']
)
async def test_a_malformed_if_match_is_a_422(
    admin_client: httpx.AsyncClient, if_match: bytes
) -> None:
    for path, body in (
        ("/v1/departments/platform", {"name": "平台"}),
        ("/v1/datasets/ETAG", {"title": "新标题"}),
    ):
        if path.startswith("/v1/datasets"):
            await admin_client.post("/v1/datasets", json=dataset("ETAG"))
        response = await admin_client.patch(path, json=body, headers={b"If-Match": if_match})
        assert_problem(response, 422, "header.If-Match")


# ---------------------------------------------------------------- sheets


async def test_a_sheet_field_over_the_csv_limit_is_a_422_naming_the_row(
    admin_client: httpx.AsyncClient,
) -> None:
    header = "资源代码,资源名称,提供单位,资源分类,信息项编码,信息项名称,数据类型,共享类型,更新周期"
    good = "A-1,甲,platform,部门,A-1-1,指标一,数值型,无条件共享,每月"
    huge = "A-2," + "乙" * 200_000 + ",platform,部门,A-2-1,指标二,数值型,无条件共享,每月"
    data = "\r\n".join([header, good, huge, good]).encode()
    response = await admin_client.post(
        "/v1/catalog/import", files={"file": ("目录.csv", data, "text/csv")}
    )
    assert_problem(response, 422, "file: row 3")


async def test_a_release_field_of_any_size_is_read_or_refused_without_a_500(
    omni: httpx.AsyncClient,
) -> None:
    created = await omni.post("/v1/datasets", json=dataset("WIDE", items=GDP_ITEMS))
    assert created.status_code == 201, created.text
    data = ("GDP-Q,GDP-V\n2026Q1,1.5\n" + "Q" * 300_000 + ",2.5\n").encode()
    response = await omni.post(
        "/v1/datasets/WIDE/releases", files={"file": ("gdp.csv", data, "text/csv")}, data=PERIOD
    )
    assert response.status_code in (201, 413, 422), response.text


# ---------------------------------------------------------------- keep-alive after errors


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[str, int]]:
    """A real uvicorn server in this process, with one route that always fails."""
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    running.should_exit = True
    thread.join(timeout=10)


def _exchange(connection: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one request and read exactly its response (Content-Length framed)."""
    connection.sendall(request)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection; got {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return int(lines[0].split()[1]), body


@pytest.mark.parametrize(
    "failing",
    [
        b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v1/departments?cursor=%40%40 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /v1/no-such HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST /v1/departments?name=%00 HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["500", "422-cursor", "404-unread-body", "422-control-character"],
)
def test_the_connection_stays_usable_after_an_error(
    server: tuple[str, int], failing: bytes
) -> None:
    with socket.create_connection(server, timeout=10) as connection:
        status, body = _exchange(connection, failing)
        assert status >= 400
        assert b"secret" not in body
        status, body = _exchange(connection, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (status, json.loads(body)) == (200, {"status": "ok"})


@pytest.mark.parametrize("field", ["period_start", "period_end"])
async def test_release_periods_outside_the_calendar_window_are_a_422(
    omni: httpx.AsyncClient, field: str
) -> None:
    created = await omni.post("/v1/datasets", json=dataset("GDP", items=GDP_ITEMS))
    assert created.status_code == 201, created.text
    response = await omni.post(
        "/v1/datasets/GDP/releases",
        files={"file": ("gdp.csv", b"GDP-Q,GDP-V\n2026Q1,1.5\n", "text/csv")},
        data={**PERIOD, field: "9999-12-31"},
    )
    assert_problem(response, 422, f"body.{field}")
