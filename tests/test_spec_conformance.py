"""The API does what its OpenAPI document and HTTP say: Allow headers, required headers, types."""

import httpx

from broker.openapi_export import openapi_document

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
