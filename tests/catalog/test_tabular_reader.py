"""The one reader of tabular uploads (catalog.tabular), on files built the ways offices build them:
title and 填报 rows above the header, merged cells, an instructions sheet first, notes below the
data, legacy .xls, .ods, and text in every encoding and separator Excel and WPS write."""

import codecs
import io
import zipfile
from datetime import date, datetime

import pytest
import xlwt  # type: ignore[import-untyped]
from openpyxl import Workbook

from catalog.tabular import (
    Table,
    cell_text,
    is_footer_note,
    normalize_header,
    read_table,
    sniff_text,
)
from core.errors import InvalidInput

KNOWN = {"资源代码", "资源名称", "信息项名称", "数据类型", "更新日期"}


def is_header(cells: list[str]) -> bool:
    return sum(cell in KNOWN for cell in cells) >= 2


def xlsx(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def office_workbook() -> bytes:
    """An instructions sheet first, then the 目录 sheet as a district fills it in."""
    book = Workbook()
    guide = book.active
    assert guide is not None
    guide.title = "填表说明"
    guide.append(["1. 资源代码按《编制指南》填写"])
    guide.append(["2. 带*为必填"])
    sheet = book.create_sheet("目录")
    sheet.append(["城关区政务信息资源目录"])  # row 1, merged across
    sheet.merge_cells("A1:E1")
    sheet.append(["填报单位：区统计局", None, None, "填报日期：2026年11月3日"])  # row 2
    sheet.append([])  # row 3
    sheet.append(["*资源代码", "*资源\n名称", "信息项名称", "数据类型", "更新日期", None, None])
    sheet.append(["TJ-001", "人口统计", "常住人口", "数字", date(2026, 10, 31)])  # row 5
    sheet.append([None, None, "户籍人口", 3.0, datetime(2026, 10, 31, 0, 0)])  # row 6
    sheet.append([None, None, "出生人口", True, datetime(2026, 10, 31, 8, 30)])  # row 7
    sheet.merge_cells("A5:A7")
    sheet.merge_cells("B5:B7")
    sheet.append([])  # row 8
    sheet.append(["TJ-002", "注册企业", "注册地址", "文本", None])  # row 9
    sheet.append([])  # row 10
    sheet.append(["注：1. 带*的列为必填。"])  # row 11
    sheet.append(["2. 数据类型填 字符/数值/日期。"])  # row 12
    sheet.append(["填表人：张三", None, "联系电话：12345"])  # row 13
    return xlsx(book)


def test_a_workbook_is_read_from_its_header_below_title_and_filing_rows() -> None:
    table = read_table(office_workbook(), is_header=is_header, filename="目录.xlsx")
    assert table.sheet_name == "目录"
    assert table.header_found
    assert table.header_row == 4
    assert table.header == ["*资源代码", "*资源\n名称", "信息项名称", "数据类型", "更新日期"]
    assert [normalize_header(h) for h in table.header[:2]] == ["资源代码", "资源名称"]
    assert [row.number for row in table.rows] == [5, 6, 7, 9]
    assert table.skipped == [
        "row 1: above the header, skipped",
        "row 2: above the header, skipped",
        "row 11: footer note skipped",
        "row 12: footer note skipped",
        "row 13: footer note skipped",
    ]


def test_vertically_merged_cells_hold_their_value_on_every_row() -> None:
    table = read_table(office_workbook(), is_header=is_header)
    assert [row.cells[:3] for row in table.rows[:3]] == [
        ["TJ-001", "人口统计", "常住人口"],
        ["TJ-001", "人口统计", "户籍人口"],
        ["TJ-001", "人口统计", "出生人口"],
    ]
    assert table.rows[3].cells[:2] == ["TJ-002", "注册企业"]


def test_workbook_cells_keep_their_types_and_read_as_a_person_reads_them() -> None:
    table = read_table(office_workbook(), is_header=is_header)
    assert [row.cells[3:] for row in table.rows[:3]] == [
        ["数字", date(2026, 10, 31)],
        [3, date(2026, 10, 31)],
        [True, datetime(2026, 10, 31, 8, 30)],
    ]
    assert [row.texts()[3:] for row in table.rows] == [
        ["数字", "2026-10-31"],
        ["3", "2026-10-31"],
        ["是", "2026-10-31 08:30:00"],
        ["文本", ""],
    ]


def test_a_named_sheet_is_read_even_without_a_known_header() -> None:
    table = read_table(office_workbook(), is_header=is_header, sheet="填表说明")
    assert table.sheet_name == "填表说明"
    assert not table.header_found
    assert table.header == ["1. 资源代码按《编制指南》填写"]
    assert [row.number for row in table.rows] == [2]


def test_a_sheet_that_does_not_exist_is_refused_naming_the_sheets_there_are() -> None:
    with pytest.raises(InvalidInput) as refused:
        read_table(office_workbook(), is_header=is_header, sheet="Sheet1")
    assert "Sheet1" in refused.value.detail
    assert "'填表说明', '目录'" in refused.value.errors[0].message


def test_without_a_known_header_the_first_sheets_first_row_is_the_header() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([])
    sheet.append(["代码", "名称"])
    sheet.append(["A", "甲"])
    table = read_table(xlsx(book), is_header=is_header)
    assert not table.header_found
    assert (table.header_row, table.header) == (2, ["代码", "名称"])
    assert [(row.number, row.cells) for row in table.rows] == [(3, ["A", "甲"])]


def test_a_value_beyond_the_last_header_keeps_its_column() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["资源代码", "资源名称"])
    sheet.append(["A", "甲", None, "多出"])
    table = read_table(xlsx(book), is_header=is_header)
    assert table.header == ["资源代码", "资源名称", "", ""]
    assert table.rows[0].cells == ["A", "甲", None, "多出"]


