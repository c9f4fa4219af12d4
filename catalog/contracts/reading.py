"""Reading a delivered file into a polars frame: CSV (UTF-8 or GBK), XLSX, JSON Lines, Parquet.

Every reader refuses what it cannot read with a problem naming the file and the fix; nothing here
decides whether the data is right, only what it says.
"""

import codecs
import enum
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import load_workbook

from catalog.datasets.models import DataItem
from catalog.uploads import refuse_xlsx_bombs
from core.errors import FieldError, InvalidInput, TooLarge

MAX_XLSX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024
CHUNK = 1024 * 1024


class FileFormat(enum.StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    jsonl = "jsonl"
    parquet = "parquet"


SUFFIXES = {".csv": FileFormat.csv, ".txt": FileFormat.csv, ".xlsx": FileFormat.xlsx}
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
                    "Name the file .csv, .xlsx, .jsonl or .parquet, or set the format field.",
                )
            ],
        )
    return SUFFIXES[suffix]


def _utf8_copy(path: Path, scratch: Path) -> Path:
    """The CSV as UTF-8: as it is when it already is, else transcoded from GB18030 (GBK's superset).

    Decoded incrementally, so a large file never sits in memory whole.
    """
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        target = path if encoding == "utf-8-sig" else scratch
        try:
            with path.open("rb") as source:
                sink = None if target == path else scratch.open("w", encoding="utf-8", newline="")
                try:
                    while chunk := source.read(CHUNK):
                        text = decoder.decode(chunk)
                        if sink is not None:
                            sink.write(text)
                    tail = decoder.decode(b"", final=True)
                    if sink is not None:
                        sink.write(tail)
                finally:
                    if sink is not None:
                        sink.close()
            return target
        except UnicodeDecodeError:
            continue
    raise _refuse(
        "The file is neither UTF-8 nor GBK text.", "Save the CSV as UTF-8 or GBK (ANSI in Excel)."
    )


def _read_csv(path: Path, scratch: Path) -> pl.DataFrame:
    source = _utf8_copy(path, scratch)
    try:
        return pl.read_csv(source, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise _refuse(
            f"The CSV cannot be read: {str(exc).splitlines()[0][:200]}",
            "Check that every row has as many fields as the header and quotes are balanced.",
        ) from exc


def _cell_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _read_xlsx(path: Path) -> pl.DataFrame:
    refuse_xlsx_bombs(
        path, path.stat().st_size, max_unpacked=MAX_XLSX_UNPACKED_BYTES, location="body.file"
    )
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise _refuse(
            f"The XLSX workbook cannot be opened ({type(exc).__name__}).",
            "Re-save it from Excel or WPS as .xlsx.",
        ) from exc
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        while header and not header[-1]:
            header.pop()
        columns: list[list[str | None]] = [[] for _ in header]
        for row in rows:
            cells = [_cell_text(v) for v in row[: len(header)]]
            if not any(cells):
                continue
            cells += [None] * (len(header) - len(cells))
            for column, cell in zip(columns, cells, strict=True):
                column.append(cell)
    finally:
        workbook.close()
    if len(set(header)) != len(header):
        raise _refuse("The first sheet's header repeats a column.", "Name each column once.")
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


def read_file(path: Path, file_format: FileFormat, *, scratch: Path, max_rows: int) -> pl.DataFrame:
    """The file's table as polars sees it; `scratch` is where a transcoded copy may be written."""
    if path.stat().st_size == 0:
        raise _refuse("The file is empty.", "Upload a file with a header row and data rows.")
    if file_format == FileFormat.csv:
        frame = _read_csv(path, scratch)
    elif file_format == FileFormat.xlsx:
        frame = _read_xlsx(path)
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
    """Headers may be item codes or item names (信息项名称); columns come out named by code."""
    by_name = {item.name: item.code for item in items} | {item.code: item.code for item in items}
    renamed: dict[str, str] = {}
    for header in frame.columns:
        code = by_name.get(header.strip().lstrip("\ufeff"), header)
        if code in renamed.values():
            raise InvalidInput(
                f"Column '{code}' appears twice in the file (by code and by name, or repeated).",
                errors=[FieldError("body.file", "Keep one column per data item.")],
            )
        renamed[header] = code
    return frame.rename(renamed)
