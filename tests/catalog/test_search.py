"""Catalog search: one set of cases, the same expected answers on SQLite and on PostgreSQL.

The suite runs once per database (.ci/run), so each case here passing on both is the proof that
the two return identical results (same matches, same order, same facet counts).
"""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from support import catalog_data


@pytest.fixture
async def catalog(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await catalog_data.seed(admin_client)
    return admin_client


async def codes(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/datasets", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [d["code"] for d in response.json()["items"]]


# (id, query parameters, expected codes in order — or a set when only membership matters)
CASES: list[tuple[str, dict[str, Any], list[str] | set[str]]] = [
    # Two-character Chinese words, the examples
    ("人口", {"q": "人口"}, ["PT-RK-D"]),
    ("房屋", {"q": "房屋"}, ["PT-FW-D"]),
    ("用电", {"q": "用电"}, ["GD-YDL-M"]),
    ("地图", {"q": "地图"}, ["PT-DT"]),
    (
        "税收 ranks title matches first",
        {"q": "税收", "limit": 3},
        ["SW-FSSR-M", "SW-HYSS-M", "SW-SSSR-M"],
    ),
    # Longer words and phrases
    ("规模以上工业总产值 via an item", {"q": "规模以上工业总产值"}, ["TJ-GYQY-M"]),
    ("地区生产总值", {"q": "地区生产总值"}, ["TJ-GDP-Q"]),
    ("社会消费品零售总额", {"q": "社会消费品零售总额"}, ["SWW-XFLS-M"]),
    ("全社会用电量", {"q": "全社会用电量"}, ["GD-YDL-M"]),
    ("常住人口 in the description", {"q": "常住人口"}, ["PT-RK-D"]),
    ("two words both required", {"q": "工业 利润"}, ["TJ-GYQY-M"]),
    ("words from different fields", {"q": "增值税 发票"}, ["SW-FPKJ-D"]),
    ("no such phrase", {"q": "航空航天"}, []),
    # One character: substring fallback
    ("税 as a substring", {"q": "税", "owner": "stats"}, []),
    ("电, title before description", {"q": "电"}, ["GD-YDL-M", "PT-DT"]),
    ("房", {"q": "房"}, {"PT-FW-D", "SW-FCSS-Y"}),
    # English, codes, mixed
    ("English word", {"q": "revenue"}, ["SW-SSFX-W"]),
    ("English phrase", {"q": "tax revenue weekly"}, ["SW-SSFX-W"]),
    ("GDP in a description", {"q": "GDP"}, ["TJ-GDP-Q"]),
    ("exact dataset code", {"q": "TJ-GDP-Q"}, ["TJ-GDP-Q"]),
    ("code in lower case", {"q": "pt-rk-d"}, ["PT-RK-D"]),
    ("item code", {"q": "SW-NSRSBH"}, ["SW-QYNS-D"]),
    ("code part", {"q": "gyqy"}, ["TJ-GYQY-M"]),
    ("mixed Chinese and English", {"q": "GDP 增速"}, ["TJ-GDP-Q"]),
    ("full-width letters fold", {"q": "ＧＤＰ"}, ["TJ-GDP-Q"]),
    # Filters
    ("owner", {"owner": "stats"}, ["TJ-GDP-Q", "TJ-GYQY-M"]),
    ("category base", {"category": "base"}, ["PT-DT", "PT-FW-D", "PT-RK-D"]),
    ("base kind", {"base_kind": "population"}, ["PT-RK-D"]),
    ("share none", {"share_type": "none"}, ["SW-GRSD-Y", "SW-JCQK-M", "SW-QYNS-D"]),
    ("sensitivity L4", {"sensitivity": "L4"}, ["PT-RK-D", "SW-GRSD-Y", "SW-QYNS-D"]),
    ("grade core", {"data_grade": "core"}, ["SW-GRSD-Y"]),
    ("weekly", {"update_cycle": "weekly"}, ["PT-FW-D", "SW-SSFX-W"]),
    ("stale", {"freshness": "stale"}, ["TJ-GDP-Q"]),
    ("due", {"freshness": "due"}, ["SW-SSSR-M"]),
    ("aggregated and stats", {"aggregated": "true", "owner": "stats"}, ["TJ-GDP-Q", "TJ-GYQY-M"]),
    (
        "q with filter, item-only match last",
        {"q": "税收", "share_type": "conditional"},
        ["SW-SSSR-M", "SW-ZDQY-M", "SW-SSFX-W"],
    ),
    ("deprecated on request", {"status": "deprecated"}, ["SW-CKTS-M"]),
    ("drafts of tax, seen by the platform", {"status": "draft"}, ["SW-WFB-Q"]),
]


async def test_every_search_case_answers_as_expected(catalog: httpx.AsyncClient) -> None:
    """All cases against one seeded catalog (seeding per case would dominate the run time)."""
    wrong = []
    for name, params, expected in CASES:
        found = await codes(catalog, **params)
        matches = set(found) == expected if isinstance(expected, set) else found == expected
        if not matches:
            wrong.append(f"{name}: {params} gave {found}, expected {expected}")
    assert len(CASES) >= 30
    assert wrong == []


async def test_search_pages_through_every_result_once_in_order(catalog: httpx.AsyncClient) -> None:
    everything = await codes(catalog, q="税")
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"q": "税", "limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await catalog.get("/v1/datasets", params=params)).json()
        seen += [d["code"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    total = (await catalog.get("/v1/datasets", params={"q": "税"})).json()["total"]
    assert seen == everything
    assert len(seen) == total > 7


async def test_sort_by_update_time_pages_newest_first(catalog: httpx.AsyncClient) -> None:
    first = (await catalog.get("/v1/datasets", params={"sort": "updated", "limit": 5})).json()
    second = (
        await catalog.get(
            "/v1/datasets", params={"sort": "updated", "limit": 5, "cursor": first["next_cursor"]}
        )
    ).json()
    stamps = [d["updated_at"] for d in first["items"] + second["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert len({d["code"] for d in first["items"] + second["items"]}) == 10


async def test_facets_count_the_filtered_results(catalog: httpx.AsyncClient) -> None:
    page = (await catalog.get("/v1/datasets", params={"q": "税收"})).json()
    facets = {
        name: {f["value"]: f["count"] for f in values} for name, values in page["facets"].items()
    }
    assert page["total"] == 13
    assert facets["owner"] == {"tax": 13}
    assert facets["share_type"] == {"unconditional": 10, "conditional": 3}
    assert facets["update_cycle"] == {"monthly": 8, "annual": 4, "weekly": 1}
    assert sum(facets["freshness"].values()) == 13
    assert facets["freshness"]["due"] == 1
    everything = (await catalog.get("/v1/datasets")).json()
    by_category = {f["value"]: f["count"] for f in everything["facets"]["category"]}
    assert by_category == {"departmental": 34, "base": 3, "thematic": 1}


async def test_another_departments_drafts_stay_hidden(
    catalog: httpx.AsyncClient, client: httpx.AsyncClient, identities: Any
) -> None:
    commerce = await identities.headers(
        "commerce-requester", department="commerce", department_kind="bureau", roles=("requester",)
    )
    tax = await identities.headers(
        "tax-requester", department="tax", department_kind="bureau", roles=("requester",)
    )
    hidden = await client.get("/v1/datasets", params={"status": "draft"}, headers=commerce)
    assert hidden.json()["items"] == []
    own = await client.get("/v1/datasets", params={"status": "draft"}, headers=tax)
    assert [d["code"] for d in own.json()["items"]] == ["SW-WFB-Q"]
    assert (await client.get("/v1/datasets/SW-WFB-Q", headers=commerce)).status_code == 404
    assert (await client.get("/v1/datasets/SW-WFB-Q", headers=tax)).status_code == 200


async def test_item_search_names_the_dataset_and_department(catalog: httpx.AsyncClient) -> None:
    response = await catalog.get("/v1/items", params={"q": "用电"})
    hits = response.json()["items"]
    assert [h["code"] for h in hits] == ["GD-GYYDL", "GD-QSHYDL"]
    assert {h["owner_department_code"] for h in hits} == {"power"}
    assert hits[0]["dataset_code"] == "GD-YDL-M"
    assert hits[0]["owner_department_name"] == "国网某区供电公司"
    assert hits[0]["update_cycle"] == "monthly"
    exact = (await catalog.get("/v1/items", params={"q": "TJ-GYZCZ"})).json()["items"]
    assert exact[0]["name"] == "规模以上工业总产值"
    assert exact[0]["publication_lag_days"] == 20
    none = (await catalog.get("/v1/items", params={"q": "考核"})).json()["items"]
    assert none == [], "items of drafts are not found"


FACET_FIELDS = {
    "owner": "owner_department_code",
    "category": "category",
    "base_kind": "base_kind",
    "share_type": "share_type",
    "sensitivity": "sensitivity",
    "data_grade": "data_grade",
    "update_cycle": "update_cycle",
    "freshness": "freshness",
    "aggregated": "aggregated",
}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "税"},
        {"q": "税收", "share_type": "conditional"},
        {"owner": "tax", "freshness": "fresh"},
        {"status": "draft"},
    ],
)
async def test_total_and_facets_count_exactly_the_datasets_found(
    catalog: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    """Facets and total come from one aggregate; they must agree with the results themselves."""
    page = (await catalog.get("/v1/datasets", params={"limit": 200, **params})).json()
    found = page["items"]
    assert page["next_cursor"] is None
    assert page["total"] == len(found)
    for facet, field in FACET_FIELDS.items():
        expected: dict[str, int] = {}
        for dataset in found:
            value = dataset[field]
            if value is None:
                continue
            key = str(value).lower() if isinstance(value, bool) else str(value)
            expected[key] = expected.get(key, 0) + 1
        ordered = sorted(expected.items(), key=lambda pair: (-pair[1], pair[0]))
        assert [(f["value"], f["count"]) for f in page["facets"][facet]] == ordered, facet


async def test_a_search_reads_the_catalog_in_two_statements(
    catalog: httpx.AsyncClient, app: FastAPI
) -> None:
    """The page, then the total with every facet: not one query per facet or per dataset."""
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "dataset" in statement.lower():
            statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        cases: list[dict[str, Any]] = [{}, {"q": "税收", "owner": "tax"}, {"sort": "updated"}]
        for params in cases:
            statements.clear()
            page = (await catalog.get("/v1/datasets", params=params)).json()
            assert page["items"], params
            assert len(statements) == 2, (params, statements)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
