"""Requests: drafting a bundle, submitting it, and reading what the caller may see.

What happens to a line after submission is `transitions`; where it goes is `policy`. Request
status is derived from the lines, never stored.
"""

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Literal

from sqlalchemy import ColumnElement, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import AuditObject
from broker.auth.models import Role
from broker.auth.principal import Principal, viewer_of
from broker.grants import masking
from broker.grants.schemas import Conditions
from broker.requests import clock, policy, transitions
from broker.requests.models import LineKind, LineState, Request, RequestLine
from broker.requests.schemas import LineIn, MaskedColumn, ProposedTerms, RequestCreate
from broker.requests.transitions import TERMINAL, Context
from broker.scenarios.models import Phase, Scenario
from catalog.datasets.models import DataItem, Dataset
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind
from catalog.vocab import DatasetStatus
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound

S = LineState


# ---------------------------------------------------------------- reading and access


def request_status(request: Request) -> Literal["draft", "in_progress", "completed", "withdrawn"]:
    """Derived from the lines: withdrawn when all were, completed when none is still open."""
    states = {line.state for line in request.lines}
    if request.submitted_at is None:
        return "draft"
    if states and states <= {S.withdrawn}:
        return "withdrawn"
    if states and states <= TERMINAL:
        return "completed"
    return "in_progress"


def proposed_terms(line: RequestLine) -> ProposedTerms | None:
    """The pending four-eyes proposal as the next steward (and the requester) sees it."""
    pending = line.pending_approval
    if pending is None:
        return None
    return ProposedTerms(
        by=pending["by"],
        decision=pending["decision"],
        conditions=Conditions.model_validate(pending.get("conditions") or {}),
        proposed_at=datetime.fromisoformat(pending["at"]) if pending.get("at") else None,
        differences=pending.get("differences", []),
        supersedes_by=(pending.get("supersedes") or {}).get("by"),
    )


def masked_columns(line: RequestLine) -> list[MaskedColumn]:
    """What the line's grant masks (or would): the catalog's defaults with the terms in force, or
    with the pending four-eyes proposal's while one waits, so the requester sees it before they
    accept. The grant stores the same computation (`grants.issue`)."""
    if line.dataset is None:
        return []
    pending = line.pending_approval
    raw = pending.get("conditions") if pending is not None else line.conditions
    terms = Conditions.model_validate(raw) if raw else None
    return [
        MaskedColumn.model_validate(mask)
        for mask in masking.column_masks(dataset=line.dataset, item=line.item, conditions=terms)
    ]


def _is_requesting_side(principal: Principal, request: Request) -> bool:
    return principal.department_id == request.requesting_department_id


def _sees_every_line(principal: Principal, request: Request) -> bool:
    """The requesting department, the platform (its admins, and its stewards who countersign
    leaders' decisions), leaders who coordinate and auditors who inspect."""
    return (
        principal.is_platform_admin
        or policy.countersigns(principal)
        or principal.has_any(Role.leader, Role.auditor)
        or _is_requesting_side(principal, request)
    )


def may_see_request(principal: Principal, request: Request) -> bool:
    """Whoever sees every line, and the owners of any line (who see only theirs)."""
    return _sees_every_line(principal, request) or any(
        line.owner_department_id == principal.department_id for line in request.lines
    )


def _may_see_line(principal: Principal, line: RequestLine) -> bool:
    return line.owner_department_id == principal.department_id or _sees_every_line(
        principal, line.request
    )


def may_see_line(principal: Principal, line: RequestLine, *, sees_scenario_whole: bool) -> bool:
    """A line on a scenario's board: everyone who sees the scenario whole (its lead department,
    the people listed on it) sees every line; anyone else as `visible_lines` lets them."""
    return sees_scenario_whole or _may_see_line(principal, line)


def visible_lines(principal: Principal, request: Request) -> list[RequestLine]:
    """The lines of a request the caller may read: a steward owning some lines sees the header
    and its own lines only, never another department's lines, declarations or grants (issue 14:
    each department sees only its part); everyone who sees the request whole sees them all."""
    if _sees_every_line(principal, request):
        return list(request.lines)
    return [line for line in request.lines if line.owner_department_id == principal.department_id]


