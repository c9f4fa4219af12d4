"""Reading a delivered file into a polars frame: CSV/TSV/text (UTF-8, UTF-16 or GBK; comma, tab
or semicolon), workbooks (XLSX, XLSM, XLS, ODS), JSON Lines, Parquet.

Workbooks and the detection of text files (encoding, separator, header row) are
`catalog.tabular`'s, shared with catalog sheets; a CSV is then read by polars directly, so a
million-row release never becomes Python lists.

Every reader refuses what it cannot read with a problem naming the file and the fix; nothing here
decides whether the data is right, only what it says.
"""

import codecs
import enum
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from catalog.datasets.models import DataItem
from catalog.tabular import (
    SNIFF_BYTES,
    HeaderTest,
    cell_text,
    is_footer_note,
    normalize_header,
    read_table,
    sniff_text,
    text_encoding,
)
from core.errors import FieldError, InvalidInput, TooLarge

CHUNK = 1024 * 1024
FOOTER_SEARCH_ROWS = 50


class FileFormat(enum.StrEnum):
    """How a release file is read: `csv` is any delimited text, `xlsx` any workbook."""

    csv = "csv"
    xlsx = "xlsx"
    jsonl = "jsonl"
    parquet = "parquet"


SUFFIXES = {suffix: FileFormat.csv for suffix in (".csv", ".tsv", ".txt", ".tab")}
SUFFIXES |= {suffix: FileFormat.xlsx for suffix in (".xlsx", ".xlsm", ".xls", ".ods")}
SUFFIXES |= {".jsonl": FileFormat.jsonl, ".ndjson": FileFormat.jsonl}
SUFFIXES |= {".parquet": FileFormat.parquet, ".pq": FileFormat.parquet}


def _refuse(message: str, fix: str) -> InvalidInput:
    return InvalidInput(message, errors=[FieldError("body.file", fix)])


def format_of(filename: str | None, declared: FileFormat | None) -> FileFormat:
    if declared is not None:
        return declared
    suffix = Path(filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput(
            f"Cannot tell the format of '{filename or 'the upload'}' from its name.",
            errors=[
                FieldError(
                    "body.format",
                    "Name the file .csv, .tsv, .txt, .xlsx, .xls, .ods, .jsonl or .parquet, "
                    "or set the format field.",
                )
            ],
        )
    return SUFFIXES[suffix]


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def _utf8_source(path: Path, scratch: Path) -> Path:
    """The text file as UTF-8: as it is when it already is, else transcoded into `scratch` from
    UTF-16 (a BOM says so: Excel's "Unicode 文本") or GB18030 (GBK's superset).

    Checked and decoded incrementally, so a large file never sits in memory whole.
    """
    with path.open("rb") as source:
        head = source.read(SNIFF_BYTES)
    encoding = text_encoding(head, whole=_chunks(path))
    if encoding == "utf-8-sig":
        return path
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with scratch.open("w", encoding="utf-8", newline="") as sink:
            for chunk in _chunks(path):
                sink.write(decoder.decode(chunk))
            sink.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:  # only UTF-16 can fail here: GB18030 decodes anything
        raise _refuse(
            "The file starts as UTF-16 text but does not continue as such.",
            "Save it again as CSV UTF-8, or as Unicode text from Excel.",
        ) from exc
    return scratch


def _blank_rows_dropped(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with no value at all are gaps a person left, not data: dropped, as are columns on
    the right with neither a header nor a value."""
    if frame.width == 0:
        return frame
    empty = [
        name
        for name in frame.columns
        if (not name.strip() or name.startswith("_duplicated_"))
        and frame.get_column(name).str.strip_chars().fill_null("").eq("").all()
    ]
    frame = frame.drop(empty)
    if frame.width == 0:
        return frame
    blank = pl.all_horizontal(pl.all().str.strip_chars().fill_null("") == "")
    return frame.filter(~blank)


def _without_footer(frame: pl.DataFrame) -> pl.DataFrame:
    """Notes typed below the data (注：..., 填表人：...; see `is_footer_note`) are not rows: the
    last rows from a note on, when each after it holds text in the note's column only."""
    tail = [
        [cell if cell is not None and cell.strip() else None for cell in row]
        for row in frame.tail(FOOTER_SEARCH_ROWS).rows()
    ]
    for index, cells in enumerate(tail):
        if not is_footer_note(cells):
            continue
        column = next(i for i, cell in enumerate(cells) if cell is not None)
        after = tail[index + 1 :]
        if all(is_footer_note(r) or [i for i, c in enumerate(r) if c] == [column] for r in after):
            return frame.head(frame.height - len(tail) + index)
    return frame


def _read_csv(path: Path, scratch: Path, is_header: HeaderTest) -> pl.DataFrame:
    source = _utf8_source(path, scratch)
    with source.open("rb") as handle:
        layout = sniff_text(handle.read(SNIFF_BYTES), is_header, encoding="utf-8-sig")
    try:
        frame = pl.read_csv(
            source,
            infer_schema=False,
            separator=layout.separator,
            skip_rows=layout.header_index,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise _refuse(
            f"The CSV cannot be read: {str(exc).splitlines()[0][:200]}",
            "Check that every row has as many fields as the header and quotes are balanced.",
        ) from exc
    return _without_footer(_blank_rows_dropped(frame))


def _column_name(header: str, position: int) -> str:
    if header:
        return header
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"column {letters}"


def _read_workbook(
    path: Path, filename: str | None, is_header: HeaderTest, max_rows: int
) -> pl.DataFrame:
    """The header's sheet of an XLSX/XLSM/XLS/ODS workbook (see `catalog.tabular.read_table`).

    Cells come out as text: dates in ISO form (an Excel date cell as `yyyy-mm-dd`), numbers
    without a spurious `.0`, booleans as true/false; validation types them as the items declare.
    """
    table = read_table(path, is_header=is_header, filename=filename, location="body.file")
    if len(table.rows) > max_rows:
        raise TooLarge(
            f"The workbook holds {len(table.rows)} rows; at most {max_rows} are accepted.",
            errors=[FieldError("body.file", "Split the release by period.")],
        )
    header = [_column_name(h, n) for n, h in enumerate(table.header, start=1)]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise _refuse(
            f"The header (row {table.header_row} of sheet '{table.sheet_name}') repeats "
            f"{', '.join(repeated)}.",
            "Name each column once.",
        )
    columns: list[list[str | None]] = [[] for _ in header]
    for row in table.rows:
        for column, cell in zip(columns, row.cells, strict=True):
            column.append(cell_text(cell, booleans=("true", "false")) or None)
    return pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(header, columns, strict=True)
        }
    )


def _read_jsonl(path: Path) -> pl.DataFrame:
    try:
        return pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError) as exc:
        raise _refuse(
            f"The JSON Lines file cannot be read: {str(exc).splitlines()[0][:200]}",
            "Write one JSON object per line, with the same type for a key on every line.",
        ) from exc


