"""The request/approval engine: routing, decisions, clocks, escalation and grants (DESIGN.md §4).

Every transition goes through `_move`, which checks the state machine, stamps the line, writes
the line's history and the audit event in the caller's transaction. Request status is derived
from the lines, never stored.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Role
from broker.auth.principal import Principal, viewer_of
from broker.config import Settings
from broker.grants.models import Grant
from broker.requests import clock
from broker.requests.models import Decision, LineKind, LineState, Request, RequestLine
from broker.requests.schemas import (
    Conditions,
    LeaderDecision,
    LineIn,
    OwnerDecision,
    ProposedTerms,
    RequestCreate,
)
from broker.requests.terms import combine, is_unconditional, loosenings
from broker.scenarios.models import Phase, Scenario
from catalog.datasets.freshness import CYCLE_LENGTH
from catalog.datasets.models import DataItem, Dataset
from catalog.departments import service as departments
from catalog.departments.models import Department
from catalog.vocab import DataGrade, DatasetStatus, Sensitivity, ShareType, UpdateCycle
from core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound

S = LineState
# Which state each action may start from: anything else is a 409 naming the state.
ALLOWED: dict[str, frozenset[LineState]] = {
    "approve": frozenset({S.pending_owner}),
    "approve_with_conditions": frozenset({S.pending_owner}),
    "needs_info": frozenset({S.pending_owner}),
    "reject": frozenset({S.pending_owner}),
    "not_held": frozenset({S.pending_owner, S.pending_registration}),
    "register": frozenset({S.pending_registration}),
    "answer": frozenset({S.needs_info}),
    "accept": frozenset({S.approved_with_conditions}),
    "decline": frozenset({S.approved_with_conditions}),
    "withdraw": frozenset(
        {
            S.draft,
            S.pending_owner,
            S.pending_registration,
            S.needs_info,
            S.approved_with_conditions,
            S.rejected,
            S.escalated,
        }
    ),
    "escalate": frozenset({S.rejected, S.pending_owner, S.pending_registration}),
    "leader_decide": frozenset({S.escalated}),
}
TERMINAL = frozenset({S.approved, S.auto_approved, S.rejected_final, S.withdrawn, S.not_held})


@dataclass(frozen=True)
class Context:
    session: AsyncSession
    principal: Principal
    actor: Actor
    settings: Settings
    now: datetime


# ---------------------------------------------------------------- reading and access


def request_status(request: Request) -> Literal["draft", "in_progress", "completed", "withdrawn"]:
    states = {line.state for line in request.lines}
    if request.submitted_at is None:
        return "draft"
    if states and states <= {S.withdrawn}:
        return "withdrawn"
    if states and states <= TERMINAL:
        return "completed"
    return "in_progress"


def is_overdue(line: RequestLine, now: datetime) -> bool:
    return (
        line.state in (S.pending_owner, S.pending_registration)
        and line.due_at is not None
        and line.due_at < now
    )


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


def _is_requesting_side(principal: Principal, request: Request) -> bool:
    return principal.department_id == request.requesting_department_id


def may_see_request(principal: Principal, request: Request) -> bool:
    """Requesting department, owners of any line, the platform and leaders."""
    if principal.is_platform_admin or Role.leader in principal.roles:
        return True
    if _is_requesting_side(principal, request):
        return True
    return any(line.owner_department_id == principal.department_id for line in request.lines)


def _may_see_line(principal: Principal, line: RequestLine) -> bool:
    return (
        principal.is_platform_admin
        or Role.leader in principal.roles
        or line.owner_department_id == principal.department_id
        or _is_requesting_side(principal, line.request)
    )


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


async def create_request(ctx: Context, data: RequestCreate) -> Request:
    """A draft bundle for a scenario the caller's department leads or takes part in."""
    scenario = await _scenario_for(ctx.session, ctx.principal, data.scenario_code)
    _check_usage_period(data.usage_start, data.usage_end, ctx.now.astimezone(clock.SHANGHAI).date())
    request = Request(
        scenario=scenario,
        requesting_department_id=ctx.principal.department_id,
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
    ctx: Context, request: Request, specs: list[LineIn], item_codes: list[str]
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


# ---------------------------------------------------------------- transitions


async def _move(
    ctx: Context,
    line: RequestLine,
    action: str,
    to_state: LineState,
    payload: dict[str, Any] | None = None,
) -> None:
    if line.state not in ALLOWED.get(action, frozenset()):
        raise Conflict(
            f"Line {line.id} is {line.state.value}; '{action}' is not possible now.",
            extra={"state": line.state.value},
        )
    from_state = line.state
    line.state = to_state
    ctx.session.add(
        Decision(
            line_id=line.id,
            action=action,
            actor_subject=ctx.actor.client_id or ctx.actor.subject or "unknown",
            actor_department=ctx.actor.department or "",
            from_state=from_state.value,
            to_state=to_state.value,
            payload=payload or {},
            created_at=ctx.now,
        )
    )
    await audit.record(
        ctx.session,
        ctx.actor,
        f"line.{action}",
        AuditObject("request_line", str(line.id)),
        details={"from": from_state.value, "to": to_state.value, **(payload or {})},
    )


def _sensitivity(line: RequestLine) -> Sensitivity:
    dataset = line.dataset
    assert dataset is not None
    if line.item is not None:
        return line.item.sensitivity or dataset.sensitivity
    levels = [i.sensitivity or dataset.sensitivity for i in dataset.items] or [dataset.sensitivity]
    return max(levels, key=lambda s: s.level)


def needs_two_approvers(line: RequestLine) -> bool:
    """Four-eyes: L4 data or `important`-grade datasets need two different stewards."""
    if line.dataset is None:
        return False
    return _sensitivity(line) == Sensitivity.L4 or line.dataset.data_grade == DataGrade.important


def _freshness_warning(line: RequestLine) -> str | None:
    need, dataset = line.freshness_need, line.dataset
    if not need or dataset is None:
        return None
    wanted = UpdateCycle(need["update_cycle"])
    have, want = CYCLE_LENGTH[dataset.update_cycle], CYCLE_LENGTH[wanted]
    problems = []
    if want is not None and (have is None or have > want):
        problems.append(f"updated {dataset.update_cycle.value}, not {wanted.value}")
    if dataset.publication_lag_days > need["within_days"]:
        problems.append(
            f"published {dataset.publication_lag_days} days after period end, "
            f"not within {need['within_days']}"
        )
    return "; ".join(problems) or None


def _start_clock(ctx: Context, line: RequestLine) -> None:
    due, basis = clock.add_working_days(ctx.now, ctx.settings.reply_working_days)
    line.routed_at, line.due_at, line.clock_basis = ctx.now, due.astimezone(UTC), basis.value


async def _route(ctx: Context, line: RequestLine) -> None:
    """Decide where a submitted line goes, and store why (the reason is audited too)."""
    owner = await ctx.session.get(Department, line.owner_department_id)
    assert owner is not None
    line.freshness_warning = _freshness_warning(line)
    if line.kind == LineKind.need:
        _start_clock(ctx, line)
        line.route_reason = f"Not in the catalog: {owner.name} to register it or say who holds it."
        await _move(ctx, line, "route", S.pending_registration, {"reason": line.route_reason})
        return
    dataset = line.dataset
    assert dataset is not None
    sensitivity = _sensitivity(line)
    threshold = Sensitivity(ctx.settings.auto_approve_max_sensitivity)
    if dataset.share_type == ShareType.none:
        line.route_reason = f"不予共享 (not shared): {dataset.legal_basis}"
        line.reason = line.route_reason
        await _move(ctx, line, "route", S.rejected, {"reason": line.route_reason})
        return
    if (
        dataset.share_type == ShareType.unconditional
        and dataset.aggregated
        and sensitivity.level <= threshold.level
    ):
        line.route_reason = (
            f"Unconditional, a copy is at the platform, sensitivity {sensitivity.value} "
            f"<= {threshold.value}: approved on submit."
        )
        await _move(ctx, line, "route", S.auto_approved, {"reason": line.route_reason})
        await issue_grant(ctx, line, None)
        return
    why = []
    if dataset.share_type == ShareType.conditional:
        why.append(f"conditional sharing ({dataset.share_condition})")
    if not dataset.aggregated:
        why.append("no copy at the platform")
    if sensitivity.level > threshold.level:
        why.append(f"sensitivity {sensitivity.value} above {threshold.value}")
    if needs_two_approvers(line):
        why.append("two stewards must approve")
    _start_clock(ctx, line)
    line.route_reason = f"To {owner.name}: " + "; ".join(why) + "."
    await _move(ctx, line, "route", S.pending_owner, {"reason": line.route_reason})


ALLOWED["route"] = frozenset({S.draft})


async def submit(ctx: Context, request: Request) -> Request:
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
    await audit.record(
        ctx.session,
        ctx.actor,
        "request.submitted",
        AuditObject("request", str(request.id)),
        details={"lines": len(request.lines)},
    )
    for line in request.lines:
        await _route(ctx, line)
    await ctx.session.flush()
    return request


def _valid_until(line: RequestLine, conditions: dict[str, Any] | None) -> datetime:
    end = line.request.usage_end
    wanted = (conditions or {}).get("valid_until")
    if wanted:
        end = min(end, date.fromisoformat(wanted))
    return datetime.combine(end, time(23, 59, 59), tzinfo=clock.SHANGHAI).astimezone(UTC)


def check_conditions(line: RequestLine, conditions: Conditions, location: str) -> None:
    """Conditions may only name columns the line's dataset has (422 otherwise)."""
    dataset = line.dataset
    if dataset is None:
        return
    codes = {line.item.code} if line.item is not None else {i.code for i in dataset.items}
    named = (
        list(conditions.columns or [])
        + list(conditions.masking)
        + [f.column for f in conditions.row_filter]
    )
    unknown = sorted({c for c in named if c not in codes})
    if unknown:
        raise InvalidInput(
            f"The line covers no column(s) {', '.join(unknown)} of '{dataset.code}'.",
            errors=[FieldError(location, f"Name only the line's columns: {sorted(codes)}.")],
        )


async def issue_grant(ctx: Context, line: RequestLine, conditions: dict[str, Any] | None) -> Grant:
    """The grant for an approved line: exactly the approved columns, until the usage period ends."""
    dataset = line.dataset
    assert dataset is not None
    if line.item is not None:
        columns = [line.item.code]
    else:
        columns = list((conditions or {}).get("columns") or [i.code for i in dataset.items])
    grant = Grant(
        line_id=line.id,
        request_id=line.request_id,
        scenario_id=line.request.scenario_id,
        grantee_department_id=line.request.requesting_department_id,
        owner_department_id=dataset.owner_department_id,
        dataset=dataset,
        columns=columns,
        conditions=conditions or {},
        valid_from=ctx.now,
        valid_until=_valid_until(line, conditions),
        issued_by=ctx.actor.client_id or ctx.actor.subject or "system",
    )
    ctx.session.add(grant)
    await ctx.session.flush()
    await audit.record(
        ctx.session,
        ctx.actor,
        "grant.issued",
        AuditObject("grant", str(grant.id)),
        details={
            "line": str(line.id),
            "dataset": dataset.code,
            "columns": columns,
            "grantee": line.request.requesting_department.code,
            "valid_until": grant.valid_until.isoformat(),
        },
    )
    return grant


def _require_owner_steward(ctx: Context, line: RequestLine) -> None:
    if (
        Role.steward not in ctx.principal.roles
        or line.owner_department_id != ctx.principal.department_id
    ):
        raise Forbidden("Only a steward of the department this line is routed to may decide it.")


async def decide(ctx: Context, line: RequestLine, decision: OwnerDecision) -> RequestLine:
    """An owner's decision on one line, with its timeliness and confidentiality declaration."""
    _require_owner_steward(ctx, line)
    if line.state not in ALLOWED[decision.decision]:
        raise Conflict(
            f"Line {line.id} is {line.state.value}; '{decision.decision}' is not possible now.",
            extra={"state": line.state.value},
        )
    declaration = decision.declaration.model_dump(mode="json") if decision.declaration else None
    if declaration is not None:
        line.declaration = declaration
    line.decided_at = ctx.now
    if decision.decision in ("approve", "approve_with_conditions"):
        if decision.conditions is not None:
            check_conditions(line, decision.conditions, "body.conditions")
        terms = decision.conditions or Conditions()
        if needs_two_approvers(line):
            agreed = await _four_eyes(ctx, line, decision.decision, terms)
            if agreed is None:
                return line
            terms = agreed
        line.pending_approval = None
        if is_unconditional(terms):
            await _move(ctx, line, decision.decision, S.approved, {"declaration": declaration})
            await issue_grant(ctx, line, None)
        else:
            line.conditions = terms.model_dump(mode="json")
            await _move(
                ctx,
                line,
                decision.decision,
                S.approved_with_conditions,
                {"declaration": declaration, "conditions": line.conditions},
            )
        return line
    if decision.decision == "needs_info":
        line.question, line.paused_at = decision.question, ctx.now
        await _move(ctx, line, "needs_info", S.needs_info, {"question": decision.question})
    elif decision.decision == "reject":
        line.reason = decision.reason
        line.pending_approval = None
        await _move(
            ctx, line, "reject", S.rejected, {"reason": decision.reason, "declaration": declaration}
        )
    elif decision.decision == "not_held":
        await _reroute(ctx, line, decision.reroute_to or "")
    else:
        await _register(ctx, line, decision.item_code or "")
    return line


async def _four_eyes(
    ctx: Context, line: RequestLine, decision: str, terms: Conditions
) -> Conditions | None:
    """The terms two stewards agree on, or None while the line waits for a second approval.

    The first approval is a proposal the next steward sees on the line. An approval at least as
    strict as the pending proposal completes the pair, and the combined terms (never looser than
    either) take effect. One that is looser in any respect grants nothing: it becomes the pending
    proposal, naming what it loosens, until another steward (the first, or a third) agrees to it.
    """
    mine: dict[str, Any] = {
        "by": ctx.principal.subject,
        "decision": decision,
        "conditions": terms.model_dump(mode="json"),
        "at": ctx.now.isoformat(),
    }
    pending = line.pending_approval
    if pending is None:
        line.pending_approval = mine
        await _move(
            ctx,
            line,
            decision,
            S.pending_owner,
            {"four_eyes": "first approval", "conditions": mine["conditions"]},
        )
        return None
    if pending["by"] == ctx.principal.subject:
        raise Conflict(
            "You made the pending proposal; a second, different steward must approve.",
            extra={"state": line.state.value},
        )
    proposed = Conditions.model_validate(pending.get("conditions") or {})
    differences = loosenings(terms, proposed)
    agreed = None if differences else combine(proposed, terms)
    if agreed is not None:
        return agreed
    line.pending_approval = {
        **mine,
        "differences": differences,
        "supersedes": {"by": pending["by"], "conditions": pending.get("conditions")},
    }
    await _move(
        ctx,
        line,
        decision,
        S.pending_owner,
        {"four_eyes": "looser than the pending proposal", "differences": differences},
    )
    return None


async def _reroute(ctx: Context, line: RequestLine, code: str) -> None:
    target = await departments.find_by_code(session=ctx.session, code=code)
    if target is None or target.id == line.owner_department_id:
        raise InvalidInput(
            f"'{code}' is not another registered department.",
            errors=[FieldError("body.reroute_to", "Name the department that holds the data.")],
        )
    previous = line.owner_department_id
    line.owner = target
    line.pending_approval = None
    _start_clock(ctx, line)
    line.route_reason = f"Re-routed to {target.name}: the previous owner does not hold it."
    await _move(
        ctx,
        line,
        "not_held",
        line.state,
        {"from_department": str(previous), "to_department": target.code},
    )


async def _register(ctx: Context, line: RequestLine, item_code: str) -> None:
    """The owner registered the needed data; the line becomes an item line and is routed."""
    item = await ctx.session.scalar(select(DataItem).where(DataItem.code == item_code))
    dataset = await ctx.session.get(Dataset, item.dataset_id) if item else None
    if item is None or dataset is None or dataset.status != DatasetStatus.published:
        raise InvalidInput(
            f"'{item_code}' is no published item.",
            errors=[FieldError("body.item_code", "Register and publish the item first.")],
        )
    if dataset.owner_department_id != line.owner_department_id:
        raise Forbidden("Register the need with an item of your own department.")
    line.kind, line.item, line.dataset = LineKind.item, item, dataset
    await _move(ctx, line, "register", S.draft, {"item": item_code})
    await _route(ctx, line)


ALLOWED["register"] = frozenset({S.pending_registration})


def _require_requester(ctx: Context, line: RequestLine) -> None:
    if (
        not _is_requesting_side(ctx.principal, line.request)
        or Role.requester not in ctx.principal.roles
    ):
        raise Forbidden("Only a requester of the requesting department may do this.")


async def answer(ctx: Context, line: RequestLine, text: str) -> RequestLine:
    """The requester answers the owner's question; the clock resumes with the days it had left."""
    _require_requester(ctx, line)
    if line.state != S.needs_info:
        raise Conflict(
            f"Line {line.id} is {line.state.value}; there is no question to answer.",
            extra={"state": line.state.value},
        )
    if line.paused_at is not None and line.due_at is not None:
        left = clock.working_days_between(line.paused_at, line.due_at)
        due, basis = clock.add_working_days(ctx.now, max(left, 1))
        line.due_at, line.clock_basis = due.astimezone(UTC), basis.value
    line.answer, line.paused_at = text, None
    await _move(ctx, line, "answer", S.pending_owner, {"answer": text})
    return line


async def accept_conditions(ctx: Context, line: RequestLine) -> RequestLine:
    _require_requester(ctx, line)
    await _move(ctx, line, "accept", S.approved, {"conditions": line.conditions})
    await issue_grant(ctx, line, line.conditions)
    return line


async def decline_conditions(ctx: Context, line: RequestLine) -> RequestLine:
    _require_requester(ctx, line)
    await _move(ctx, line, "decline", S.withdrawn, {"conditions": line.conditions})
    return line


async def withdraw(ctx: Context, line: RequestLine) -> RequestLine:
    """Any line not yet granted may be withdrawn by its requester."""
    _require_requester(ctx, line)
    await _move(ctx, line, "withdraw", S.withdrawn)
    return line


async def escalate(ctx: Context, line: RequestLine, reason: str) -> RequestLine:
    """To coordination: a refusal the requester contests, or a line left overdue."""
    is_admin = ctx.principal.is_platform_admin
    if not is_admin:
        _require_requester(ctx, line)
        if line.state != S.rejected and not is_overdue(line, ctx.now):
            raise Conflict(
                f"Line {line.id} is {line.state.value} and not overdue; only refusals and overdue "
                "lines go to coordination.",
                extra={"state": line.state.value},
            )
    line.escalated_at = ctx.now
    await _move(ctx, line, "escalate", S.escalated, {"reason": reason})
    return line


async def escalate_sweep(ctx: Context) -> list[RequestLine]:
    """Move every overdue line and every refusal to coordination (the weekly dispatch list)."""
    candidates = (
        await ctx.session.scalars(
            select(RequestLine)
            .where(RequestLine.state.in_([S.rejected, S.pending_owner, S.pending_registration]))
            .order_by(RequestLine.due_at, RequestLine.id)
        )
    ).all()
    moved = []
    for line in candidates:
        if line.state == S.rejected or is_overdue(line, ctx.now):
            line.escalated_at = ctx.now
            why = "refused" if line.state == S.rejected else "overdue"
            await _move(ctx, line, "escalate", S.escalated, {"reason": why})
            moved.append(line)
    return moved


async def leader_decide(ctx: Context, line: RequestLine, decision: LeaderDecision) -> RequestLine:
    """The leader settles an escalated line; approvals issue the grant at once."""
    if Role.leader not in ctx.principal.roles:
        raise Forbidden("Only a leader settles escalated lines.")
    line.decided_at = ctx.now
    line.reason = decision.note
    if decision.decision == "rejected_final":
        await _move(ctx, line, "leader_decide", S.rejected_final, {"note": decision.note})
        return line
    conditions = decision.conditions.model_dump(mode="json") if decision.conditions else None
    if decision.conditions is not None:
        check_conditions(line, decision.conditions, "body.conditions")
    line.conditions = conditions
    await _move(
        ctx, line, "leader_decide", S.approved, {"note": decision.note, "conditions": conditions}
    )
    await issue_grant(ctx, line, conditions)
    return line


# ---------------------------------------------------------------- queries


async def inbox(
    *, session: AsyncSession, principal: Principal, after: tuple[datetime, str] | None, limit: int
) -> list[RequestLine]:
    """Lines waiting for the caller's department, oldest first."""
    query = (
        select(RequestLine)
        .where(
            RequestLine.owner_department_id == principal.department_id,
            RequestLine.state.in_([S.pending_owner, S.pending_registration]),
        )
        .order_by(RequestLine.routed_at, RequestLine.id)
        .limit(limit)
    )
    if after is not None:
        moment, line_id = after
        query = query.where(
            (RequestLine.routed_at > moment)
            | ((RequestLine.routed_at == moment) & (RequestLine.id > uuid.UUID(line_id)))
        )
    return list((await session.scalars(query)).all())


async def grants_by_line(
    session: AsyncSession, lines: Iterable[RequestLine]
) -> dict[uuid.UUID, uuid.UUID]:
    ids = [line.id for line in lines]
    if not ids:
        return {}
    rows = (
        await session.execute(select(Grant.line_id, Grant.id).where(Grant.line_id.in_(ids)))
    ).all()
    return {line_id: grant_id for line_id, grant_id in rows}


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
