"""Readiness boards and the coordination agenda: what the weekly dispatch meeting works from."""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.requests.models import LineState, Request, RequestLine
from broker.requests.policy import is_overdue
from catalog.departments.models import Department
from catalog.exports import safe_cell

S = LineState
CATEGORY = {
    S.draft: "draft",
    S.auto_approved: "available",
    S.approved: "approved",
    S.pending_owner: "pending",
    S.needs_info: "pending",
    S.approved_with_conditions: "pending",
    S.pending_registration: "unregistered",
    S.rejected: "rejected",
    S.rejected_final: "rejected",
    S.not_held: "rejected",
    S.escalated: "escalated",
    # settled by the leader, still in coordination's hands until a platform steward countersigns
    S.awaiting_countersignature: "escalated",
    S.withdrawn: "withdrawn",
}
COLUMNS = (
    "requested",
    "available",
    "approved",
    "pending",
    "overdue",
    "unregistered",
    "escalated",
    "rejected",
    "withdrawn",
)
OUTSTANDING = {
    S.pending_owner,
    S.needs_info,
    S.approved_with_conditions,
    S.pending_registration,
    S.escalated,
    S.awaiting_countersignature,
    S.rejected,
}


@dataclass
class DepartmentRow:
    department_code: str
    department_name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))


@dataclass
class OutstandingLine:
    line_id: str
    request_id: str
    department_code: str
    department_name: str
    item: str
    state: str
    routed_at: datetime | None
    due_at: datetime | None
    overdue: bool
    age_days: int
    reason: str | None
    refusal_basis: str | None


@dataclass
class Board:
    ready: int
    total: int
    departments: list[DepartmentRow]
    outstanding: list[OutstandingLine]


def _label(line: RequestLine) -> str:
    if line.item is not None:
        return f"{line.item.code} {line.item.name}"
    if line.dataset is not None:
        return f"{line.dataset.code} {line.dataset.title}"
    return line.need or ""


async def board(*, session: AsyncSession, lines: list[RequestLine], now: datetime) -> Board:
    """Counts per owning department, coverage, and every line still open."""
    departments = {d.id: d for d in (await session.scalars(select(Department))).all()}
    rows: dict[str, DepartmentRow] = {}
    outstanding = []
    for line in lines:
        owner = departments[line.owner_department_id]
        row = rows.setdefault(owner.code, DepartmentRow(owner.code, owner.name))
        row.counts["requested"] += 1
        category = CATEGORY[line.state]
        if category in row.counts:
            row.counts[category] += 1
        overdue = is_overdue(line, now)
        if overdue:
            row.counts["overdue"] += 1
        if line.state in OUTSTANDING:
            since = line.routed_at or line.created_at
            outstanding.append(
                OutstandingLine(
                    line_id=str(line.id),
                    request_id=str(line.request_id),
                    department_code=owner.code,
                    department_name=owner.name,
                    item=_label(line),
                    state=line.state.value,
                    routed_at=line.routed_at,
                    due_at=line.due_at,
                    overdue=overdue,
                    age_days=max((now - since).days, 0),
                    reason=line.reason or line.route_reason,
                    refusal_basis=line.refusal_basis,
                )
            )
    ready = sum(1 for line in lines if line.state in (S.approved, S.auto_approved))
    outstanding.sort(key=lambda o: (o.department_code, o.routed_at or now, o.line_id))
    return Board(
        ready=ready,
        total=len(lines),
        departments=sorted(rows.values(), key=lambda r: r.department_code),
        outstanding=outstanding,
    )


async def scenario_lines(session: AsyncSession, scenario_id: object) -> list[RequestLine]:
    query = (
        select(RequestLine)
        .join(Request, RequestLine.request_id == Request.id)
        .where(Request.scenario_id == scenario_id)
        .order_by(Request.created_at, RequestLine.position)
    )
    return list((await session.scalars(query)).all())


async def agenda_lines(session: AsyncSession) -> list[RequestLine]:
    query = select(RequestLine).where(RequestLine.state.in_(list(OUTSTANDING)))
    return list((await session.scalars(query)).all())


def _csv(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [safe_cell(value) for value in row] for row in rows
    )
    return buffer.getvalue()


def board_csv(result: Board) -> str:
    rows: list[list[object]] = [["department_code", "department_name", *COLUMNS]]
    for row in result.departments:
        rows.append([row.department_code, row.department_name, *(row.counts[c] for c in COLUMNS)])
    rows.append(
        [
            "TOTAL",
            f"ready {result.ready}/{result.total}",
            *(sum(r.counts[c] for r in result.departments) for c in COLUMNS),
        ]
    )
    return _csv(rows)


def agenda_csv(result: Board) -> str:
    rows: list[list[object]] = [
        [
            "department_code",
            "department_name",
            "item",
            "state",
            "age_days",
            "due_at",
            "overdue",
            "reason",
            "refusal_basis",
            "line_id",
        ]
    ]
    for line in result.outstanding:
        rows.append(
            [
                line.department_code,
                line.department_name,
                line.item,
                line.state,
                line.age_days,
                line.due_at.isoformat() if line.due_at else "",
                "yes" if line.overdue else "no",
                line.reason or "",
                line.refusal_basis or "",
                line.line_id,
            ]
        )
    return _csv(rows)


def agenda_markdown(result: Board, now: datetime) -> str:
    """The agenda as the meeting reads it: one section per department, escalations first."""
    lines = [f"# 协调会议程 Coordination agenda ({now.date().isoformat()})", ""]
    by_department: dict[str, list[OutstandingLine]] = defaultdict(list)
    for line in result.outstanding:
        by_department[f"{line.department_name} ({line.department_code})"].append(line)
    if not by_department:
        lines.append("Nothing outstanding.")
    for department, items in sorted(by_department.items()):
        lines += [
            f"## {department}",
            "",
            "| item | state | age (days) | due | overdue | note | legal basis |",
            "|---|---|---|---|---|---|---|",
        ]
        for item in sorted(items, key=lambda i: (i.state != "escalated", -i.age_days)):
            due = item.due_at.date().isoformat() if item.due_at else ""
            note, basis = (
                (text or "").replace("|", "/").replace("\n", " ")
                for text in (item.reason, item.refusal_basis)
            )
            lines.append(
                f"| {item.item} | {item.state} | {item.age_days} | {due} | "
                f"{'yes' if item.overdue else ''} | {note} | {basis} |"
            )
        lines.append("")
    return "\n".join(lines)
