from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from support.audit_helpers import events
from support.identities import Identities

PROBLEM = "application/problem+json"


def dataset(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "SW-SSSR-M",
        "title": "税收收入月报",
        "owner_department_code": "tax",
        "category": "departmental",
        "share_type": "unconditional",
        "update_cycle": "monthly",
        "publication_lag_days": 15,
        "sensitivity": "L2",
        "items": [{"code": "SW-SSSR", "name": "税收收入", "data_type": "decimal", "unit": "亿元"}],
    }
    body.update(overrides)
    return body


@pytest.fixture
async def tax_steward(admin_client: httpx.AsyncClient, identities: Identities) -> dict[str, str]:
    for code, name in (("tax", "区税务局"), ("commerce", "区商务委")):
        await admin_client.post(
            "/v1/departments", json={"code": code, "name": name, "kind": "bureau"}
        )
    return await identities.headers(
        "tax-steward", department="tax", department_kind="bureau", roles=("steward",)
    )


async def test_steward_registers_and_updates_own_dataset_with_audit_trail(
    app: FastAPI, client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    created = await client.post(
        "/v1/datasets", json=dataset(owner_department_code=None), headers=tax_steward
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["owner_department_code"] == "tax"
    assert body["items"][0]["effective_sensitivity"] == "L2"
    assert body["freshness"] == "stale", "never updated counts as stale"

    etag = created.headers["etag"]
    declared = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    updated = await client.patch(
        "/v1/datasets/SW-SSSR-M",
        json={"title": "税收收入月度统计", "last_updated_at": declared},
        headers={**tax_steward, "If-Match": etag},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["freshness"] == "fresh"
    assert updated.json()["version"] == 2

    recorded = [e for e in await events(app) if e.object_type == "dataset"]
    assert [e.action for e in recorded] == ["dataset.created", "dataset.updated"]
    change = recorded[1].details
    assert change["before"]["title"] == "税收收入月报"
    assert change["after"]["title"] == "税收收入月度统计"
    assert "items" not in change["after"], "only changed fields are kept"


async def test_update_without_if_match_is_428_and_stale_is_412(
    client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    created = await client.post("/v1/datasets", json=dataset(), headers=tax_steward)
    missing = await client.patch("/v1/datasets/SW-SSSR-M", json={"title": "x"}, headers=tax_steward)
    assert missing.status_code == 428
    assert missing.headers["content-type"] == PROBLEM
    first = await client.patch(
        "/v1/datasets/SW-SSSR-M",
        json={"title": "第一次"},
        headers={**tax_steward, "If-Match": created.headers["etag"]},
    )
    assert first.status_code == 200
    stale = await client.patch(
        "/v1/datasets/SW-SSSR-M",
        json={"title": "第二次"},
        headers={**tax_steward, "If-Match": created.headers["etag"]},
    )
    assert stale.status_code == 412
    assert (await client.get("/v1/datasets/SW-SSSR-M", headers=tax_steward)).json()[
        "title"
    ] == "第一次"


async def test_steward_cannot_register_or_edit_another_departments_dataset(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    foreign = await client.post(
        "/v1/datasets", json=dataset(owner_department_code="commerce"), headers=tax_steward
    )
    assert foreign.status_code == 403
    theirs = await admin_client.post(
        "/v1/datasets",
        json=dataset(code="SWW-XF", owner_department_code="commerce", status="published", items=[]),
    )
    edit = await client.patch(
        "/v1/datasets/SWW-XF",
        json={"title": "改"},
        headers={**tax_steward, "If-Match": theirs.headers["etag"]},
    )
    assert edit.status_code == 403


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"share_type": "conditional"}, "body.share_condition"),
        ({"share_type": "none"}, "body.legal_basis"),
        (
            {"share_type": "none", "legal_basis": "税收征管法第八条", "open_type": "open"},
            "body.open_type",
        ),
        ({"data_grade": "core"}, "body.share_type"),
        ({"category": "base"}, "body.base_kind"),
        ({"base_kind": "map"}, "body.base_kind"),
        ({"temporal_start": "2026-01-01", "temporal_end": "2025-01-01"}, "body.temporal_end"),
        (
            {
                "sensitivity": "L3",
                "items": [{"code": "I1", "name": "x", "data_type": "string", "sensitivity": "L2"}],
            },
            "body.items.0.sensitivity",
        ),
        (
            {
                "items": [
                    {"code": "I1", "name": "a", "data_type": "string"},
                    {"code": "I1", "name": "b", "data_type": "string"},
                ]
            },
            "body.items.1.code",
        ),
    ],
)
async def test_catalog_rules_are_enforced_with_the_field_named(
    client: httpx.AsyncClient, tax_steward: dict[str, str], overrides: dict[str, Any], location: str
) -> None:
    response = await client.post("/v1/datasets", json=dataset(**overrides), headers=tax_steward)
    assert response.status_code == 422, response.text
    assert location in [e["location"] for e in response.json()["errors"]]
    assert (await client.get("/v1/datasets/SW-SSSR-M", headers=tax_steward)).status_code == 404


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"data_type": "decimal", "minimum": 10, "maximum": 1}, "greater than maximum"),
        ({"data_type": "string", "pattern": "^(?=x)y$"}, "Rust regex"),
        ({"data_type": "string", "pattern": "(a)\\1"}, "Rust regex"),
        ({"data_type": "string", "minimum": 1}, "integer or decimal"),
        ({"data_type": "integer", "pattern": "^1$"}, "only to string"),
        ({"data_type": "string", "is_key": True}, "cannot be nullable"),
        ({"data_type": "blob"}, "Input should be"),
    ],
)
async def test_contradictory_item_constraints_are_422(
    client: httpx.AsyncClient, tax_steward: dict[str, str], item: dict[str, Any], message: str
) -> None:
    body = dataset(items=[{"code": "I1", "name": "x", **item}])
    response = await client.post("/v1/datasets", json=body, headers=tax_steward)
    assert response.status_code == 422
    assert any(message in e["message"] for e in response.json()["errors"]), response.json()


