"""The one reader of tabular uploads: catalog sheets, releases, department and account lists.

Offices make these files by hand, so the reader takes them as they come:

* formats: XLSX/XLSM/XLS/ODS workbooks (through python-calamine, which also types dates), and
  CSV/TSV/text in UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode 文本", tab
  separated) or GB18030 (GBK's superset, what Excel writes as "ANSI" on Chinese Windows), separated
  by commas, tabs or semicolons;
* the header row is the first row the caller's `is_header` accepts, within the first
  `HEADER_SEARCH_ROWS` rows: title rows, 填报单位/填报日期 rows and blank rows above it are skipped
  (and noted); when no row is accepted, the first non-blank row is the header, so the caller can
  say what is wrong with it (`Table.header_found` tells which happened);
* of several sheets the first whose header is found (an instructions sheet placed first is passed
  over), or the one named by `sheet=`;
* vertically merged cells are filled down: every row of a merged range holds the range's value (a
  merge across columns keeps its value in its first column, as Excel shows it);
* blank rows and footer notes (see `is_footer_note`) are skipped; empty columns on the right are
  dropped;
* row numbers are the sheet's own: 1-based, counting title rows, blank rows and the header itself,
  so an error names the row a person sees (for CSV, the record number, which is the row a
  spreadsheet shows when it opens the file).

Cells are typed as the source types them: a workbook gives str, int, float, bool, date and
datetime (a date cell as `date`), a text file gives str; an empty cell is None. Callers that want
text (catalog sheets) use `cell_text`; callers that want dates (releases) keep the types.

Releases can be a million CSV rows: for them the caller keeps polars, and shares only the
detection here (`sniff_text`: encoding, separator and header row), so no Python list of rows is
built.
"""

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, TypeAlias

import python_calamine

from catalog.uploads import refuse_xlsx_bombs
from core.errors import FieldError, InvalidInput

CellValue: TypeAlias = str | int | float | bool | date | datetime | None
HeaderTest: TypeAlias = Callable[[list[str]], bool]

HEADER_SEARCH_ROWS = 30
MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the legacy .xls container
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb")
SEPARATORS = (",", "\t", ";")
SNIFF_BYTES = 256 * 1024

_REQUIRED_MARKS = str.maketrans("", "", "*＊")
_SPACES = re.compile(r"\s+")


def normalize_header(text: str) -> str:
    """A header as it is meant, not as it is typed: what headers are matched by.

    Drops a leading BOM, `*`/`＊` required markers, every space (the full-width U+3000 too) and
    line break; folds full-width forms to half-width (NFKC) and ASCII to lower case.
    """
    folded = unicodedata.normalize("NFKC", text.lstrip("\ufeff"))
    return _SPACES.sub("", folded.translate(_REQUIRED_MARKS)).lower()


