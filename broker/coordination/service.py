"""Readiness boards and the coordination agenda: what the weekly dispatch meeting works from.

Ready means delivered (issue 15): past the line's own states, the board follows each line through
three steps, granted (a grant in force), delivered (its grantee can download it: not in-platform
only, and an accepted release exists, `delivery.progress`) and fresh (the dataset is not due, and
its latest period meets the line's freshness need), and names the lines blocking each step.
"""

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.delivery import progress
from broker.grants.models import Grant, GrantStatus
from broker.requests.models import LineState, Request, RequestLine
from broker.requests.policy import is_overdue
from catalog.datasets.freshness import period_deadlines
from catalog.datasets.service import freshness_of
from catalog.departments.models import Department
from catalog.exports import safe_cell, xlsx_cell
from catalog.vocab import Freshness, UpdateCycle

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
    "granted",
    "delivered",
    "fresh",
    "delivery_overdue",
)
STEPS = ("granted", "delivered", "fresh")
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
class BlockingLine:
    """A line held at one step, and why."""

    line_id: str
    item_code: str | None
    department_code: str
    why: str


def _no_blocking() -> dict[str, list[BlockingLine]]:
    return {step: [] for step in STEPS}


@dataclass
class DepartmentRow:
    department_code: str
    department_name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    blocking: dict[str, list[BlockingLine]] = field(default_factory=_no_blocking)


@dataclass
class OverdueDelivery:
    """A grant whose owner has not delivered a first release within the delivery clock."""

    grant_id: str
    line_id: str
    department_code: str
    department_name: str
    dataset: str
    grantee_code: str
    purpose: str | None
    delivery_due_at: datetime
    escalated_at: datetime | None
    age_days: int


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
    overdue_deliveries: list[OverdueDelivery] = field(default_factory=list)

    def step_total(self, column: str) -> int:
        return sum(row.counts[column] for row in self.departments)

    def blocking(self) -> dict[str, list[BlockingLine]]:
        return {
            step: [line for row in self.departments for line in row.blocking[step]]
            for step in STEPS
        }


def _label(line: RequestLine) -> str:
    if line.item is not None:
        return f"{line.item.code} {line.item.name}"
    if line.dataset is not None:
        return f"{line.dataset.code} {line.dataset.title}"
    return line.need or ""


def _meets_need(line: RequestLine, now: datetime) -> str | None:
    """Why the dataset's latest period falls short of the line's freshness need, if it does: the
    period after it, out within the line's `within_days`, must not be due yet."""
    need, dataset = line.freshness_need, line.dataset
    if not need or dataset is None:
        return None
    if dataset.latest_period_end is None:
        return "no period delivered yet"
    due, _stale = period_deadlines(
        dataset.latest_period_end, UpdateCycle(need["update_cycle"]), need["within_days"]
    )
    if due is not None and now >= due:
        return (
            f"latest period ends {dataset.latest_period_end.isoformat()}; the line needs "
            f"{need['update_cycle']} data within {need['within_days']} days"
        )
    return None


def _step_held(
    line: RequestLine, grant: Grant | None, released: set[uuid.UUID], now: datetime
) -> tuple[str, str] | None:
    """The first step the line has not reached (granted, delivered, fresh) and why; None when
    it is fresh."""
    if grant is None:
        return "granted", f"line is {line.state.value}"
    status = grant.status_at(now)
    if status != GrantStatus.active:
        return "granted", f"grant is {status.value}"
    if grant.conditions.get("in_platform_only"):
        return "delivered", "granted for in-platform use only: nothing to download"
    if grant.dataset_id not in released:
        due = grant.delivery_due_at
        when = f" (due {due.date().isoformat()})" if due is not None else ""
        return "delivered", f"no accepted release of {grant.dataset.code} yet{when}"
    freshness = freshness_of(grant.dataset, now)
    if freshness != Freshness.fresh:
        return "fresh", f"{grant.dataset.code} is {freshness.value}"
    short = _meets_need(line, now)
    if short is not None:
        return "fresh", short
    return None


async def _grants_of(session: AsyncSession, lines: Sequence[RequestLine]) -> dict[uuid.UUID, Grant]:
    ids = [line.id for line in lines]
    if not ids:
        return {}
    found = await session.scalars(select(Grant).where(Grant.line_id.in_(ids)))
    return {grant.line_id: grant for grant in found.unique()}


