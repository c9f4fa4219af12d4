"""What every CSV and XLSX cell the broker writes passes through, so a spreadsheet only shows it.

OWASP "CSV injection": Excel, WPS and LibreOffice run a text cell that starts with = + - @ (or a
tab or carriage return) as a formula, e.g. `=HYPERLINK(...)` sending the sheet's data away. A
leading apostrophe makes such a cell plain text. Numbers are not text: -5 stays -5.

Values that already start with apostrophes before a formula character get one more, so that
`restore_cell` (used when our own sheets are imported) gives back exactly what was stored.
"""

import re
from typing import TypeVar

import polars as pl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_RUNNABLE = "'*[=+\\-@\t\r]"
_NEEDS_QUOTE = re.compile(_RUNNABLE)
_REPLACEMENT = "\ufffd"

T = TypeVar("T")


def safe_cell(value: T) -> T | str:
    """The value as a spreadsheet must receive it: quoted if it is text a formula would run."""
    if isinstance(value, str) and _NEEDS_QUOTE.match(value):
        return "'" + value
    return value


def restore_cell(text: str) -> str:
    """The inverse of `safe_cell` for a cell read back from one of our own exports."""
    if text.startswith("'") and _NEEDS_QUOTE.match(text, 1):
        return text[1:]
    return text


def safe_text_columns(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`safe_cell` on every string column, as one vectorised expression (downloads run to
    millions of rows); other columns, numbers included, are left as they are."""
    return frame.with_columns(pl.col(pl.String).str.replace(f"^({_RUNNABLE})", "'$1"))


def xlsx_cell(value: T) -> T | str:
    """`safe_cell`, and C0 control characters (which XLSX cannot hold and openpyxl refuses)
    shown as U+FFFD, so one bad stored value never stops the whole workbook."""
    if isinstance(value, str):
        return str(safe_cell(ILLEGAL_CHARACTERS_RE.sub(_REPLACEMENT, value)))
    return value
