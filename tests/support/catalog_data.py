"""A small, realistic district catalog used by the catalog and search tests."""

from typing import Any

from broker import demo

# Package data (broker/demo/data/sample_catalog.json), so the catalog is written in one place.
DEPARTMENTS, DATASETS = demo.sample_catalog()


def item(
    code: str, name: str, data_type: str = "decimal", unit: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"code": code, "name": name, "data_type": data_type, "unit": unit, **extra}


async def seed(client: Any, admin_headers: dict[str, str] | None = None) -> None:
    """Create the departments and datasets above through the API, as the platform admin."""
    from datetime import UTC, datetime, timedelta

    for code, name, kind in DEPARTMENTS:
        response = await client.post(
            "/v1/departments",
            json={"code": code, "name": name, "kind": kind},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
    now = datetime.now(UTC)
    # Fresh, due and stale examples: monthly data with a 20-day lag.
    declared = {
        "TJ-GYQY-M": now - timedelta(days=5),
        "SW-SSSR-M": now - timedelta(days=50),
        "TJ-GDP-Q": now - timedelta(days=400),
    }
    for body in DATASETS:
        payload = dict(body)
        if payload["code"] in declared:
            payload["last_updated_at"] = declared[payload["code"]].isoformat()
        else:
            payload["last_updated_at"] = (now - timedelta(days=1)).isoformat()
        response = await client.post("/v1/datasets", json=payload, headers=admin_headers)
        assert response.status_code == 201, (payload["code"], response.text)


# The district of the 95-item economic indicators sheet: the demo's bureaus.
DISTRICT = [(d.code, d.name) for d in demo.bureaus()]


async def seed_district(client: Any) -> None:
    """The bureaus of the sheet; the platform (区城市运行管理中心) comes from renaming ours."""
    for code, name in DISTRICT:
        response = await client.post(
            "/v1/departments", json={"code": code, "name": name, "kind": "bureau"}
        )
        assert response.status_code == 201, response.text
    etag = (await client.get("/v1/departments/platform")).headers["etag"]
    renamed = await client.patch(
        "/v1/departments/platform", json={"name": "区城市运行管理中心"}, headers={"If-Match": etag}
    )
    assert renamed.status_code == 200, renamed.text