def _overdue_delivery(grant: Grant, now: datetime) -> OverdueDelivery:
    assert grant.delivery_due_at is not None
    return OverdueDelivery(
        grant_id=str(grant.id),
        line_id=str(grant.line_id),
        department_code=grant.owner.code,
        department_name=grant.owner.name,
        dataset=f"{grant.dataset.code} {grant.dataset.title}",
        grantee_code=grant.grantee.code,
        purpose=grant.purpose,
        delivery_due_at=grant.delivery_due_at,
        escalated_at=grant.delivery_escalated_at,
        age_days=max((now - grant.delivery_due_at).days, 0),
    )


def overdue_deliveries(grants: Sequence[Grant], now: datetime) -> list[OverdueDelivery]:
    """What the agenda lists of `delivery.progress.overdue`, by owner then longest overdue."""
    rows = [_overdue_delivery(grant, now) for grant in grants]
    return sorted(rows, key=lambda o: (o.department_code, o.delivery_due_at, o.grant_id))


async def board(
    *,
    session: AsyncSession,
    lines: list[RequestLine],
    now: datetime,
    may_see: Callable[[RequestLine], bool] = lambda _line: True,
) -> Board:
    """Counts per owning department, coverage, every line still open, and the steps of delivery.

    Counts cover every line; the lines named (outstanding, blocking, overdue deliveries) are only
    those the caller may see (`may_see`): each department sees only its part (issue 14).
    """
    departments = {d.id: d for d in (await session.scalars(select(Department))).all()}
    grants = await _grants_of(session, lines)
    released = await progress.released_datasets(
        session=session, dataset_ids={g.dataset_id for g in grants.values()}
    )
    rows: dict[str, DepartmentRow] = {}
    outstanding = []
    late: list[Grant] = []
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
        visible = may_see(line)
        if line.state != S.withdrawn:
            grant = grants.get(line.id)
            held = _step_held(line, grant, released, now)
            reached = STEPS if held is None else STEPS[: STEPS.index(held[0])]
            for step in reached:
                row.counts[step] += 1
            if held is not None and visible:
                item_code = line.item.code if line.item is not None else None
                row.blocking[held[0]].append(
                    BlockingLine(str(line.id), item_code, owner.code, held[1])
                )
            if (
                grant is not None
                and held is not None
                and held[0] == "delivered"
                and grant.dataset_id not in released
                and progress.is_overdue(grant, now)
            ):
                row.counts["delivery_overdue"] += 1
                if visible:
                    late.append(grant)
        if line.state in OUTSTANDING and visible:
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
        overdue_deliveries=overdue_deliveries(late, now),
    )


async def scenario_lines(session: AsyncSession, scenario_id: object) -> list[RequestLine]:
    query = (
        select(RequestLine)
        .join(Request, RequestLine.request_id == Request.id)
        .where(Request.scenario_id == scenario_id)
        .order_by(Request.created_at, RequestLine.position)
    )
    return list((await session.scalars(query)).all())


async def agenda(*, session: AsyncSession, now: datetime) -> Board:
    """Every outstanding line, and every grant whose first release is overdue."""
    query = select(RequestLine).where(RequestLine.state.in_(list(OUTSTANDING)))
    result = await board(session=session, lines=list((await session.scalars(query)).all()), now=now)
    late = await progress.overdue(session=session, now=now)
    result.overdue_deliveries = overdue_deliveries(late, now)
    return result


