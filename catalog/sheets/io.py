"""Reading and writing 目录 sheets: CSV (UTF-8 or GBK) and XLSX."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell, WriteOnlyCell
from openpyxl.workbook.child import _WorkbookChild

from catalog.exports import restore_cell, safe_cell, xlsx_cell
from catalog.sheets.layout import BY_NAME, COLUMNS, Column
from catalog.uploads import refuse_xlsx_bombs
from core.errors import FieldError, InvalidInput

MAX_XLSX_UNPACKED_BYTES = 200 * 1024 * 1024
XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class SheetRow:
    number: int  # as a person sees it in the sheet: the header is row 1
    values: dict[str, str]


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030, the superset of GBK that Excel writes."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        "The file is neither UTF-8 nor GBK text.",
        errors=[FieldError("file", "Save the sheet as CSV UTF-8 or GBK, or upload the XLSX.")],
    )


def _csv_table(data: bytes) -> list[list[str]]:
    text = _decode(data)
    rows: list[list[str]] = []
    try:
        rows.extend(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # a cell over csv.field_size_limit(), or a stray NUL in old Pythons
        raise InvalidInput(
            f"Row {len(rows) + 1} of the sheet cannot be read: {exc}.",
            errors=[
                FieldError(
                    f"row {len(rows) + 1}",
                    "Shorten the cell (a catalog sheet holds short text) and check its quotes.",
                )
            ],
        ) from exc
    return rows


def _xlsx_table(data: bytes) -> list[list[str]]:
    refuse_xlsx_bombs(
        io.BytesIO(data), len(data), max_unpacked=MAX_XLSX_UNPACKED_BYTES, location="file"
    )
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for damaged files
        raise InvalidInput(
            "The XLSX file could not be read.",
            errors=[FieldError("file", f"Re-save it as .xlsx ({type(exc).__name__}).")],
        ) from exc
    sheet = workbook.worksheets[0]
    table = [
        ["" if cell is None else _cell_text(cell) for cell in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    workbook.close()
    return table


def _cell_text(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_sheet(data: bytes) -> list[SheetRow]:
    """The rows of a sheet, keyed by column, with every header checked."""
    if not data.strip():
        raise InvalidInput(
            "The file is empty.", errors=[FieldError("file", "Upload a filled sheet.")]
        )
    table = _xlsx_table(data) if data.startswith(XLSX_MAGIC) else _csv_table(data)
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise InvalidInput(
            "The sheet has no rows.", errors=[FieldError("file", "Fill in the sheet.")]
        )
    header, *body = table
    columns: list[Column | None] = []
    errors: list[FieldError] = []
    for position, name in enumerate(header, start=1):
        column = BY_NAME.get(name.strip().lower())
        if column is None and name.strip():
            errors.append(
                FieldError(
                    f"row 1, column {position}",
                    f"Unknown header '{name}'; remove it or use one of the 目录 headers.",
                )
            )
        columns.append(column)
    present = {c.key for c in columns if c is not None}
    for column in COLUMNS:
        if column.required and column.key not in present:
            errors.append(FieldError("row 1", f"The required column {column.header} is missing."))
    if errors:
        raise InvalidInput("The sheet's header row is not the 目录 layout.", errors=errors)
    if not body:
        raise InvalidInput(
            "The sheet has a header but no data rows.", errors=[FieldError("row 2", "Add rows.")]
        )
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        values = {
            column.key: restore_cell(cell.strip())
            for column, cell in zip(columns, cells, strict=False)
            if column is not None
        }
        rows.append(SheetRow(number=number, values=values))
    return rows


def write_csv(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.header for c in COLUMNS])
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def write_xlsx(rows: Iterable[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("目录")
    sheet.append([c.header for c in COLUMNS])
    for row in rows:
        sheet.append([_text_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet: _WorkbookChild, value: str) -> Cell:
    """An explicit string cell: Excel never evaluates it, whatever it starts with."""
    cell = WriteOnlyCell(sheet, value=xlsx_cell(value))
    cell.data_type = "s"
    return cell