def _read_parquet(path: Path, max_rows: int) -> pl.DataFrame:
    try:
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        if rows > max_rows:
            raise TooLarge(
                f"The Parquet file holds {rows} rows; at most {max_rows} are accepted.",
                errors=[FieldError("body.file", "Split the release by period.")],
            )
        return pl.read_parquet(path)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise _refuse(
            f"The Parquet file cannot be read: {str(exc).splitlines()[0][:200]}",
            "Upload a Parquet file written whole by a standard writer.",
        ) from exc


def header_of(items: Sequence[DataItem]) -> HeaderTest:
    """A release's header row names its items: the row where at least two cells (one, for a
    single-item dataset) are item codes or names, as `normalize_header` reads them."""
    known = {normalize_header(item.code) for item in items}
    known |= {normalize_header(item.name) for item in items}
    enough = min(2, len(items))

    def is_header(cells: list[str]) -> bool:
        return sum(cell in known for cell in cells) >= max(enough, 1)

    return is_header


def read_file(
    path: Path,
    file_format: FileFormat,
    *,
    items: Sequence[DataItem],
    filename: str | None = None,
    scratch: Path,
    max_rows: int,
) -> pl.DataFrame:
    """The file's table as polars sees it; `scratch` is where a transcoded copy may be written.

    In CSV and workbooks the header is the first row naming the dataset's items (`header_of`):
    title and 填报 rows above it are skipped, as are blank rows and footer notes below.
    """
    if path.stat().st_size == 0:
        raise _refuse("The file is empty.", "Upload a file with a header row and data rows.")
    if file_format == FileFormat.csv:
        frame = _read_csv(path, scratch, header_of(items))
    elif file_format == FileFormat.xlsx:
        frame = _read_workbook(path, filename, header_of(items), max_rows)
    elif file_format == FileFormat.jsonl:
        frame = _read_jsonl(path)
    else:
        frame = _read_parquet(path, max_rows)
    if frame.height == 0:
        raise _refuse("The file holds no data rows.", "Upload a file with at least one data row.")
    if frame.height > max_rows:
        raise TooLarge(
            f"The file holds {frame.height} rows; at most {max_rows} are accepted.",
            errors=[FieldError("body.file", "Split the release by period.")],
        )
    return frame


def name_columns(frame: pl.DataFrame, items: Sequence[DataItem]) -> pl.DataFrame:
    """Headers may be item codes or item names (信息项名称); columns come out named by code.

    Headers match as `normalize_header` reads them: `*` markers, spaces, line breaks, a BOM,
    full-width forms and the case of ASCII letters do not matter.
    """
    by_name = {normalize_header(item.name): item.code for item in items}
    by_name |= {normalize_header(item.code): item.code for item in items}
    renamed: dict[str, str] = {}
    for header in frame.columns:
        code = by_name.get(normalize_header(header), header)
        if code in renamed.values():
            raise InvalidInput(
                f"Column '{code}' appears twice in the file (by code and by name, or repeated).",
                errors=[FieldError("body.file", "Keep one column per data item.")],
            )
        renamed[header] = code
    return frame.rename(renamed)
