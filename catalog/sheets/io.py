"""Reading and writing 目录 sheets: read through `catalog.tabular` (XLSX, XLS, ODS, CSV, TSV;
UTF-8, GBK, UTF-16), written as CSV (UTF-8 with BOM) or XLSX."""

import csv
import difflib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from openpyxl import Workbook
from openpyxl.cell.cell import Cell, WriteOnlyCell
from openpyxl.workbook.child import _WorkbookChild

from catalog.exports import restore_cell, safe_cell, xlsx_cell
from catalog.sheets.layout import (
    COLUMNS,
    IGNORED_BY_NAME,
    Column,
    column_for,
    is_full_header,
    is_partial_header,
    missing_required,
)
from catalog.tabular import Table, cell_text, normalize_header, read_table
from catalog.uploads import refuse_xlsx_bombs
from core.errors import FieldError, InvalidInput

MAX_XLSX_UNPACKED_BYTES = 200 * 1024 * 1024
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class SheetWarning:
    """Something read past or read generously, for the importer to check in a dry run."""

    location: str
    message: str


@dataclass
class SheetRow:
    number: int  # as the sheet shows it: title and blank rows above count, the header too
    values: dict[str, str]


@dataclass
class Sheet:
    rows: list[SheetRow]
    headers: dict[str, str]  # column key -> its header as the sheet writes it
    warnings: list[SheetWarning] = field(default_factory=list)

    def header(self, key: str) -> str:
        return self.headers.get(key) or next(c.header for c in COLUMNS if c.key == key)


def _shown(header: str) -> str:
    """A header as an error names it: as typed, less line breaks and `*` markers."""
    return "".join(header.replace("*", "").replace("＊", "").split())


def _table(data: bytes, filename: str | None) -> Table:
    if data.startswith(XLSX_MAGIC):
        refuse_xlsx_bombs(
            io.BytesIO(data), len(data), max_unpacked=MAX_XLSX_UNPACKED_BYTES, location="file"
        )
    try:
        table = read_table(data, is_header=is_full_header, filename=filename)
        if table.header_found:
            return table
        # No row holds every required column: take the best partial header, so the error can
        # say which column is missing rather than call a title row the header.
        partial = read_table(data, is_header=is_partial_header, filename=filename)
    except UnicodeDecodeError as exc:  # bytes no text encoding reads
        raise InvalidInput(
            "The file is no workbook and neither UTF-8, UTF-16 nor GBK text.",
            errors=[FieldError("file", "Save the sheet as .xlsx, or as CSV UTF-8 (or GBK) text.")],
        ) from exc
    return partial if partial.header_found else table


def _columns(table: Table) -> tuple[list[Column | None], dict[str, str], list[SheetWarning]]:
    """Which column each position holds; unknown, ignored and repeated columns noted."""
    columns: list[Column | None] = [column_for(name) if name else None for name in table.header]
    warnings: list[SheetWarning] = []
    row = table.header_row
    by_key: dict[str, int] = {}
    for position, column in enumerate(columns):
        if column is None:
            continue
        earlier = by_key.get(column.key)
        if earlier is None:
            by_key[column.key] = position
            continue
        # Two headers for one column (信息资源代码 and 资源代码): the canonical header wins.
        keep, drop = earlier, position
        if normalize_header(table.header[position]) == normalize_header(column.header):
            keep, drop = position, earlier
        by_key[column.key] = keep
        columns[drop] = None
        warnings.append(
            SheetWarning(
                f"row {row}, column {drop + 1} ({_shown(table.header[drop])})",
                f"ignored: column {keep + 1} ({_shown(table.header[keep])}) already gives "
                f"{column.header}.",
            )
        )
    for position, (name, column) in enumerate(zip(table.header, columns, strict=True)):
        if column is not None or not name or position in by_key.values():
            continue
        why = IGNORED_BY_NAME.get(normalize_header(name))
        if why is None:
            if any(col is not None and col.header == name for col in columns):
                continue
            why = "not a 目录 column"
        warnings.append(
            SheetWarning(f"row {row}, column {position + 1} ({_shown(name)})", f"ignored: {why}.")
        )
    headers = {key: _shown(table.header[position]) for key, position in by_key.items()}
    return columns, headers, warnings


def _missing_column_errors(table: Table, present: set[str]) -> list[FieldError]:
    unknown = {
        _shown(name): position
        for position, name in enumerate(table.header, start=1)
        if name and column_for(name) is None
    }
    errors = []
    for column in missing_required(present):
        fix = f"The required column {column.header} is missing"
        names = [column.header, *column.aliases]
        near = (
            difflib.get_close_matches(column.header, list(unknown), n=1, cutoff=0.5)
            or [
                name
                for name in unknown
                if any(
                    difflib.SequenceMatcher(None, name, alias).ratio() >= 0.75 for alias in names
                )
            ][:1]
        )
        if near:
            fix += f"; is column {unknown[near[0]]} ('{near[0]}') meant to be {column.header}?"
        else:
            fix += f"; add a column headed {column.header}."
        errors.append(FieldError(f"row {table.header_row}", fix))
    return errors


def read_sheet(data: bytes, *, filename: str | None = None) -> Sheet:
    """The rows of a 目录 sheet keyed by column, wherever its header row is, with what was read
    past (title rows, footer notes, columns the catalog does not keep) as warnings."""
    table = _table(data, filename)
    columns, headers, warnings = _columns(table)
    warnings = [
        SheetWarning(*note.split(": ", 1)) if ": " in note else SheetWarning("file", note)
        for note in table.skipped
    ] + warnings
    present = {c.key for c in columns if c is not None}
    errors = _missing_column_errors(table, present)
    if errors:
        raise InvalidInput("The sheet's header row is not the 目录 layout.", errors=errors)
    if not table.rows:
        raise InvalidInput(
            "The sheet has a header but no data rows.",
            errors=[FieldError(f"row {table.header_row + 1}", "Add rows.")],
        )
    kept = [(position, column.key) for position, column in enumerate(columns) if column]
    rows = []
    for table_row in table.rows:
        cells = table_row.cells
        values: dict[str, str] = {}
        for position, key in kept:
            cell = cells[position] if position < len(cells) else None
            if cell is None:
                continue
            text = (cell if isinstance(cell, str) else cell_text(cell)).strip()
            values[key] = restore_cell(text) if text.startswith("'") else text
        rows.append(SheetRow(number=table_row.number, values=values))
    return Sheet(rows=rows, headers=headers, warnings=warnings)


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
