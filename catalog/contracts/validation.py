"""Checking a delivered table against the dataset's declared schema, collecting every failure."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from catalog.contracts.schema import DTYPES, declared_schema
from catalog.datasets.models import DataItem
from catalog.vocab import DataType

EXAMPLES_PER_CHECK = 5
TRUE_WORDS = ["true", "1", "yes", "y", "t", "是"]
FALSE_WORDS = ["false", "0", "no", "n", "f", "否"]
# ISO, and as offices type dates: 1990/1/1, 1990.01.01, 1990年1月1日, 19900101
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d"]
DATETIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y年%m月%d日 %H:%M:%S",
]
# a date cell that Excel or a database export wrote with a midnight time is that date
MIDNIGHT = r"(?:\s+|T)0?0:00(?::00(?:\.0+)?)?$"
# full-width digits and the signs numbers and dates are written with, typed by Chinese IMEs
FULL_WIDTH = [chr(0xFF10 + d) for d in range(10)] + list("．－＋／：ｅＥ")
HALF_WIDTH = [str(d) for d in range(10)] + list(".-+/:eE")


@dataclass
class CheckFailure:
    column: str | None
    check: str
    failure_count: int
    examples: list[dict[str, Any]]


@dataclass
class Report:
    rows: int
    checks: list[CheckFailure] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.checks

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "rows": self.rows,
            "checks": [vars(c) for c in self.checks],
        }


def _parsed(text: pl.Expr, data_type: DataType) -> pl.Expr:
    """Text read as the declared type; null where it cannot be (a `data_type` failure)."""
    text = text.str.replace_many(FULL_WIDTH, HALF_WIDTH)
    if data_type == DataType.integer:
        return text.str.strip_chars().cast(pl.Int64, strict=False)
    if data_type == DataType.decimal:
        return text.str.strip_chars().cast(pl.Float64, strict=False)
    if data_type == DataType.boolean:
        word = text.str.strip_chars().str.to_lowercase()
        return (
            pl.when(word.is_in(TRUE_WORDS))
            .then(pl.lit(True))
            .when(word.is_in(FALSE_WORDS))
            .then(pl.lit(False))
            .otherwise(pl.lit(None, dtype=pl.Boolean))
        )
    if data_type == DataType.date:
        trimmed = text.str.strip_chars().str.replace(MIDNIGHT, "")
        return pl.coalesce(trimmed.str.to_date(f, strict=False) for f in DATE_FORMATS)
    if data_type == DataType.datetime:
        trimmed = text.str.strip_chars()
        return pl.coalesce(
            *(trimmed.str.to_datetime(f, time_unit="us", strict=False) for f in DATETIME_FORMATS),
            *(trimmed.str.to_date(f, strict=False).cast(pl.Datetime("us")) for f in DATE_FORMATS),
        )
    return text


def _typed(frame: pl.DataFrame, item: DataItem) -> tuple[pl.Expr, pl.Expr]:
    """The column converted to its declared type, and which rows failed the conversion.

    NaN and ±Infinity (as text, "1e999", or floats in Parquet and JSON Lines) are not decimals:
    no minimum or maximum can judge them and no receiver can compute with them.
    """
    converted, bad = _converted(frame, item)
    if item.data_type != DataType.decimal:
        return converted, bad
    not_a_number = converted.is_nan() | converted.is_infinite()
    finite = pl.when(not_a_number).then(None).otherwise(converted).alias(item.code)
    return finite, bad | not_a_number.fill_null(False)


def _converted(frame: pl.DataFrame, item: DataItem) -> tuple[pl.Expr, pl.Expr]:
    target = DTYPES[item.data_type]
    source = frame.schema[item.code]
    column = pl.col(item.code)
    if source == target == pl.String():
        # blank text is missing in every format, as an empty CSV cell is
        blank = column.str.strip_chars() == ""
        return pl.when(blank).then(None).otherwise(column).alias(item.code), pl.lit(False)
    if source == target:
        return column, pl.lit(False)
    if source.is_numeric() and target.is_numeric():
        converted = column.cast(target, strict=False)
    elif isinstance(source, pl.Datetime) and target == pl.Date():
        converted = column.dt.date()
    elif isinstance(source, pl.Datetime) and isinstance(target, pl.Datetime):
        utc = column.dt.convert_time_zone("UTC") if source.time_zone else column
        converted = utc.dt.replace_time_zone(None).cast(target)
    else:
        text = column.cast(pl.String)
        text = pl.when(text.str.strip_chars() == "").then(None).otherwise(text)
        converted = _parsed(text, item.data_type)
        return converted.alias(item.code), text.is_not_null() & converted.is_null()
    return converted.alias(item.code), column.is_not_null() & converted.is_null()


CHECK_NAMES = {
    "not_nullable": "not_null",
    "isin": "enum",
    "str_matches": "pattern",
    "greater_than_or_equal_to": "minimum",
    "less_than_or_equal_to": "maximum",
    "multiple_fields_uniqueness": "unique_key",
    "field_uniqueness": "unique_key",
    "column_in_dataframe": "missing_column",
    "column_in_schema": "extra_column",
}


def _check_name(raw: str) -> str:
    head = raw.split("(", 1)[0]
    return CHECK_NAMES.get(head, head)


def _failures(cases: pl.DataFrame, unique_columns: str | None) -> list[CheckFailure]:
    found: dict[tuple[str | None, str], CheckFailure] = {}
    for case in cases.iter_rows(named=True):
        check = _check_name(case["check"])
        column = case["column"]
        if check in ("missing_column", "extra_column"):
            column = case["failure_case"]
        elif check == "unique_key":
            column = unique_columns
        key = (column, check)
        failure = found.setdefault(key, CheckFailure(column, check, 0, []))
        failure.failure_count += 1
        if case["index"] is not None and len(failure.examples) < EXAMPLES_PER_CHECK:
            failure.examples.append({"row": case["index"] + 1, "value": case["failure_case"]})
    return list(found.values())


def validate(frame: pl.DataFrame, items: Sequence[DataItem]) -> tuple[pl.DataFrame, Report]:
    """The frame typed as declared, and the report of every failed check (row 1 = first data row).

    Values that cannot be read as the declared type are reported once, as `data_type`, and are
    not reported again as missing.
    """
    report = Report(rows=frame.height)
    present = [item for item in items if item.code in frame.columns]
    conversions = [_typed(frame, item) for item in present]
    bad_type = frame.select(
        *(bad.alias(item.code) for item, (_, bad) in zip(present, conversions, strict=True))
    )
    unreadable = {item.code: bad_type.get_column(item.code).arg_true() for item in present}
    for code, rows in unreadable.items():
        if rows.len():
            examples = frame.get_column(code).gather(rows.head(EXAMPLES_PER_CHECK))
            report.checks.append(
                CheckFailure(
                    code,
                    "data_type",
                    rows.len(),
                    [
                        {"row": r + 1, "value": None if v is None else str(v)}
                        for r, v in zip(rows.head(EXAMPLES_PER_CHECK), examples, strict=True)
                    ],
                )
            )
    typed = frame.with_columns(converted for converted, _ in conversions)
    keys = [item.code for item in items if item.is_key]
    try:
        declared_schema(items).validate(typed, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        for code, rows in unreadable.items():
            if rows.len():
                cases = cases.filter(
                    ~(
                        (pl.col("column") == code)
                        & (pl.col("check") == "not_nullable")
                        & pl.col("index").is_in(rows.to_list())
                    )
                )
        # a column of the wrong dtype is already reported row by row as data_type
        cases = cases.filter(~pl.col("check").str.starts_with("dtype("))
        report.checks.extend(_failures(cases, ",".join(keys) or None))
    except SchemaError as error:  # raised alone for failures pandera cannot collect lazily
        report.checks.append(CheckFailure(None, _check_name(str(error.check)), 1, []))
    return typed, report
