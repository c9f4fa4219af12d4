"""The API does what its OpenAPI document and HTTP say: Allow headers, required headers, types."""

import re
from typing import Any

import httpx
import pytest

from broker.openapi.export import openapi_document
from support import catalog_data

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _documented_methods() -> dict[str, set[str]]:
    return {
        path: {method.upper() for method in operations if method in HTTP_METHODS}
        for path, operations in openapi_document()["paths"].items()
    }


def _concrete(path: str) -> str:
    return path.replace("{", "x-").replace("}", "")


def _allowed(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers.get("allow", "").split(",") if method}


async def test_options_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    """Paths served by several routes (GET and POST on /v1/departments) list all of them."""
    documented = _documented_methods()
    shared = [path for path, methods in documented.items() if len(methods) > 1]
    assert len(shared) >= 8
    wrong = {}
    for path, methods in documented.items():
        response = await client.options(_concrete(path))
        if response.status_code != 204 or _allowed(response) != methods | {"OPTIONS"}:
            wrong[path] = (response.status_code, response.headers.get("allow"))
    assert wrong == {}


async def test_method_not_allowed_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/departments/tax")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert _allowed(response) == {"GET", "PATCH", "OPTIONS"}


async def test_options_on_an_unknown_path_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.options("/v1/nowhere")
    assert response.status_code == 404
    assert "allow" not in response.headers


def _parameters(path: str, method: str) -> dict[str, dict[str, Any]]:
    operation = openapi_document()["paths"][path][method]
    return {p["name"].lower(): p for p in operation.get("parameters", [])}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/datasets/{code}", "patch"),
        ("/v1/datasets/{code}/items", "put"),
        ("/v1/departments/{code}", "patch"),
    ],
)
def test_if_match_is_declared_required_where_its_absence_is_428(path: str, method: str) -> None:
    operation = openapi_document()["paths"][path][method]
    assert _parameters(path, method)["if-match"]["required"] is True
    assert "428" in operation["responses"]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/v1/datasets/{code}", "patch"), ("/v1/departments/{code}", "patch")],
)
def test_if_match_is_declared_as_one_of_our_etags(path: str, method: str) -> None:
    """Declared as any text (or null, sent as the text "null"), it invited values refused 422."""
    schema = _parameters(path, method)["if-match"]["schema"]
    assert schema["type"] == "string"
    accepted = ['"3"', 'W/"3"', "3", '"123456789012345678"']
    refused = ["null", "]K", '"1234567890123456789"', '"²"', "*"]
    assert [v for v in accepted if not re.fullmatch(schema["pattern"], v)] == []
    assert [v for v in refused if re.fullmatch(schema["pattern"], v)] == []


def test_optional_form_fields_are_never_null() -> None:
    """A form cannot carry null; a nullable field invited the text "null", which it refuses."""
    document = openapi_document()
    nullable = [
        f"{form}.{name}"
        for form, schema in document["components"]["schemas"].items()
        if form.endswith("Form")
        for name, field in schema["properties"].items()
        if {"type": "null"} in field.get("anyOf", [])
    ]
    assert nullable == []


async def test_dataset_update_without_if_match_is_precondition_required(
    admin_client: httpx.AsyncClient,
) -> None:
    await admin_client.post(
        "/v1/departments", json={"code": "stats", "name": "区统计局", "kind": "bureau"}
    )
    created = await admin_client.post("/v1/datasets", json=catalog_data.DATASETS[0])
    assert created.status_code == 201, created.text
    response = await admin_client.patch("/v1/datasets/TJ-GYQY-M", json={"title": "新标题"})
    assert response.status_code == 428
    assert response.json()["code"] == "precondition-required"


@pytest.mark.parametrize("path", ["/v1/audit/events", "/v1/audit/export"])
@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("number", ["0.5", "1700000000", "-1", "1e3"])
async def test_audit_time_filters_refuse_bare_numbers(
    admin_client: httpx.AsyncClient, path: str, name: str, number: str
) -> None:
    response = await admin_client.get(path, params={name: number})
    assert response.status_code == 422, response.text
    assert [e["location"] for e in response.json()["errors"]] == [f"query.{name}"]


@pytest.mark.parametrize("path", ["/v1/audit/events", "/v1/audit/export"])
async def test_audit_time_filters_take_iso_8601_instants(
    admin_client: httpx.AsyncClient, path: str
) -> None:
    response = await admin_client.get(
        path, params={"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00+08:00"}
    )
    assert response.status_code == 200, response.text