def cell_text(value: CellValue, *, booleans: tuple[str, str] = ("是", "否")) -> str:
    """A cell as a person reads it: "" for empty, 3.0 as "3", a boolean as 是/否 (or `booleans`),
    a date as ISO `yyyy-mm-dd`, a datetime as `yyyy-mm-dd hh:mm:ss` (at midnight, as it comes from
    an Excel date cell, as the date alone)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return booleans[0] if value else booleans[1]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass
class TableRow:
    number: int  # as the sheet shows it: 1-based, counting every row above
    cells: list[CellValue]

    def texts(self) -> list[str]:
        return [cell_text(cell) for cell in self.cells]


@dataclass
class Table:
    header: list[str]  # the header cells as typed (not normalized), "" for an empty one
    rows: list[TableRow]
    header_row: int  # the header's own row number, as the sheet shows it
    header_found: bool  # False: no row passed `is_header`, the first non-blank row was taken
    sheet_name: str | None = None  # None for a text file
    skipped: list[str] = field(default_factory=list)  # notes for a dry run's warnings


# ---------------------------------------------------------------- footer notes

FOOTER_MARKERS = (
    "注",
    "附注",
    "备注",
    "说明",
    "填表说明",
    "填表人",
    "填报人",
    "制表人",
    "审核人",
    "负责人",
    "单位负责人",
    "联系人",
    "联系电话",
    "填表日期",
    "填报日期",
    "制表日期",
    "note",
    "notes",
)
_FOOTER = re.compile(
    r"^(?:" + "|".join(sorted(FOOTER_MARKERS, key=len, reverse=True)) + r")\s*\d*\s*[:：、.]",
    re.IGNORECASE,
)
FOOTER_COLUMNS = 2


def is_footer_note(cells: Sequence[CellValue]) -> bool:
    """A note below the table, not a data row.

    Its first non-empty cell is in one of the first `FOOTER_COLUMNS` columns and is text that
    starts with a note marker (注, 说明, 备注, 填表人, 审核人, 联系电话, 填报日期,
    note, ...), optionally numbered (注1), then a colon (：or :), 、 or a full stop.
    Rows that follow a note and hold text in that note's column only are its continuation
    (see `read_table`).
    """
    for position, cell in enumerate(cells):
        if cell is None:
            continue
        if position >= FOOTER_COLUMNS or not isinstance(cell, str):
            return False
        return bool(_FOOTER.match(unicodedata.normalize("NFKC", cell).strip()))
    return False


# ---------------------------------------------------------------- text files


@dataclass
class TextLayout:
    """How a text file is written: what `sniff_text` found."""

    encoding: str  # a Python codec name: utf-8-sig, utf-16, gb18030
    separator: str
    header_index: int  # records before the header (blank ones included): polars' `skip_rows`
    header_found: bool


def text_encoding(head: bytes, *, whole: Iterable[bytes] | None = None) -> str:
    """The encoding of a text upload: UTF-16 or UTF-8 when a BOM says so; else UTF-8 when every
    byte of `whole` (or of `head`) decodes as UTF-8; else GB18030, which decodes any byte string
    Excel's "ANSI" (GBK) writes."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        for chunk in whole if whole is not None else (head,):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _records(text: str, separator: str, limit: int | None = None) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    for count, record in enumerate(reader):
        if limit is not None and count >= limit:
            return
        yield record


def _separator(text: str, is_header: HeaderTest) -> tuple[str, int | None]:
    """The separator, and the header's record index when a row passes `is_header` with it.

    The separator is the one under which the header is found with the most columns; when no
    header is found, the one that splits the first non-blank record into the most fields.
    """
    best: tuple[int, str, int | None] = (0, ",", None)
    fallback: tuple[int, str] = (0, ",")
    for separator in SEPARATORS:
        try:
            records = list(_records(text, separator, HEADER_SEARCH_ROWS))
        except csv.Error:
            continue
        found = _header_index(records, is_header)
        if found is not None and len(records[found]) > best[0]:
            best = (len(records[found]), separator, found)
        first = next((r for r in records if len(r) > 1 or any(c.strip() for c in r)), [])
        if len(first) > fallback[0]:
            fallback = (len(first), separator)
    if best[2] is not None:
        return best[1], best[2]
    return fallback[1], None


def _header_index(records: Sequence[Sequence[CellValue]], is_header: HeaderTest) -> int | None:
    for index, record in enumerate(records[:HEADER_SEARCH_ROWS]):
        texts = [normalize_header(cell_text(c)) for c in record]
        if any(texts) and is_header(texts):
            return index
    return None


def sniff_text(head: bytes, is_header: HeaderTest, *, encoding: str | None = None) -> TextLayout:
    """Encoding, separator and header row of a text file from its first bytes (`SNIFF_BYTES` is
    plenty: the header sits within `HEADER_SEARCH_ROWS` rows). Pass `encoding` when the whole file
    was already checked (`text_encoding(head, whole=...)`)."""
    encoding = encoding or text_encoding(head)
    text = head.decode(encoding, errors="ignore")
    if len(head) >= SNIFF_BYTES:  # a cut-off last line would only confuse the count
        text = text[: text.rfind("\n") + 1] or text
    separator, found = _separator(text, is_header)
    if found is None:
        records = list(_records(text, separator, HEADER_SEARCH_ROWS))
        first = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), 0)
        return TextLayout(encoding, separator, first, header_found=False)
    return TextLayout(encoding, separator, found, header_found=True)