async def get_request(
    *, session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> Request:
    request = await session.get(Request, request_id)
    if request is None or not may_see_request(principal, request):
        raise NotFound(f"No request has the id '{request_id}'.")
    return request


async def get_line(
    *, session: AsyncSession, principal: Principal, line_id: uuid.UUID, for_update: bool = False
) -> RequestLine:
    """A line the caller may see, locked for the decision about to be taken on it."""
    query = select(RequestLine).where(RequestLine.id == line_id)
    if for_update:
        query = query.with_for_update(of=RequestLine)
    line = await session.scalar(query)
    if line is None or not _may_see_line(principal, line):
        raise NotFound(f"No request line has the id '{line_id}'.")
    return line


# ---------------------------------------------------------------- drafting


async def _scenario_for(session: AsyncSession, principal: Principal, code: str) -> Scenario:
    """The caller's scenario; one it takes no part in reads exactly like an unknown code."""
    scenario = await session.scalar(select(Scenario).where(Scenario.code == code))
    takes_part = scenario is not None and (
        scenario.lead_department_id == principal.department_id
        or principal.department_code in scenario.members
    )
    if scenario is None or not takes_part:
        raise InvalidInput(
            f"No scenario you take part in has the code '{code}'.",
            errors=[
                FieldError(
                    "body.scenario_code",
                    "Use the code of a scenario your department leads or is a member of "
                    "(GET /v1/scenarios), or create it first.",
                )
            ],
        )
    if scenario.phase == Phase.retired:
        raise Conflict(f"Scenario '{code}' is retired; it takes no new requests.")
    return scenario


async def _requesting_department(session: AsyncSession, principal: Principal) -> Department:
    """The caller's department, which will be the grantee of what it asks for.

    An enterprise never requests, so it is never a grantee: its people work under the lead's
    grants as contractors (issue 14), also if a token from elsewhere gives them `requester`.
    """
    department = await departments.get_by_id(session=session, department_id=principal.department_id)
    if department.kind == DepartmentKind.enterprise:
        raise Forbidden(
            f"'{department.code}' is an enterprise; it cannot request data. Its people work "
            "under the lead department's grants as contractors."
        )
    return department


def _check_usage_period(start: date, end: date, today: date) -> None:
    if end < today:
        raise InvalidInput(
            f"The usage period ended on {end.isoformat()}, in the past.",
            errors=[FieldError("body.usage_end", "Give a usage period that ends today or later.")],
        )


def _hidden_from(principal: Principal, dataset: Dataset) -> bool:
    """Another department's draft, which the catalog does not show the caller."""
    return dataset.status == DatasetStatus.draft and not viewer_of(principal).may_see_drafts_of(
        dataset.owner_department_id
    )


def _unknown_dataset(code: str, location: str) -> InvalidInput:
    return InvalidInput(
        f"No dataset has the code '{code}'.",
        errors=[FieldError(location, "Use a code from the catalog (GET /v1/datasets).")],
    )


async def _published_dataset(
    session: AsyncSession, principal: Principal, code: str, location: str
) -> Dataset:
    """A requestable dataset; another department's draft reads exactly like an unknown code."""
    dataset = await session.scalar(select(Dataset).where(Dataset.code == code))
    if dataset is None:
        raise _unknown_dataset(code, location)
    if dataset.status != DatasetStatus.published:
        if _hidden_from(principal, dataset):
            raise _unknown_dataset(code, location)
        raise InvalidInput(
            f"Dataset '{code}' is {dataset.status.value}; only published datasets can be "
            "requested.",
            errors=[FieldError(location, "Choose a published dataset.")],
        )
    return dataset


async def _line_from(
    session: AsyncSession, principal: Principal, spec: LineIn, position: int, location: str
) -> RequestLine:
    freshness = spec.freshness_need.model_dump(mode="json") if spec.freshness_need else None
    if spec.item_code is not None:
        item = await session.scalar(select(DataItem).where(DataItem.code == spec.item_code))
        dataset = await session.get(Dataset, item.dataset_id) if item else None
        if item is None or dataset is None or _hidden_from(principal, dataset):
            raise InvalidInput(
                f"No data item has the code '{spec.item_code}'.",
                errors=[
                    FieldError(f"{location}.item_code", "Use an item code from GET /v1/items.")
                ],
            )
        await _published_dataset(session, principal, dataset.code, f"{location}.item_code")
        return RequestLine(
            position=position,
            kind=LineKind.item,
            item=item,
            dataset=dataset,
            owner=dataset.owner,
            state=S.draft,
            freshness_need=freshness,
        )
    if spec.dataset_code is not None:
        dataset = await _published_dataset(
            session, principal, spec.dataset_code, f"{location}.dataset_code"
        )
        return RequestLine(
            position=position,
            kind=LineKind.dataset,
            dataset=dataset,
            owner=dataset.owner,
            state=S.draft,
            freshness_need=freshness,
        )
    assert spec.believed_department_code is not None
    holder = await departments.find_by_code(session=session, code=spec.believed_department_code)
    if holder is None:
        raise InvalidInput(
            f"No department has the code '{spec.believed_department_code}'.",
            errors=[FieldError(f"{location}.believed_department_code", "Use a department code.")],
        )
    return RequestLine(
        position=position,
        kind=LineKind.need,
        need=spec.need,
        owner=holder,
        state=S.draft,
        freshness_need=freshness,
    )


async def create_request(*, ctx: Context, data: RequestCreate) -> Request:
    """A draft bundle for a scenario the caller's department leads or takes part in."""
    requester = await _requesting_department(ctx.session, ctx.principal)
    scenario = await _scenario_for(ctx.session, ctx.principal, data.scenario_code)
    _check_usage_period(data.usage_start, data.usage_end, ctx.now.astimezone(clock.SHANGHAI).date())
    request = Request(
        scenario=scenario,
        # the object, not just its id: the answer reads it back, and async sessions never
        # lazy-load (a member department's request failed with a 500 that way)
        requesting_department=requester,
        created_by=ctx.principal.client_id or ctx.principal.subject,
        title=data.title,
        purpose=data.purpose,
        legal_basis=data.legal_basis,
        usage_start=data.usage_start,
        usage_end=data.usage_end,
        lines=[],
    )
    ctx.session.add(request)
    for index, spec in enumerate(data.lines):
        request.lines.append(
            await _line_from(ctx.session, ctx.principal, spec, index, f"body.lines.{index}")
        )
    await ctx.session.flush()
    await audit.record(
        ctx.session,
        ctx.actor,
        "request.created",
        AuditObject("request", str(request.id)),
        details={"scenario": scenario.code, "lines": len(request.lines), "title": request.title},
    )
    return request


def _require_draft_owner(ctx: Context, request: Request) -> None:
    if not _is_requesting_side(ctx.principal, request):
        raise Forbidden("Only the requesting department changes its request.")
    if request.submitted_at is not None:
        raise Conflict("The request was submitted; lines can no longer be added.")


async def add_lines(
    *, ctx: Context, request: Request, specs: list[LineIn], item_codes: list[str]
) -> tuple[int, list[str]]:
    """Add lines to a draft; pasted item codes that match nothing are listed back, not added."""
    _require_draft_owner(ctx, request)
    position = len(request.lines)
    added = 0
    for index, spec in enumerate(specs):
        request.lines.append(
            await _line_from(ctx.session, ctx.principal, spec, position, f"body.lines.{index}")
        )
        position += 1
        added += 1
    unknown: list[str] = []
    wanted = [c.strip() for c in item_codes if c.strip()]
    found = {
        item.code: item
        for item in (
            await ctx.session.scalars(select(DataItem).where(DataItem.code.in_(wanted)))
        ).all()
    }
    for code in dict.fromkeys(wanted):
        item = found.get(code)
        dataset = await ctx.session.get(Dataset, item.dataset_id) if item else None
        if item is None or dataset is None or dataset.status != DatasetStatus.published:
            unknown.append(code)
            continue
        request.lines.append(
            RequestLine(
                position=position,
                kind=LineKind.item,
                item=item,
                dataset=dataset,
                owner=dataset.owner,
                state=S.draft,
            )
        )
        position += 1
        added += 1
    await ctx.session.flush()
    await audit.record(
        ctx.session,
        ctx.actor,
        "request.lines_added",
        AuditObject("request", str(request.id)),
        details={"added": added, "unknown_codes": unknown},
    )
    return added, unknown


async def submit(*, ctx: Context, request: Request) -> Request:
    """Split the bundle into per-department work: every line is routed by policy at once."""
    _require_draft_owner(ctx, request)
    if not request.lines:
        raise InvalidInput(
            "The request has no lines; add items, datasets or needs before submitting.",
            errors=[FieldError("body.lines", "Add at least one line.")],
        )
    _check_usage_period(
        request.usage_start, request.usage_end, ctx.now.astimezone(clock.SHANGHAI).date()
    )
    for line in request.lines:
        if line.dataset is not None and line.dataset.status != DatasetStatus.published:
            raise InvalidInput(
                f"Line {line.position} asks for '{line.dataset.code}', which is now "
                f"{line.dataset.status.value}.",
                errors=[FieldError(f"lines.{line.position}", "Remove or replace this line.")],
            )
    request.submitted_at = ctx.now
    await ctx.session.flush()
    submitted = audit.Entry(
        "request.submitted",
        AuditObject("request", str(request.id)),
        details={"lines": len(request.lines)},
    )
    await transitions.route_all(ctx=ctx, lines=request.lines, opening=[submitted])
    return request


# ---------------------------------------------------------------- queries


def _waiting_since() -> ColumnElement[datetime]:
    """When a line joined an inbox: routed to its owner, or settled by the leader for a
    countersignature (a line refused on routing has no routing moment)."""
    return case(
        (RequestLine.state == S.awaiting_countersignature, RequestLine.decided_at),
        else_=RequestLine.routed_at,
    )


def inbox_position(line: RequestLine) -> datetime:
    """A line's place in the inbox, as `_waiting_since` orders it."""
    since = line.decided_at if line.state == S.awaiting_countersignature else line.routed_at
    assert since is not None
    return since


async def inbox(
    *, session: AsyncSession, principal: Principal, after: tuple[datetime, str] | None, limit: int
) -> list[RequestLine]:
    """Lines waiting for the caller's department, oldest first; for a platform steward also
    every leader's decision awaiting a countersignature."""
    waiting = (RequestLine.owner_department_id == principal.department_id) & RequestLine.state.in_(
        [S.pending_owner, S.pending_registration]
    )
    if policy.countersigns(principal):
        waiting = waiting | (RequestLine.state == S.awaiting_countersignature)
    since = _waiting_since()
    query = select(RequestLine).where(waiting).order_by(since, RequestLine.id).limit(limit)
    if after is not None:
        moment, line_id = after
        query = query.where(
            (since > moment) | ((since == moment) & (RequestLine.id > uuid.UUID(line_id)))
        )
    return list((await session.scalars(query)).all())


async def lock_lines(
    *, session: AsyncSession, principal: Principal, line_ids: Iterable[uuid.UUID]
) -> list[RequestLine]:
    """Lines the caller may see, all locked by one statement in id order, as asked for.

    A batch that locked its lines one by one in the caller's order, deciding each (and so taking
    the audit chain's lock) before locking the next, deadlocked against an overlapping batch on
    PostgreSQL. Locked up front in one canonical order, overlapping batches queue on their first
    shared line instead; they take the chain's lock only once they hold every line.
    """
    wanted = list(dict.fromkeys(line_ids))
    query = (
        select(RequestLine)
        .where(RequestLine.id.in_(wanted))
        .order_by(RequestLine.id)
        .with_for_update(of=RequestLine)
        .execution_options(populate_existing=True)
    )
    found = {line.id: line for line in (await session.scalars(query)).unique()}
    for line_id in wanted:
        line = found.get(line_id)
        if line is None or not _may_see_line(principal, line):
            raise NotFound(f"No request line has the id '{line_id}'.")
    return [found[line_id] for line_id in wanted]
