"""The boards the meetings read open in a spreadsheet (issue 16): CSV with a byte order mark, so
Excel on Chinese Windows shows the department names, none when a machine asks `bom=false`, and
the readiness board as an XLSX workbook. The catalog export has carried the mark all along."""

import codecs
import csv
import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from support import catalog_data
from support.identities import Identities
from support.workflow import District, bundle, district

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAMES = dict(catalog_data.DISTRICT)


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


async def submitted(d: District) -> dict[str, Any]:
    """Development and Reform's request for a tax and a statistics item, waiting for tax."""
    draft = await bundle(d, ["SW-SSSR", "TJ-GDP"])
    sent = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    assert sent.status_code == 200, sent.text
    request: dict[str, Any] = sent.json()
    return request


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


async def get(d: District, who: str, path: str, **params: str) -> httpx.Response:
    response = await d.as_(who, "GET", path, params=params)
    assert response.status_code == 200, response.text
    return response


async def test_the_readiness_csv_starts_with_a_bom_and_names_departments_in_chinese(
    d: District,
) -> None:
    request = await submitted(d)
    boards = {
        "readiness-econ.csv": await get(
            d, "drc-requester", "/v1/scenarios/econ/readiness", format="csv"
        ),
        f"readiness-{request['id']}.csv": await get(
            d, "drc-requester", f"/v1/requests/{request['id']}/readiness", format="csv"
        ),
    }
    for filename, board in boards.items():
        assert board.content.startswith(codecs.BOM_UTF8), filename
        assert board.headers["content-type"] == "text/csv; charset=utf-8"
        assert board.headers["content-disposition"] == f'attachment; filename="{filename}"'
        header, *rows = csv_rows(board.content[3:])
        assert header[:2] == ["department_code", "department_name"]
        named = {row[0]: row[1] for row in rows}
        assert named == {"stats": NAMES["stats"], "tax": NAMES["tax"], "TOTAL": "ready 1/2"}
        assert "税务" in NAMES["tax"], "the names the mojibake used to hide"


async def test_bom_false_gives_the_boards_and_the_agenda_without_the_mark(d: District) -> None:
    request = await submitted(d)
    paths = [
        ("drc-requester", "/v1/scenarios/econ/readiness"),
        ("drc-requester", f"/v1/requests/{request['id']}/readiness"),
        ("leader", "/v1/coordination/agenda"),
    ]
    for who, path in paths:
        for_people = await get(d, who, path, format="csv")
        for_machines = await get(d, who, path, format="csv", bom="false")
        assert for_people.content.startswith(codecs.BOM_UTF8), path
        assert for_machines.content.startswith(b"department_code,"), path
        assert for_people.content == codecs.BOM_UTF8 + for_machines.content, path

    agenda = await get(d, "leader", "/v1/coordination/agenda", format="csv")
    header, *rows = csv_rows(agenda.content.removeprefix(codecs.BOM_UTF8))
    assert [row[header.index("department_name")] for row in rows] == [NAMES["tax"]]
    assert agenda.headers["content-disposition"].startswith('attachment; filename="agenda-')


async def test_the_readiness_board_in_xlsx_holds_the_csv_rows_with_numbers_as_numbers(
    d: District,
) -> None:
    request = await submitted(d)
    for path in ("/v1/scenarios/econ/readiness", f"/v1/requests/{request['id']}/readiness"):
        as_csv = await get(d, "drc-requester", path, format="csv")
        workbook = await get(d, "drc-requester", path, format="xlsx")

        assert workbook.headers["content-type"] == XLSX_TYPE
        assert workbook.headers["content-disposition"].endswith('.xlsx"')
        sheet = load_workbook(io.BytesIO(workbook.content)).worksheets[0]
        cells = [list(row) for row in sheet.iter_rows(values_only=True)]
        as_text = [["" if v is None else str(v) for v in row] for row in cells]
        assert as_text == csv_rows(as_csv.content.removeprefix(codecs.BOM_UTF8))
        header, *rows = cells
        total = dict(zip(header, rows[-1], strict=True))
        assert (total["department_code"], total["requested"], total["pending"]) == ("TOTAL", 2, 1)
        assert {row[1] for row in rows[:-1]} == {NAMES["stats"], NAMES["tax"]}


async def test_the_catalog_export_csv_starts_with_a_bom_and_reads_as_chinese(d: District) -> None:
    exported = await get(d, "drc-requester", "/v1/catalog/export", format="csv")
    for_machines = await get(d, "drc-requester", "/v1/catalog/export", format="csv", bom="false")

    assert exported.content.startswith(codecs.BOM_UTF8)
    assert exported.content == codecs.BOM_UTF8 + for_machines.content
    header, *rows = csv_rows(exported.content[3:])
    assert "信息项名称" in header
    names = {row[header.index("信息项编码")]: row[header.index("信息项名称")] for row in rows}
    assert names["SW-SSSR"] == "税收收入"