def _csv(rows: list[list[object]], *, bom: bool) -> bytes:
    """CSV for a spreadsheet: formula-like text quoted, and by default a UTF-8 byte order mark
    first, without which Excel on Chinese Windows reads the department names as GBK mojibake."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [safe_cell(value) for value in row] for row in rows
    )
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def _xlsx(rows: list[list[object]], *, sheet_name: str) -> bytes:
    """One sheet of the rows, header first; text through `xlsx_cell`, as every XLSX we write."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)
    for row in rows:
        sheet.append([xlsx_cell(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _blocked_by(lines: list[BlockingLine]) -> str:
    return " ".join(line.item_code or line.line_id for line in lines)


def board_rows(result: Board) -> list[list[object]]:
    """One row per department and a TOTAL: the counts, then the lines blocking each step (item
    codes, or line ids for needs without one); a header row first."""
    blocked = [f"{step}_blocked_by" for step in STEPS]
    rows: list[list[object]] = [["department_code", "department_name", *COLUMNS, *blocked]]
    for row in result.departments:
        rows.append(
            [
                row.department_code,
                row.department_name,
                *(row.counts[c] for c in COLUMNS),
                *(_blocked_by(row.blocking[step]) for step in STEPS),
            ]
        )
    overall = result.blocking()
    rows.append(
        [
            "TOTAL",
            f"ready {result.ready}/{result.total}",
            *(result.step_total(c) for c in COLUMNS),
            *(_blocked_by(overall[step]) for step in STEPS),
        ]
    )
    return rows


def board_csv(result: Board, *, bom: bool = True) -> bytes:
    return _csv(board_rows(result), bom=bom)


def board_xlsx(result: Board) -> bytes:
    return _xlsx(board_rows(result), sheet_name="readiness")


@dataclass(frozen=True)
class AgendaRow:
    department_code: str
    department_name: str
    item: str
    state: str
    age_days: int
    due_at: datetime | None
    overdue: bool
    note: str
    legal_basis: str
    line_id: str
    grant_id: str


def _agenda_rows(result: Board) -> list[AgendaRow]:
    """Outstanding lines, then deliveries past their clock (state `delivery_overdue`, or
    `delivery_escalated` once the sweep sent them to coordination)."""
    rows = [
        AgendaRow(
            line.department_code,
            line.department_name,
            line.item,
            line.state,
            line.age_days,
            line.due_at,
            line.overdue,
            line.reason or "",
            line.refusal_basis or "",
            line.line_id,
            "",
        )
        for line in result.outstanding
    ]
    rows += [
        AgendaRow(
            late.department_code,
            late.department_name,
            late.dataset,
            "delivery_escalated" if late.escalated_at else "delivery_overdue",
            late.age_days,
            late.delivery_due_at,
            True,
            f"no accepted release for {late.grantee_code}'s grant"
            + (f" ({late.purpose})" if late.purpose else ""),
            "",
            late.line_id,
            late.grant_id,
        )
        for late in result.overdue_deliveries
    ]
    return rows


def agenda_csv(result: Board, *, bom: bool = True) -> bytes:
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
            "grant_id",
        ]
    ]
    for row in _agenda_rows(result):
        rows.append(
            [
                row.department_code,
                row.department_name,
                row.item,
                row.state,
                row.age_days,
                row.due_at.isoformat() if row.due_at else "",
                "yes" if row.overdue else "no",
                row.note,
                row.legal_basis,
                row.line_id,
                row.grant_id,
            ]
        )
    return _csv(rows, bom=bom)


def agenda_markdown(result: Board, now: datetime) -> str:
    """The agenda as the meeting reads it: one section per department, escalations first, then
    overdue deliveries."""
    lines = [f"# 协调会议程 Coordination agenda ({now.date().isoformat()})", ""]
    by_department: dict[str, list[AgendaRow]] = defaultdict(list)
    for row in _agenda_rows(result):
        by_department[f"{row.department_name} ({row.department_code})"].append(row)
    if not by_department:
        lines.append("Nothing outstanding.")
    for department, items in sorted(by_department.items()):
        lines += [
            f"## {department}",
            "",
            "| item | state | age (days) | due | overdue | note | legal basis |",
            "|---|---|---|---|---|---|---|",
        ]
        order = {"escalated": 0, "delivery_escalated": 2, "delivery_overdue": 3}
        for item in sorted(items, key=lambda i: (order.get(i.state, 1), -i.age_days)):
            due = item.due_at.date().isoformat() if item.due_at else ""
            note, basis = (
                text.replace("|", "/").replace("\n", " ") for text in (item.note, item.legal_basis)
            )
            lines.append(
                f"| {item.item} | {item.state} | {item.age_days} | {due} | "
                f"{'yes' if item.overdue else ''} | {note} | {basis} |"
            )
        lines.append("")
    return "\n".join(lines)
