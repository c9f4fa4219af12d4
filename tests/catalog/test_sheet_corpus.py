"""Every sheet of the corpus (tests/catalog/sheet_corpus.py) through POST /v1/catalog/import.

Each one, dry run then real: imports what it describes, saying in warnings what it read past or
read generously, or is refused naming the row as the sheet shows it and the fix. Never a 500.
What each imported sheet must have stored is checked against the catalog afterwards.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sheet_corpus import Case, build

from support import catalog_data

CASES = build()
PROBLEM = "application/problem+json"


@pytest.fixture
async def district(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await catalog_data.seed_district(admin_client)
    return admin_client


async def upload(client: httpx.AsyncClient, case: Case, *, dry_run: bool) -> httpx.Response:
    return await client.post(
        "/v1/catalog/import",
        params={"dry_run": str(dry_run).lower()},
        files={"file": (case.filename, case.data, "application/octet-stream")},
    )


async def dataset(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/v1/datasets/{code}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------- what each sheet stored


async def guide_headers(client: httpx.AsyncClient) -> None:
    gdp = await dataset(client, "TJ-GDP-Q")
    assert (gdp["owner_department_code"], gdp["category"]) == ("stats", "departmental")
    assert (gdp["share_type"], gdp["share_condition"]) == ("conditional", "用于经济运行分析")
    assert gdp["share_methods"] == ["api", "file"]
    assert gdp["update_cycle"] == "quarterly"
    assert [(i["code"], i["data_type"]) for i in gdp["items"]] == [
        ("TJ-GDP-Q-01", "decimal"),
        ("TJ-GDP-Q-02", "decimal"),
        ("TJ-GDP-Q-03", "string"),
    ]


async def guide_two_header_rows(client: httpx.AsyncClient) -> None:
    power = await dataset(client, "FG-GYYD-M")
    assert power["owner_department_code"] == "drc"
    assert [i["name"] for i in power["items"]] == ["工业用电量", "全社会用电量"]
    assert power["update_cycle"] == "monthly"


async def national_code(client: httpx.AsyncClient) -> None:
    stored = await dataset(client, "330106-0001")
    assert stored["class_code"] == "330106"
    assert len(stored["items"]) == 3


async def per_item_sensitivity(client: httpx.AsyncClient) -> None:
    stored = await dataset(client, "TJ-RKJG-Y")
    assert stored["sensitivity"] == "L1", "the dataset's level is its lowest item's"
    assert [i["effective_sensitivity"] for i in stored["items"]] == ["L1", "L3", "L2"]


async def everyday_words(client: httpx.AsyncClient) -> None:
    cycles = {
        "TJ-W-M": ("monthly", "decimal"),
        "TJ-W-Q": ("quarterly", "string"),
        "TJ-W-Y": ("annual", "integer"),
        "TJ-W-H": ("semiannual", "date"),
        "TJ-W-S": ("dekad", "string"),
    }
    for code, (cycle, kind) in cycles.items():
        stored = await dataset(client, code)
        assert (stored["update_cycle"], stored["items"][0]["data_type"]) == (cycle, kind), code


async def merged_dataset_cells(client: httpx.AsyncClient) -> None:
    for code in ("TJ-HB-M", "TJ-HB-Q"):
        assert len((await dataset(client, code))["items"]) == 3, code


async def short_department_names(client: httpx.AsyncClient) -> None:
    owners = {}
    for code in ("TJ-JC-M", "FG-JC-M", "HR-JC-M"):
        owners[code] = (await dataset(client, code))["owner_department_code"]
    assert owners == {"TJ-JC-M": "stats", "FG-JC-M": "drc", "HR-JC-M": "hrss"}


async def legacy_xls(client: httpx.AsyncClient) -> None:
    assert (await dataset(client, "TJ-XLS-M"))["temporal_start"] == "2015-01-01"


async def excel_dates(client: httpx.AsyncClient) -> None:
    spans = []
    for n in range(3):
        stored = await dataset(client, f"TJ-RQ{n}-Y")
        spans.append((stored["temporal_start"], stored["temporal_end"]))
    assert spans == [
        ("2020-01-01", "2024-12-31"),
        ("2021-01-01", "2023-12-31"),
        ("2021-01-01", "2022-06-30"),
    ]


async def full_width(client: httpx.AsyncClient) -> None:
    stored = await dataset(client, "TJ-QJ-M")
    assert (stored["owner_department_code"], stored["sensitivity"]) == ("stats", "L2")
    assert stored["update_cycle"] == "monthly"
    assert [i["code"] for i in stored["items"]] == ["TJ-QJ-1", "TJ-QJ-2"]


async def excel_booleans(client: httpx.AsyncClient) -> None:
    stored = await dataset(client, "TJ-BOOL-M")
    assert stored["aggregated"] is True
    assert [(i["is_key"], i["nullable"]) for i in stored["items"]] == [
        (True, False),
        (False, False),
        (False, True),
    ]


STORED: dict[str, Callable[[httpx.AsyncClient], Awaitable[None]]] = {
    "guide_headers": guide_headers,
    "guide_two_header_rows": guide_two_header_rows,
    "national_code": national_code,
    "per_item_sensitivity": per_item_sensitivity,
    "everyday_words": everyday_words,
    "merged_dataset_cells": merged_dataset_cells,
    "merged_cells_saved_as_csv": merged_dataset_cells,
    "short_department_names": short_department_names,
    "legacy_xls": legacy_xls,
    "excel_dates": excel_dates,
    "full_width": full_width,
    "excel_booleans": excel_booleans,
}


# ---------------------------------------------------------------- the corpus


def test_the_corpus_covers_the_ways_offices_build_sheets() -> None:
    assert len(CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)
    suffixes = {c.filename.rsplit(".", 1)[-1] for c in CASES}
    assert {"xlsx", "xls", "csv", "txt"} <= suffixes
    assert any(c.refused_at for c in CASES)
    assert any(c.created for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_sheet_as_offices_make_it_imports_or_names_row_and_fix(
    district: httpx.AsyncClient, case: Case
) -> None:
    dry = await upload(district, case, dry_run=True)
    assert dry.status_code in (200, 422), f"{case.habit}: {dry.status_code} {dry.text}"
    if case.refused_at is not None:
        for response in (dry, await upload(district, case, dry_run=False)):
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == PROBLEM
            errors = response.json()["errors"]
            assert any(
                e["location"] == case.refused_at and case.refused_with in e["message"]
                for e in errors
            ), errors
        assert (await district.get("/v1/datasets")).json()["total"] == 0
        return

    assert dry.status_code == 200, f"{case.habit}: {dry.text}"
    assert dry.json()["created"] == list(case.created)
    warnings = " | ".join(f"{w['location']}: {w['message']}" for w in dry.json()["warnings"])
    for fragment in case.warnings:
        assert fragment in warnings, (fragment, warnings)
    assert (await district.get("/v1/datasets")).json()["total"] == 0, "a dry run writes nothing"

    real = await upload(district, case, dry_run=False)
    assert real.status_code == 200, real.text
    assert real.json()["created"] == list(case.created)
    assert real.json()["warnings"] == dry.json()["warnings"]
    if case.name in STORED:
        await STORED[case.name](district)

    again = await upload(district, case, dry_run=True)
    assert again.json()["unchanged"] == list(case.created), "importing twice changes nothing"


async def test_the_corpus_sent_as_releases_is_answered_without_a_500(
    district: httpx.AsyncClient,
) -> None:
    """The same files uploaded where data goes, by mistake: refused or kept as rejected, never
    a server error."""
    english = next(c for c in CASES if c.name == "english_headers")
    assert (await upload(district, english, dry_run=False)).status_code == 200
    for month, case in enumerate(CASES, start=1):
        year, month_of_year = 2020 + (month - 1) // 12, (month - 1) % 12 + 1
        response = await district.post(
            "/v1/datasets/TJ-EN-M/releases",
            files={"file": (case.filename, case.data, "application/octet-stream")},
            data={
                "period_start": f"{year}-{month_of_year:02d}-01",
                "period_end": f"{year}-{month_of_year:02d}-28",
            },
        )
        assert response.status_code < 500, (case.name, response.text)
