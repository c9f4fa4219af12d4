from collections.abc import AsyncIterator

import httpx
import pytest

PROBLEM = "application/problem+json"


async def create(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/departments", json=body)


async def test_department_lifecycle_create_get_update(admin_client: httpx.AsyncClient) -> None:
    tax = await create(
        admin_client, code="tax", name="区税务局", kind="bureau", parent_code="platform"
    )
    assert tax.status_code == 201, tax.text
    assert tax.headers["location"] == "/v1/departments/tax"
    assert tax.json()["parent_code"] == "platform"

    fetched = await admin_client.get("/v1/departments/tax")
    assert fetched.status_code == 200
    assert fetched.json()["name"] == "区税务局"
    etag = fetched.headers["etag"]

    updated = await admin_client.patch(
        "/v1/departments/tax", json={"name": "国家税务总局某区税务局"}, headers={"If-Match": etag}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "国家税务总局某区税务局"
    assert updated.json()["version"] == 2
    assert updated.headers["etag"] != etag


async def test_list_pages_through_every_department_once(admin_client: httpx.AsyncClient) -> None:
    codes = [f"d{i:02d}" for i in range(7)]
    for code in reversed(codes):
        assert (await create(admin_client, code=code, name=code, kind="bureau")).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await admin_client.get("/v1/departments", params=params)).json()
        seen += [d["code"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [c for c in seen if c != "platform"] == codes


async def test_duplicate_code_is_409_naming_the_code(admin_client: httpx.AsyncClient) -> None:
    await create(admin_client, code="tax", name="区税务局", kind="bureau")
    response = await create(admin_client, code="tax", name="again", kind="bureau")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert "'tax'" in response.json()["detail"]
    assert (await admin_client.get("/v1/departments/tax")).json()["name"] == "区税务局"


async def test_unknown_parent_is_422_and_nothing_is_written(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await create(
        admin_client, code="street1", name="街道", kind="street", parent_code="nope"
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "body.parent_code"
    assert (await admin_client.get("/v1/departments/street1")).status_code == 404


async def test_parent_cycle_is_refused(admin_client: httpx.AsyncClient) -> None:
    await create(admin_client, code="a", name="A", kind="bureau")
    await create(admin_client, code="b", name="B", kind="bureau", parent_code="a")
    etag = (await admin_client.get("/v1/departments/a")).headers["etag"]
    response = await admin_client.patch(
        "/v1/departments/a", json={"parent_code": "b"}, headers={"If-Match": etag}
    )
    assert response.status_code == 422
    assert "own ancestor" in response.json()["detail"]


async def test_stale_if_match_is_412_and_leaves_the_row_alone(
    admin_client: httpx.AsyncClient,
) -> None:
    await create(admin_client, code="tax", name="区税务局", kind="bureau")
    await admin_client.patch(
        "/v1/departments/tax", json={"name": "second"}, headers={"If-Match": '"1"'}
    )
    response = await admin_client.patch(
        "/v1/departments/tax", json={"name": "third"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 412
    assert (await admin_client.get("/v1/departments/tax")).json()["name"] == "second"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"code": "x", "name": "X", "kind": "bureau", "colour": "red"}, "body.colour"),
        ({"code": "x", "name": "X" * 201, "kind": "bureau"}, "body.name"),
        ({"code": "x", "name": "X", "kind": "ministry"}, "body.kind"),
        ({"code": "has space", "name": "X", "kind": "bureau"}, "body.code"),
        ({"code": 5, "name": "X", "kind": "bureau"}, "body.code"),
        ({"name": "X", "kind": "bureau"}, "body.code"),
    ],
)
async def test_bad_department_bodies_name_the_field(
    admin_client: httpx.AsyncClient, body: dict[str, object], location: str
) -> None:
    response = await admin_client.post("/v1/departments", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert location in [e["location"] for e in response.json()["errors"]]


async def test_malformed_json_is_422_problem(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/v1/departments", content=b'{"code": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_body_over_the_limit_is_413_problem(admin_client: httpx.AsyncClient) -> None:
    huge = b'{"code": "x", "name": "' + b"x" * 2_000_000 + b'", "kind": "bureau"}'
    response = await admin_client.post(
        "/v1/departments", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_chunked_body_over_the_limit_is_413_problem(admin_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"code": "x", "name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'", "kind": "bureau"}'

    response = await admin_client.post(
        "/v1/departments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_bad_cursor_is_422_naming_the_cursor(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/v1/departments", params={"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "query.cursor"