def test_a_legacy_xls_is_read_with_merged_cells_dates_and_its_row_numbers() -> None:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("目录")
    sheet.write_merge(0, 0, 0, 3, "城关区政务信息资源目录")
    for column, text in enumerate(["资源代码", "资源名称", "信息项名称", "更新日期"]):
        sheet.write(2, column, text)
    sheet.write_merge(3, 4, 0, 0, "TJ-001")
    sheet.write_merge(3, 4, 1, 1, "人口统计")
    dated = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for row, (item, day) in enumerate([("常住人口", 30), ("户籍人口", 31)], start=3):
        sheet.write(row, 2, item)
        sheet.write(row, 3, date(2026, 10, day), dated)
    buffer = io.BytesIO()
    book.save(buffer)
    table = read_table(buffer.getvalue(), is_header=is_header, filename="目录.xls")
    assert table.header_row == 3
    assert [(row.number, row.cells) for row in table.rows] == [
        (4, ["TJ-001", "人口统计", "常住人口", date(2026, 10, 30)]),
        (5, ["TJ-001", "人口统计", "户籍人口", date(2026, 10, 31)]),
    ]


MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<manifest:manifest manifest:version="1.2"'
    ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
    '<manifest:file-entry manifest:full-path="/"'
    ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)


def open_document(rows: list[list[str | float | date | None]]) -> bytes:
    def cell(value: str | float | date | None) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, date):
            return (
                f'<table:table-cell office:value-type="date" office:date-value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        if isinstance(value, float):
            return f'<table:table-cell office:value-type="float" office:value="{value}"/>'
        return (
            '<table:table-cell office:value-type="string">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )

    body = "".join(
        "<table:table-row>" + "".join(cell(v) for v in cells) + "</table:table-row>"
        for cells in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content office:version="1.2"'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        '<office:body><office:spreadsheet><table:table table:name="目录">'
        f"{body}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", MANIFEST)
        archive.writestr("content.xml", content)
    return buffer.getvalue()


def test_an_open_document_sheet_is_read_with_typed_cells() -> None:
    data = open_document(
        [
            ["城关区政务信息资源目录"],
            [None],
            ["资源代码", "资源名称", "更新日期", "数量"],
            ["TJ-001", "人口统计", date(2026, 10, 31), 12.0],
        ]
    )
    table = read_table(data, is_header=is_header, filename="目录.ods")
    assert table.header_row == 3
    assert [(row.number, row.cells) for row in table.rows] == [
        (4, ["TJ-001", "人口统计", date(2026, 10, 31), 12.0])
    ]


TEXT = (
    "城关区政务信息资源目录\n\n"
    "资源代码{s}资源名称{s}信息项名称\n"
    "TJ-001{s}人口统计{s}常住人口\n\n"
    "TJ-002{s}企业{s}注册地址\n"
)


@pytest.mark.parametrize(
    ("data", "separator"),
    [
        (TEXT.format(s=",").encode("utf-8-sig"), ","),  # Excel's "CSV UTF-8"
        (TEXT.format(s=",").encode("utf-8"), ","),
        (TEXT.format(s=",").encode("gbk"), ","),  # Excel's "CSV" on Chinese Windows
        (codecs.BOM_UTF16_LE + TEXT.format(s="\t").encode("utf-16-le"), "\t"),  # "Unicode 文本"
        (codecs.BOM_UTF16_BE + TEXT.format(s="\t").encode("utf-16-be"), "\t"),
        (TEXT.format(s="\t").encode("utf-8"), "\t"),  # TSV
        (TEXT.format(s=";").encode("utf-8"), ";"),  # a European-locale CSV
    ],
    ids=["utf8-bom", "utf8", "gbk", "utf16le-tab", "utf16be-tab", "tsv", "semicolon"],
)
def test_text_files_are_read_in_every_encoding_and_separator(data: bytes, separator: str) -> None:
    table = read_table(data, is_header=is_header, filename="目录.csv")
    expected = Table(
        header=["资源代码", "资源名称", "信息项名称"],
        rows=table.rows,
        header_row=3,
        header_found=True,
        sheet_name=None,
        skipped=["row 1: above the header, skipped"],
    )
    assert table == expected
    assert [(row.number, row.cells) for row in table.rows] == [
        (4, ["TJ-001", "人口统计", "常住人口"]),
        (6, ["TJ-002", "企业", "注册地址"]),
    ]
    layout = sniff_text(data, is_header)
    assert (layout.separator, layout.header_index, layout.header_found) == (separator, 2, True)


def test_row_numbers_of_a_csv_count_records_not_lines() -> None:
    data = '资源代码,资源名称\nA,"两行\n的名称"\nB,乙\n'.encode()
    table = read_table(data, is_header=is_header)
    assert [(row.number, row.cells) for row in table.rows] == [
        (2, ["A", "两行\n的名称"]),
        (3, ["B", "乙"]),
    ]


def test_a_text_file_named_xls_is_read_as_the_text_it_is() -> None:
    data = "资源代码\t资源名称\nA\t甲\n".encode("gbk")
    table = read_table(data, is_header=is_header, filename="目录.xls")
    assert table.rows[0].cells == ["A", "甲"]


def test_a_web_page_named_xls_is_refused_with_the_fix() -> None:
    with pytest.raises(InvalidInput) as refused:
        read_table(b"<html><table></table></html>", is_header=is_header, filename="目录.xls")
    assert "web page" in refused.value.detail
    assert ".xlsx" in refused.value.errors[0].message


def test_an_empty_or_blank_file_is_refused() -> None:
    for data in (b"", b"\n\n", b",,,\n,,\n"):
        with pytest.raises(InvalidInput):
            read_table(data, is_header=is_header, filename="目录.csv")


def test_a_zip_bomb_named_xlsx_is_refused_before_unpacking() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 20_000_000)
    with pytest.raises(InvalidInput) as refused:
        read_table(buffer.getvalue(), is_header=is_header, filename="目录.xlsx")
    assert "zip bomb" in refused.value.detail


def test_a_damaged_workbook_is_refused_with_the_fix() -> None:
    data = office_workbook()[:2000]
    with pytest.raises(InvalidInput) as refused:
        read_table(data, is_header=is_header, filename="目录.xlsx")
    assert "Re-save" in refused.value.errors[0].message


@pytest.mark.parametrize(
    "data",
    [b"\x81\x30\xff\xfe\x80abc,def\n", codecs.BOM_UTF16_LE + b"a\x00b"],
    ids=["bytes GB18030 cannot decode", "odd-length UTF-16"],
)
def test_text_no_encoding_can_read_is_refused_with_the_fix(data: bytes) -> None:
    with pytest.raises(InvalidInput) as refused:
        read_table(data, is_header=is_header, filename="目录.csv")
    assert refused.value.errors[0].location == "file"
    assert "CSV UTF-8" in refused.value.errors[0].message


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("*资源代码", "资源代码"),
        ("＊资源名称", "资源名称"),
        ("\ufeff资源代码", "资源代码"),
        ("资源\n名称", "资源名称"),
        ("资源\r\n名称 ", "资源名称"),
        ("信息\u3000资源 代码", "信息资源代码"),
        ("Ｃｏｄｅ（ＩＤ）", "code(id)"),
        ("Update Cycle", "updatecycle"),
    ],
)
def test_headers_are_normalized_as_they_are_meant(raw: str, normalized: str) -> None:
    assert normalize_header(raw) == normalized


