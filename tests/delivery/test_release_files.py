"""Release files as district offices make them (issue 16): a workbook with a title row and Excel
date cells, dates typed the Chinese way, legacy .xls, tab-separated and UTF-16 text. Each is read
by the shared tabular reader and validated through the HTTP API; none of them answers 500."""

import codecs
import csv
import io
import zipfile
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

import httpx
import polars as pl
import pytest
import xlwt  # type: ignore[import-untyped]
from fastapi import FastAPI
from openpyxl import Workbook

from broker.demo.samples import last_month
from catalog.datasets.freshness import SHANGHAI
from core.time import utcnow
from support.delivery_data import COLUMNS, NAMES, POPULATION, people
from support.identities import Identities
from support.sharing import Sharing

CODE = POPULATION["code"]
_START, _END = last_month(utcnow().astimezone(SHANGHAI).date())
PERIOD = {"period_start": _START.isoformat(), "period_end": _END.isoformat()}
PROBLEM = "application/problem+json"
BORN = [date(1990, 1, 1), date(1985, 6, 30), date(2001, 12, 9)]


@pytest.fixture
async def office(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Sharing:
    """The police's population register, declared and not yet delivered; DRC's requester."""
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    created = await client.post("/v1/datasets", json=POPULATION, headers=steward)
    assert created.status_code == 201, created.text
    return Sharing(app, client, identities, steward, requester)


async def upload(office: Sharing, data: bytes, filename: str) -> httpx.Response:
    return await office.client.post(
        f"/v1/datasets/{CODE}/releases",
        files={"file": (filename, data, "application/octet-stream")},
        data=PERIOD,
        headers=office.steward,
    )


async def delivered(office: Sharing) -> pl.DataFrame:
    """What Development and Reform's grant downloads, as Parquet."""
    await office.scenario()
    grant = await office.grant()
    response = await office.client.get(
        f"/v1/grants/{grant['id']}/data", params={"format": "parquet"}, headers=office.requester
    )
    assert response.status_code == 200, response.text
    return pl.read_parquet(io.BytesIO(response.content))


def typed_rows() -> list[list[Any]]:
    """Three people as a spreadsheet holds them: ages as numbers, registration dates as dates."""
    rows = []
    for person, born in zip(people(3), BORN, strict=True):
        cells: list[Any] = [person[code] for code in COLUMNS]
        cells[COLUMNS.index("RK-NL")] = int(person["RK-NL"])
        cells[COLUMNS.index("RK-DJRQ")] = born
        rows.append(cells)
    return rows


def office_xlsx(rows: list[list[Any]]) -> bytes:
    """The register as an office saves it: a merged title, a 填报 row and a blank row above
    headers that carry `*` markers and line breaks, date cells, and a note below the data."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "人口"
    sheet.append(["实有人口基本信息登记表"])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMNS))
    sheet.append(["填报单位：城关派出所", None, None, None, "填报日期：2026年11月3日"])
    sheet.append([])
    sheet.append(
        [f"*{NAMES[code]}" if n < 2 else f"{NAMES[code]}\n" for n, code in enumerate(COLUMNS)]
    )
    for cells in rows:
        sheet.append(cells)
        sheet.cell(row=sheet.max_row, column=len(COLUMNS)).number_format = "yyyy/m/d"
    sheet.append([])
    sheet.append(["注：带*的为必填项。"])
    sheet.append(["填表人：张三"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def text_table(rows: list[list[Any]], *, separator: str = ",", title: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    if title:
        writer.writerow(["实有人口基本信息登记表"])
    writer.writerow([NAMES[code] for code in COLUMNS])
    writer.writerows(rows)
    return buffer.getvalue()


def text_rows() -> list[list[Any]]:
    return [
        [born.isoformat() if isinstance(born, date) else born for born in row]
        for row in typed_rows()
    ]


def legacy_xls(rows: list[list[Any]]) -> bytes:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("人口")
    sheet.write_merge(0, 0, 0, len(COLUMNS) - 1, "实有人口基本信息登记表")
    dated = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for column, code in enumerate(COLUMNS):
        sheet.write(1, column, NAMES[code])
    for number, cells in enumerate(rows, start=2):
        for column, value in enumerate(cells):
            if isinstance(value, date):
                sheet.write(number, column, value, dated)
            else:
                sheet.write(number, column, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def open_document(rows: list[list[Any]]) -> bytes:
    """An .ods as LibreOffice writes one, reduced to what a reader needs: typed cells in
    content.xml."""

    def cell(value: Any) -> str:
        if isinstance(value, date):
            return (
                f'<table:table-cell office:value-type="date" office:date-value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        if isinstance(value, int):
            return (
                f'<table:table-cell office:value-type="float" office:value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        return (
            '<table:table-cell office:value-type="string">'
            f"<text:p>{escape(str(value))}</text:p></table:table-cell>"
        )

    header = [NAMES[code] for code in COLUMNS]
    body = "".join(
        "<table:table-row>" + "".join(cell(v) for v in cells) + "</table:table-row>"
        for cells in [["实有人口基本信息登记表"], header, *rows]
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content office:version="1.2"'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        '<office:body><office:spreadsheet><table:table table:name="人口">'
        f"{body}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest manifest:version="1.2"'
        ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return buffer.getvalue()


async def test_an_xlsx_with_a_title_row_and_excel_date_cells_delivers_its_dates_as_dates(
    office: Sharing,
) -> None:
    response = await upload(office, office_xlsx(typed_rows()), "人口.xlsx")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "accepted"
    assert response.json()["row_count"] == 3
    frame = await delivered(office)
    assert frame.schema["RK-DJRQ"] == pl.Date
    assert frame.get_column("RK-DJRQ").to_list() == BORN
    assert frame.get_column("RK-NL").to_list() == [int(p["RK-NL"]) for p in people(3)]


async def test_a_date_cell_with_a_time_of_day_is_refused_for_a_date_item_naming_its_row(
    office: Sharing,
) -> None:
    rows = typed_rows()
    rows[1][COLUMNS.index("RK-DJRQ")] = datetime(1985, 6, 30, 14, 30)
    response = await upload(office, office_xlsx(rows), "人口.xlsx")
    assert response.status_code == 422, response.text
    checks = response.json()["report"]["checks"]
    assert [(c["column"], c["check"]) for c in checks] == [("RK-DJRQ", "data_type")]
    assert checks[0]["examples"] == [{"row": 2, "value": "1985-06-30 14:30:00"}]


async def test_dates_and_numbers_typed_the_chinese_way_are_read_as_dates_and_numbers(
    office: Sharing,
) -> None:
    typed = ["1990年1月1日", "1985/06/30", "２００１．１２．９"]
    rows = text_rows()
    for cells, written in zip(rows, typed, strict=True):
        cells[COLUMNS.index("RK-DJRQ")] = written
    rows[0][COLUMNS.index("RK-NL")] = "２１"
    rows[2][COLUMNS.index("RK-DJRQ")] = "2001-12-09 00:00:00"
    rows.append([*text_rows()[0][:-1], "２００１．１２．９"])
    rows[3][0] = "310101195001010004"
    response = await upload(office, text_table(rows).encode("utf-8-sig"), "人口.csv")
    assert response.status_code == 201, response.text
    frame = await delivered(office)
    assert frame.get_column("RK-DJRQ").to_list() == [*BORN, date(2001, 12, 9)]
    assert frame.get_column("RK-NL").to_list()[0] == 21


async def test_a_csv_with_a_title_row_above_its_header_is_accepted(office: Sharing) -> None:
    response = await upload(office, text_table(text_rows(), title=True).encode(), "人口.csv")
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == 3


@pytest.mark.parametrize(
    ("filename", "encode"),
    [
        ("人口.xls", lambda: legacy_xls(typed_rows())),
        ("人口.ods", lambda: open_document(typed_rows())),
        ("人口.tsv", lambda: text_table(text_rows(), separator="\t").encode()),
        (
            # Excel's "Unicode 文本": UTF-16 LE with its BOM, tab separated, named .txt
            "人口.txt",
            lambda: (
                codecs.BOM_UTF16_LE + text_table(text_rows(), separator="\t").encode("utf-16-le")
            ),
        ),
        ("人口.csv", lambda: text_table(text_rows(), separator=";").encode("gbk")),
    ],
    ids=["xls", "ods", "tsv", "utf16-text", "gbk-semicolon"],
)
async def test_workbooks_and_text_files_as_offices_save_them_are_accepted(
    office: Sharing, filename: str, encode: Any
) -> None:
    response = await upload(office, encode(), filename)
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == 3
    frame = await delivered(office)
    assert frame.get_column("RK-DJRQ").to_list() == BORN


def _workbook(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for cells in rows:
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


ODD_FILES = {
    "a workbook with no rows": ("人口.xlsx", _workbook([])),
    "text named .xls": ("人口.xls", "公民身份号码,姓名\n1,2\n".encode()),
    "a web page named .xls": ("人口.xls", b"<html><table><tr><td>1</td></tr></table>"),
    "junk named .ods": ("人口.ods", b"PK\x03\x04 not really a zip"),
    "a header and no rows": ("人口.csv", text_table([]).encode()),
    "only a title row": ("人口.csv", "实有人口基本信息登记表\n".encode()),
    "a header of strangers": ("人口.csv", b"a,b,c\n1,2,3\n"),
    "a ragged row": ("人口.csv", text_table(text_rows()).encode() + b"1,2,3,4,5,6,7,8,9,10\n"),
    "a repeated header": ("人口.xlsx", _workbook([[NAMES["RK-SFZH"], *NAMES.values()], ["1"]])),
    "utf-16 cut in half": (
        "人口.txt",
        codecs.BOM_UTF16_LE + "公民身份号码".encode("utf-16-le")[:-1],
    ),
}


@pytest.mark.parametrize("name", list(ODD_FILES))
async def test_odd_release_files_are_refused_with_a_problem_never_a_500(
    office: Sharing, name: str
) -> None:
    filename, data = ODD_FILES[name]
    response = await upload(office, data, filename)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"]


async def test_tab_separated_text_named_xls_as_systems_export_it_is_accepted(
    office: Sharing,
) -> None:
    data = text_table(text_rows(), separator="\t").encode("gbk")
    response = await upload(office, data, "人口.xls")
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == 3