def _text_rows(data: bytes, is_header: HeaderTest, location: str) -> list[list[CellValue]]:
    encoding = text_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:  # bytes even GB18030 has no character for, or odd UTF-16
        raise InvalidInput(
            "The file is not text in UTF-8, UTF-16 or GBK.",
            errors=[
                FieldError(
                    location,
                    "Save it from Excel or WPS as CSV UTF-8, or upload the workbook itself.",
                )
            ],
        ) from exc
    separator, _ = _separator(text, is_header)
    rows: list[list[CellValue]] = []
    try:
        for record in _records(text, separator):
            rows.append([cell if cell.strip() else None for cell in record])
    except csv.Error as exc:  # a cell over csv.field_size_limit(), or a stray NUL
        raise InvalidInput(
            f"Row {len(rows) + 1} of the file cannot be read: {exc}.",
            errors=[
                FieldError(
                    f"{location}: row {len(rows) + 1}",
                    "Shorten the cell and check that its quotes are balanced.",
                )
            ],
        ) from exc
    return rows


# ---------------------------------------------------------------- workbooks


def _workbook_cell(value: object) -> CellValue:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool | int | float | date):  # datetime is a date
        return value
    if isinstance(value, time | timedelta):
        return str(value)
    return str(value)


def _filled_down(
    rows: list[list[CellValue]], merged: Sequence[tuple[tuple[int, int], tuple[int, int]]]
) -> None:
    for (top, left), (bottom, _right) in merged:
        if top >= len(rows) or left >= len(rows[top]):
            continue
        value = rows[top][left]
        for row in rows[top + 1 : bottom + 1]:
            if left < len(row):
                row[left] = value


def _sheet_rows(sheet: python_calamine.CalamineSheet) -> list[list[CellValue]]:
    rows = [
        [_workbook_cell(cell) for cell in row] for row in sheet.to_python(skip_empty_area=False)
    ]
    _filled_down(rows, sheet.merged_cell_ranges or [])
    return rows


def _workbook_problem(message: str, fix: str, location: str) -> InvalidInput:
    return InvalidInput(message, errors=[FieldError(location, fix)])


def _open_workbook(source: IO[bytes], size: int, location: str) -> python_calamine.CalamineWorkbook:
    head = source.read(8)
    source.seek(0)
    if head.startswith(ZIP_MAGIC):
        refuse_xlsx_bombs(source, size, max_unpacked=MAX_UNPACKED_BYTES, location=location)
        source.seek(0)
    try:
        return python_calamine.load_workbook(source)
    except python_calamine.PasswordError as exc:
        raise _workbook_problem(
            "The workbook is protected by a password.",
            "Remove the password (File > Info > Protect) and upload it again.",
            location,
        ) from exc
    except Exception as exc:  # calamine raises many kinds for a damaged or foreign file
        raise _workbook_problem(
            f"The workbook cannot be read ({type(exc).__name__}).",
            "Re-save it from Excel or WPS as .xlsx.",
            location,
        ) from exc


def _workbook_sheets(
    source: IO[bytes], size: int, sheet: str | None, location: str
) -> Iterator[tuple[str, list[list[CellValue]]]]:
    workbook = _open_workbook(source, size, location)
    try:
        names = [
            meta.name
            for meta in workbook.sheets_metadata
            if meta.typ == python_calamine.SheetTypeEnum.WorkSheet
        ]
        if sheet is not None:
            if sheet not in names:
                raise InvalidInput(
                    f"The workbook has no sheet named '{sheet}'.",
                    errors=[
                        FieldError(
                            "sheet",
                            "Name one of its sheets: " + ", ".join(f"'{n}'" for n in names) + ".",
                        )
                    ],
                )
            names = [sheet]
        for name in names:
            try:
                rows = _sheet_rows(workbook.get_sheet_by_name(name))
            except python_calamine.CalamineError as exc:
                raise _workbook_problem(
                    f"Sheet '{name}' of the workbook cannot be read ({type(exc).__name__}).",
                    "Re-save it from Excel or WPS as .xlsx.",
                    location,
                ) from exc
            yield name, rows
    finally:
        workbook.close()


# ---------------------------------------------------------------- the table


def _is_blank(cells: Sequence[CellValue]) -> bool:
    return all(cell is None for cell in cells)