async def test_a_time_without_zone_is_refused(
    client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/datasets", json=dataset(last_updated_at="2026-11-01T00:00:00"), headers=tax_steward
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "body.last_updated_at"


async def test_unknown_vocabulary_value_lists_allowed_ones(
    client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/datasets", json=dataset(update_cycle="fortnightly"), headers=tax_steward
    )
    assert response.status_code == 422
    error = next(e for e in response.json()["errors"] if e["location"] == "body.update_cycle")
    assert "monthly" in error["message"]


async def test_duplicate_dataset_and_item_codes_are_409(
    client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    await client.post("/v1/datasets", json=dataset(), headers=tax_steward)
    again = await client.post("/v1/datasets", json=dataset(), headers=tax_steward)
    assert again.status_code == 409
    stolen_item = await client.post("/v1/datasets", json=dataset(code="OTHER"), headers=tax_steward)
    assert stolen_item.status_code == 409
    assert "SW-SSSR" in stolen_item.json()["detail"]


async def test_replacing_items_keeps_matching_codes_and_drops_the_rest(
    client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    created = await client.post(
        "/v1/datasets",
        json=dataset(
            items=[
                {"code": "A", "name": "甲", "data_type": "string"},
                {"code": "B", "name": "乙", "data_type": "string"},
            ]
        ),
        headers=tax_steward,
    )
    replaced = await client.put(
        "/v1/datasets/SW-SSSR-M/items",
        json={
            "items": [
                {"code": "B", "name": "乙（改）", "data_type": "string"},
                {"code": "C", "name": "丙", "data_type": "integer", "unit": "户"},
            ]
        },
        headers={**tax_steward, "If-Match": created.headers["etag"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert [(i["code"], i["name"]) for i in replaced.json()["items"]] == [
        ("B", "乙（改）"),
        ("C", "丙"),
    ]
    assert replaced.json()["version"] == 2
    # "A" is free again and the item index follows: 丙 is found, 甲 is not.
    await client.patch(
        "/v1/datasets/SW-SSSR-M",
        json={"status": "published"},
        headers={**tax_steward, "If-Match": replaced.headers["etag"]},
    )
    found = (await client.get("/v1/items", params={"q": "丙"}, headers=tax_steward)).json()
    assert [h["code"] for h in found["items"]] == ["C"]
    gone = (await client.get("/v1/items", params={"q": "甲"}, headers=tax_steward)).json()
    assert gone["items"] == []


async def test_lowering_dataset_sensitivity_below_an_item_is_refused(
    client: httpx.AsyncClient, tax_steward: dict[str, str]
) -> None:
    created = await client.post(
        "/v1/datasets",
        json=dataset(
            sensitivity="L2",
            items=[{"code": "I1", "name": "x", "data_type": "string", "sensitivity": "L2"}],
        ),
        headers=tax_steward,
    )
    raised = await client.patch(
        "/v1/datasets/SW-SSSR-M",
        json={"sensitivity": "L3"},
        headers={**tax_steward, "If-Match": created.headers["etag"]},
    )
    assert raised.status_code == 422
    assert raised.json()["errors"][0]["location"] == "body.items.0.sensitivity"


@pytest.mark.parametrize(
    ("cycle", "lag", "age_days", "expected"),
    [
        ("monthly", 20, 10, "fresh"),
        ("monthly", 20, 55, "due"),
        ("monthly", 20, 90, "stale"),
        ("daily", 0, 0.5, "fresh"),
        ("daily", 0, 1.5, "due"),
        ("daily", 0, 3, "stale"),
        ("annual", 90, 400, "fresh"),
        ("irregular", 0, 3000, "fresh"),
    ],
)
async def test_freshness_follows_cycle_and_lag(
    client: httpx.AsyncClient,
    tax_steward: dict[str, str],
    cycle: str,
    lag: int,
    age_days: float,
    expected: str,
) -> None:
    declared = (datetime.now(UTC) - timedelta(days=age_days)).isoformat()
    created = await client.post(
        "/v1/datasets",
        json=dataset(update_cycle=cycle, publication_lag_days=lag, last_updated_at=declared),
        headers=tax_steward,
    )
    assert created.json()["freshness"] == expected