@pytest.mark.parametrize(
    ("cells", "note"),
    [
        (["注：带*为必填"], True),
        (["注1：单位为万元"], True),
        (["注:数据截至10月"], True),
        ([None, "说明：按月更新"], True),
        (["填表人：张三", None, "审核人：李四"], True),
        (["Note: monthly"], True),
        (["备注、见附件"], True),
        (["注册地址"], False),  # starts with 注 but is a word, not a note
        (["说明书编号", "A"], False),
        ([None, None, "注：第三列起的是数据"], False),
        ([3, "注：数字开头的是数据"], False),
        ([None, None], False),
    ],
)
def test_a_footer_note_is_text_with_a_note_marker_in_the_first_columns(
    cells: list[str | int | None], note: bool
) -> None:
    assert is_footer_note(cells) is note


def test_a_note_between_data_rows_does_not_swallow_the_rows_after_it() -> None:
    data = "资源代码,资源名称\nA,甲\n注：下面还有\nB,乙\n".encode()
    table = read_table(data, is_header=is_header)
    assert [row.number for row in table.rows] == [2, 4]
    assert table.skipped == ["row 3: footer note skipped"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (3.0, "3"),
        (3.25, "3.25"),
        (12, "12"),
        (True, "是"),
        (False, "否"),
        (date(1990, 1, 1), "1990-01-01"),
        (datetime(1990, 1, 1), "1990-01-01"),
        (datetime(1990, 1, 1, 8, 5, 3), "1990-01-01 08:05:03"),
        ("  x ", "  x "),
    ],
)
def test_cell_text_reads_a_cell_as_a_person_does(value: object, text: str) -> None:
    assert cell_text(value) == text  # type: ignore[arg-type]


def test_cell_text_writes_booleans_in_the_style_asked() -> None:
    assert cell_text(True, booleans=("true", "false")) == "true"
