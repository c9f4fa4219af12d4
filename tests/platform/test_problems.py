"""Every route answers bad input with an RFC 9457 problem document, never a 500 or plain text.

The cases are derived from the app's own routes, so a new route is covered the day it is added.
"""

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from broker.app import create_app
from broker.config import Settings
from broker.openapi.export import openapi_document
from support.identities import Identities

PROBLEM = "application/problem+json"
ALL_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _routes() -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation the API publishes, read from its own OpenAPI document."""
    paths = openapi_document()["paths"]
    return [
        (method.upper(), path, operation)
        for path, operations in sorted(paths.items())
        for method, operation in sorted(operations.items())
    ]


ROUTES = _routes()


def _fill(path: str) -> str:
    path = re.sub(r"\{[a-z_]*_id\}", "00000000-0000-4000-8000-000000000000", path)
    return re.sub(r"\{[^}]+\}", "does-not-exist", path)


@pytest.fixture
async def omni_client(app: FastAPI, identities: Identities) -> AsyncIterator[httpx.AsyncClient]:
    """Every role at once, so each route gets past authorization to its input checks."""
    roles = ("requester", "steward", "platform_admin", "leader", "auditor")
    headers = await identities.headers("omni", roles=roles)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://broker.test", headers=headers
    ) as http:
        yield http


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert all(body[key] for key in ("title", "detail", "code"))


@pytest.mark.parametrize(
    ("method", "path", "route"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
async def test_every_route_answers_malformed_input_with_a_problem(
    omni_client: httpx.AsyncClient, method: str, path: str, route: dict[str, Any]
) -> None:
    url = _fill(path)
    checked = 0
    if path == "/oauth/token":
        # RFC 6749 §5.2 fixes this endpoint's error shape: {"error", "error_description"}.
        as_json = await omni_client.post(url, content=b'{"broken": ')
        assert as_json.status_code == 400
        assert as_json.json()["error"] == "invalid_request"
        wrong_grant = await omni_client.post(url, data={"grant_type": "password"})
        assert wrong_grant.json()["error"] == "unsupported_grant_type"
        return
    parameters = {p["name"]: p["in"] for p in route.get("parameters", [])}
    if "requestBody" in route:
        malformed = await omni_client.request(
            method, url, content=b'{"broken": ', headers={"content-type": "application/json"}
        )
        assert_problem(malformed, 422)
        wrong_type = await omni_client.request(method, url, json=["not", "an", "object"])
        assert_problem(wrong_type, 422)
        checked += 2
    query_names = {name for name, where in parameters.items() if where == "query"}
    if "limit" in query_names:
        assert_problem(await omni_client.request(method, url, params={"limit": "many"}), 422)
        assert_problem(await omni_client.request(method, url, params={"limit": 100_000}), 422)
        checked += 2
    if "cursor" in query_names:
        assert_problem(await omni_client.request(method, url, params={"cursor": "@@"}), 422)
        checked += 1
    if "path" in parameters.values() and "requestBody" not in route:
        assert_problem(await omni_client.request(method, url), 404)
        checked += 1
    unsupported = sorted(ALL_METHODS - {m for m, p, _ in ROUTES if p == path})
    if unsupported:
        assert_problem(await omni_client.request(unsupported[0], url), 405)
        checked += 1
    assert checked > 0, f"no malformed case applies to {method} {path}; add one"


async def test_unknown_route_is_a_404_problem(admin_client: httpx.AsyncClient) -> None:
    assert_problem(await admin_client.get("/v1/no-such-thing"), 404)


async def test_unexpected_failure_is_a_500_problem_without_internals(settings: Settings) -> None:
    app: FastAPI = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom", headers={"X-Request-ID": "req-1"})
    await app.state.engine.dispose()
    assert_problem(response, 500)
    assert "secret" not in response.text
    assert response.json()["request_id"] == "req-1"
