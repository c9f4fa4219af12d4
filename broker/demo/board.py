"""The readiness board as a fixed-width table a terminal shows aligned, Chinese names included."""

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

# (header, board key): the steps a line goes through (granted, delivered: an accepted release the
# grant downloads, fresh: its latest period meets the need), then where the lines stand.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("items", "requested"),
    ("granted", "granted"),
    ("delivered", "delivered"),
    ("fresh", "fresh"),
    ("available", "available"),
    ("approved", "approved"),
    ("pending", "pending"),
    ("escalated", "escalated"),
    ("rejected", "rejected"),
    ("withdrawn", "withdrawn"),
)
TOTAL_LABEL = "合计 TOTAL"


def width(text: str) -> int:
    """Terminal columns the text takes: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _left(text: str, columns: int) -> str:
    return text + " " * max(columns - width(text), 0)


def _cell(row: Mapping[str, Any], key: str) -> int:
    return int(row[key])


def render(board: Mapping[str, Any]) -> str:
    """One line per department (most items first), a total line and the coverage.

    Columns are the board's own (`available`: approved on submit from a platform copy;
    `approved`: decided by the owner or the leader), so the table reads against the JSON.
    """
    rows: Sequence[Mapping[str, Any]] = sorted(
        board["departments"], key=lambda r: (-int(r["requested"]), r["department_code"])
    )
    names = [f"{r['department_name']} ({r['department_code']})" for r in rows]
    total_label = f"{TOTAL_LABEL} ({len(rows)} departments)"
    first = max(width(n) for n in [*names, total_label, "部门 department"])
    numbers = [len(header) for header, _ in COLUMNS]

    def line(label: str, values: Sequence[object]) -> str:
        cells = "  ".join(str(v).rjust(w) for v, w in zip(values, numbers, strict=True))
        return f"  {_left(label, first)}  {cells}".rstrip()

    out = [line("部门 department", [header for header, _ in COLUMNS])]
    out.append("  " + "-" * (first + sum(numbers) + 2 * len(numbers)))
    for name, row in zip(names, rows, strict=True):
        out.append(line(name, [_cell(row, key) for _, key in COLUMNS]))
    out.append("  " + "-" * (first + sum(numbers) + 2 * len(numbers)))
    totals = [sum(_cell(r, key) for r in rows) for _, key in COLUMNS]
    out.append(line(total_label, totals))
    out.append(f"  coverage: {board['coverage']}")
    return "\n".join(out)