def _table(
    rows: list[list[CellValue]], is_header: HeaderTest, sheet_name: str | None
) -> Table | None:
    """The table in these rows, or None when they are all blank."""
    found = _header_index(rows, is_header)
    index = found
    if index is None:
        index = next((i for i, row in enumerate(rows) if not _is_blank(row)), None)
        if index is None:
            return None
    skipped = [
        f"row {i + 1}: above the header, skipped" for i in range(index) if not _is_blank(rows[i])
    ]
    header_cells = rows[index]
    width = max(
        (i + 1 for i, cell in enumerate(header_cells) if cell is not None),
        default=0,
    )
    body: list[TableRow] = []
    note_column: int | None = None
    for offset, cells in enumerate(rows[index + 1 :], start=index + 2):
        if _is_blank(cells):
            continue
        if is_footer_note(cells):
            note_column = next(i for i, c in enumerate(cells) if c is not None)
            skipped.append(f"row {offset}: footer note skipped")
            continue
        if note_column is not None:
            filled = [i for i, c in enumerate(cells) if c is not None]
            if filled == [note_column] and isinstance(cells[note_column], str):
                skipped.append(f"row {offset}: footer note skipped")
                continue
            note_column = None
        width = max(width, max(i + 1 for i, c in enumerate(cells) if c is not None))
        body.append(TableRow(offset, list(cells)))
    for row in body:
        row.cells = (row.cells + [None] * width)[:width]
    header = [cell_text(cell).strip() for cell in header_cells[:width]]
    header += [""] * (width - len(header))
    return Table(
        header=header,
        rows=body,
        header_row=index + 1,
        header_found=found is not None,
        sheet_name=sheet_name,
        skipped=skipped,
    )


def is_workbook(data: bytes) -> bool:
    """A workbook by its first bytes: a zip (XLSX, XLSM, ODS) or OLE2 (XLS). A file named .xls
    that is neither is text, as many systems export tab-separated text under that name."""
    return data.startswith((ZIP_MAGIC, OLE2_MAGIC))


def _refuse_markup(data: bytes, filename: str | None, location: str) -> None:
    suffix = Path(filename or "").suffix.lower()
    if suffix in WORKBOOK_SUFFIXES and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise InvalidInput(
            f"The file is named {suffix} but is a web page or XML, not a workbook.",
            errors=[FieldError(location, "Open it in Excel or WPS and save it as .xlsx.")],
        )


def read_table(
    data: bytes | Path,
    *,
    is_header: HeaderTest,
    filename: str | None = None,
    sheet: str | None = None,
    location: str = "file",
) -> Table:
    """The table of an uploaded sheet or text file, its header found by `is_header`.

    `is_header` receives a row's cells as `normalize_header` texts ("" for an empty cell) and says
    whether this is the header row (e.g. "at least three cells are known headers"). `sheet` forces
    a workbook's sheet; without it the first sheet whose header is found is read (else the first
    sheet). `location` names the upload in errors (e.g. "file", "body.file").

    Raises InvalidInput for an empty file, an unreadable workbook, a text file in no known
    encoding, a missing `sheet`, and a file with no non-blank row.
    """
    raw = data.read_bytes() if isinstance(data, Path) else data
    filename = filename or (data.name if isinstance(data, Path) else None)
    if not raw.strip():
        raise InvalidInput(
            "The file is empty.", errors=[FieldError(location, "Upload a filled file.")]
        )
    first: Table | None = None
    if is_workbook(raw):
        for name, rows in _workbook_sheets(io.BytesIO(raw), len(raw), sheet, location):
            table = _table(rows, is_header, name)
            if table is not None and table.header_found:
                return table
            first = first or table
    else:
        _refuse_markup(raw, filename, location)
        first = _table(_text_rows(raw, is_header, location), is_header, None)
    if first is None:
        raise InvalidInput(
            "The file has no rows.", errors=[FieldError(location, "Fill in the file.")]
        )
    return first


__all__ = [
    "CellValue",
    "HeaderTest",
    "Table",
    "TableRow",
    "TextLayout",
    "cell_text",
    "is_footer_note",
    "is_workbook",
    "normalize_header",
    "read_table",
    "sniff_text",
    "text_encoding",
]
