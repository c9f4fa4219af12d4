"""A request line's life after submission (DESIGN.md §4): routing, the owner's decision, four-eyes,
questions, conditions, withdrawal, escalation and the leader's word.

Every change of state goes through `move`, which checks `ALLOWED`, stamps the line, writes the
line's history and the audit event in the caller's transaction. An approval hands the line to
`grants`, which issues the grant.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.config import Settings
from broker.grants import service as grants
from broker.grants.models import Grant
from broker.grants.schemas import Conditions
from broker.grants.terms import combine, is_unconditional, loosenings
from broker.requests import clock, policy
from broker.requests.models import Decision, LineKind, LineState, RequestLine
from broker.requests.schemas import Countersignature, LeaderDecision, OwnerDecision
from catalog.datasets.models import DataItem, Dataset
from catalog.departments import service as departments
from catalog.departments.models import Department
from catalog.vocab import DataGrade, DatasetStatus
from core.errors import Conflict, FieldError, Forbidden, InvalidInput

S = LineState
# The state table: which states each action may start from; anything else is a 409 naming the
# state. Where an action leads is the transition's to say (an approval may wait for four-eyes).
ALLOWED: dict[str, frozenset[LineState]] = {
    "route": frozenset({S.draft}),
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
            S.awaiting_countersignature,
        }
    ),
    "escalate": frozenset({S.rejected, S.pending_owner, S.pending_registration}),
    "leader_decide": frozenset({S.escalated}),
    "countersign": frozenset({S.awaiting_countersignature}),
    "countersign_refused": frozenset({S.awaiting_countersignature}),
}
TERMINAL = frozenset({S.approved, S.auto_approved, S.rejected_final, S.withdrawn, S.not_held})


@dataclass(frozen=True)
class Context:
    """Who acts, in which transaction, under which settings, at which moment."""

    session: AsyncSession
    principal: Principal
    actor: Actor
    settings: Settings
    now: datetime


def _step(
    ctx: Context, line: RequestLine, action: str, to: LineState, payload: dict[str, Any] | None
) -> tuple[Decision, audit.Entry]:
    """The line's history entry and the audit event of one step, once the table allows it."""
    if line.state not in ALLOWED.get(action, frozenset()):
        raise Conflict(
            f"Line {line.id} is {line.state.value}; '{action}' is not possible now.",
            extra={"state": line.state.value},
        )
    from_state = line.state
    decision = Decision(
        id=uuid.uuid4(),
        line_id=line.id,
        action=action,
        actor_subject=_acting(ctx),
        actor_department=ctx.actor.department or "",
        from_state=from_state.value,
        to_state=to.value,
        payload=payload or {},
        created_at=ctx.now,
    )
    event = audit.Entry(
        f"line.{action}",
        AuditObject("request_line", str(line.id)),
        details={"from": from_state.value, "to": to.value, **(payload or {})},
    )
    return decision, event


async def move(
    *,
    ctx: Context,
    line: RequestLine,
    action: str,
    to: LineState,
    payload: dict[str, Any] | None = None,
) -> None:
    """The one way a line changes state: allowed by the table, recorded in its history and in
    the audit trail."""
    decision, event = _step(ctx, line, action, to, payload)
    line.state = to
    ctx.session.add(decision)
    await audit.record_many(ctx.session, ctx.actor, [event])


def _acting(ctx: Context) -> str:
    """Who a line's history names as having taken a step."""
    return ctx.actor.client_id or ctx.actor.subject or "unknown"


def _start_clock(ctx: Context, line: RequestLine) -> None:
    due, basis = clock.add_working_days(ctx.now, ctx.settings.reply_working_days)
    line.routed_at, line.due_at, line.clock_basis = ctx.now, due.astimezone(UTC), basis.value


def _approval(line: RequestLine) -> grants.Approval:
    dataset = line.dataset
    assert dataset is not None
    return grants.Approval(
        line_id=line.id,
        request_id=line.request_id,
        scenario_id=line.request.scenario_id,
        grantee=line.request.requesting_department,
        dataset=dataset,
        item=line.item,
        usage_end=line.request.usage_end,
        purpose=line.request.purpose,
    )


async def _issue_grant(ctx: Context, line: RequestLine, conditions: Conditions | None) -> None:
    await grants.issue(
        session=ctx.session,
        actor=ctx.actor,
        now=ctx.now,
        approval=_approval(line),
        conditions=conditions,
        delivery_working_days=ctx.settings.delivery_working_days,
    )


async def route(*, ctx: Context, line: RequestLine) -> None:
    """Send a submitted line where the routing policy says, and store why (audited too)."""
    owner = await ctx.session.get(Department, line.owner_department_id)
    assert owner is not None
    line.freshness_warning = policy.freshness_warning(line)
    decided = policy.route(line=line, owner_name=owner.name, settings=ctx.settings)
    if decided.starts_clock:
        _start_clock(ctx, line)
    line.route_reason = decided.reason
    payload: dict[str, Any] = {"reason": decided.reason}
    if decided.state == S.rejected:
        line.reason, line.refusal_basis = decided.reason, decided.refusal_basis
        payload["legal_basis"] = decided.refusal_basis
    await move(ctx=ctx, line=line, action="route", to=decided.state, payload=payload)
    if decided.state == S.auto_approved:
        await _issue_grant(ctx, line, None)


# The columns routing sets on a line, written for a whole bundle by one UPDATE (`route_all`).
_ROUTED = (
    "state",
    "freshness_warning",
    "route_reason",
    "routed_at",
    "due_at",
    "clock_basis",
    "reason",
    "refusal_basis",
)


async def route_all(
    *, ctx: Context, lines: Sequence[RequestLine], opening: Sequence[audit.Entry] = ()
) -> None:
    """Route a submitted bundle: for every line what `route` decides, stores and records, in the
    same order, with the same events and grants (and so the same chain a line-by-line run
    writes), after the `opening` events.

    Routing is pure (`policy`), so every line is decided in memory first; then the lines are
    updated by one statement, the histories and grants inserted by one each, and the events
    appended to the chain under one lock (issue 17: 95 lines took 597 statements).
    """
    due, basis = clock.add_working_days(ctx.now, ctx.settings.reply_working_days)
    events = list(opening)
    decisions: list[Decision] = []
    issued: list[Grant] = []
    rows: list[dict[str, Any]] = []
    for line in lines:
        decided = policy.route(line=line, owner_name=line.owner.name, settings=ctx.settings)
        row: dict[str, Any] = {
            "state": decided.state,
            "freshness_warning": policy.freshness_warning(line),
            "route_reason": decided.reason,
            "routed_at": line.routed_at,
            "due_at": line.due_at,
            "clock_basis": line.clock_basis,
            "reason": line.reason,
            "refusal_basis": line.refusal_basis,
        }
        if decided.starts_clock:
            row.update(routed_at=ctx.now, due_at=due.astimezone(UTC), clock_basis=basis.value)
        payload: dict[str, Any] = {"reason": decided.reason}
        if decided.state == S.rejected:
            row.update(reason=decided.reason, refusal_basis=decided.refusal_basis)
            payload["legal_basis"] = decided.refusal_basis
        decision, event = _step(ctx, line, "route", decided.state, payload)
        decisions.append(decision)
        events.append(event)
        rows.append(row)
        if decided.state == S.auto_approved:
            grant, granted = grants.issued(
                actor=ctx.actor,
                now=ctx.now,
                approval=_approval(line),
                conditions=None,
                delivery_working_days=ctx.settings.delivery_working_days,
            )
            issued.append(grant)
            events.append(granted)
    await _update_lines(ctx, lines, rows)
    await _insert(ctx.session, decisions)
    await _insert(ctx.session, issued)
    await audit.record_many(ctx.session, ctx.actor, events)


async def _insert(session: AsyncSession, objects: Sequence[Decision | Grant]) -> None:
    """Insert objects built alike by one executemany of their plain rows, bypassing the unit of
    work, whose per-object bookkeeping cost more than routing a 95-line bundle (issue 17).
    Columns an object leaves unset take their defaults, as a flush would give them."""
    if not objects:
        return
    table = type(objects[0]).__table__
    assert isinstance(table, Table)
    rows = []
    for obj in objects:
        given = instance_state(obj).dict
        rows.append({c.key: given[c.key] for c in table.columns if c.key in given})
    await session.execute(insert(table), rows)


async def _update_lines(
    ctx: Context, lines: Sequence[RequestLine], rows: Sequence[dict[str, Any]]
) -> None:
    """Write the routed columns of many lines in one executemany, each still checked against
    the version it was read at, and leave the loaded lines as the database now holds them."""
    if not lines:
        return
    table = RequestLine.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(
            {
                **{name: bindparam(f"v_{name}", type_=table.c[name].type) for name in _ROUTED},
                "version": table.c.version + 1,
                "updated_at": bindparam("v_updated_at", type_=table.c.updated_at.type),
            }
        )
    )
    params = [
        {
            "b_id": line.id,
            "b_version": line.version,
            "v_updated_at": ctx.now,
            **{f"v_{name}": value for name, value in row.items()},
        }
        for line, row in zip(lines, rows, strict=True)
    ]
    result = await ctx.session.execute(statement, params)
    matched = getattr(result, "rowcount", -1)
    if matched not in (-1, len(lines)):
        raise StaleDataError(
            f"UPDATE statement on table 'request_line' expected to update {len(lines)} row(s); "
            f"{matched} were matched."
        )
    for line, row in zip(lines, rows, strict=True):
        for name, value in row.items():
            set_committed_value(line, name, value)
        set_committed_value(line, "version", line.version + 1)
        set_committed_value(line, "updated_at", ctx.now)


def _require_owner_steward(ctx: Context, line: RequestLine) -> None:
    if (
        Role.steward not in ctx.principal.roles
        or line.owner_department_id != ctx.principal.department_id
    ):
        raise Forbidden("Only a steward of the department this line is routed to may decide it.")


def _require_requester(ctx: Context, line: RequestLine) -> None:
    if (
        ctx.principal.department_id != line.request.requesting_department_id
        or Role.requester not in ctx.principal.roles
    ):
        raise Forbidden("Only a requester of the requesting department may do this.")


async def decide(*, ctx: Context, line: RequestLine, decision: OwnerDecision) -> RequestLine:
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
            grants.check_conditions(
                dataset=line.dataset,
                item=line.item,
                conditions=decision.conditions,
                location="body.conditions",
            )
        terms = own = decision.conditions or Conditions()
        if policy.needs_two_approvers(line):
            agreed = await _four_eyes(ctx, line, decision.decision, terms)
            if agreed is None:
                return line
            terms = agreed
        line.pending_approval = None
        if is_unconditional(terms):
            await move(
                ctx=ctx,
                line=line,
                action=decision.decision,
                to=S.approved,
                payload={"declaration": declaration},
            )
            await _issue_grant(ctx, line, None)
        else:
            line.conditions = terms.model_dump(mode="json")
            payload: dict[str, Any] = {"declaration": declaration, "conditions": line.conditions}
            if own != terms:
                # Combined terms keep one reason per lifted mask; this approver's stays on record.
                payload["approver_conditions"] = own.model_dump(mode="json")
            await move(
                ctx=ctx,
                line=line,
                action=decision.decision,
                to=S.approved_with_conditions,
                payload=payload,
            )
        return line
    if decision.decision == "needs_info":
        line.question, line.paused_at = decision.question, ctx.now
        await move(
            ctx=ctx,
            line=line,
            action="needs_info",
            to=S.needs_info,
            payload={"question": decision.question},
        )
    elif decision.decision == "reject":
        line.reason, line.refusal_basis = decision.reason, decision.legal_basis
        line.pending_approval = None
        await move(
            ctx=ctx,
            line=line,
            action="reject",
            to=S.rejected,
            payload={
                "reason": decision.reason,
                "legal_basis": decision.legal_basis,
                "declaration": declaration,
            },
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
        await move(
            ctx=ctx,
            line=line,
            action=decision,
            to=S.pending_owner,
            payload={"four_eyes": "first approval", "conditions": mine["conditions"]},
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
    await move(
        ctx=ctx,
        line=line,
        action=decision,
        to=S.pending_owner,
        payload={"four_eyes": "looser than the pending proposal", "differences": differences},
    )
    return None


async def _reroute(ctx: Context, line: RequestLine, code: str) -> None:
    """The owner does not hold the data: the line goes to the department that does."""
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
    await move(
        ctx=ctx,
        line=line,
        action="not_held",
        to=line.state,
        payload={"from_department": str(previous), "to_department": target.code},
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
    await move(ctx=ctx, line=line, action="register", to=S.draft, payload={"item": item_code})
    await route(ctx=ctx, line=line)


async def answer(*, ctx: Context, line: RequestLine, text: str) -> RequestLine:
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
    await move(ctx=ctx, line=line, action="answer", to=S.pending_owner, payload={"answer": text})
    return line


async def accept_conditions(*, ctx: Context, line: RequestLine) -> RequestLine:
    """The requester accepts the owner's conditions: the line is approved and granted on them."""
    _require_requester(ctx, line)
    await move(
        ctx=ctx, line=line, action="accept", to=S.approved, payload={"conditions": line.conditions}
    )
    terms = None if line.conditions is None else Conditions.model_validate(line.conditions)
    await _issue_grant(ctx, line, terms)
    return line


async def decline_conditions(*, ctx: Context, line: RequestLine) -> RequestLine:
    """The requester will not take the data on the owner's conditions: the line is withdrawn."""
    _require_requester(ctx, line)
    await move(
        ctx=ctx,
        line=line,
        action="decline",
        to=S.withdrawn,
        payload={"conditions": line.conditions},
    )
    return line


async def withdraw(*, ctx: Context, line: RequestLine) -> RequestLine:
    """Any line not yet granted may be withdrawn by its requester."""
    _require_requester(ctx, line)
    await move(ctx=ctx, line=line, action="withdraw", to=S.withdrawn)
    return line


async def escalate(*, ctx: Context, line: RequestLine, reason: str) -> RequestLine:
    """To coordination: a refusal the requester contests, or a line left overdue."""
    if not ctx.principal.is_platform_admin:
        _require_requester(ctx, line)
        if line.state != S.rejected and not policy.is_overdue(line, ctx.now):
            raise Conflict(
                f"Line {line.id} is {line.state.value} and not overdue; only refusals and overdue "
                "lines go to coordination.",
                extra={"state": line.state.value},
            )
    line.escalated_at = ctx.now
    await move(ctx=ctx, line=line, action="escalate", to=S.escalated, payload={"reason": reason})
    return line


async def escalate_sweep(*, ctx: Context) -> list[RequestLine]:
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
        if line.state == S.rejected or policy.is_overdue(line, ctx.now):
            line.escalated_at = ctx.now
            why = "refused" if line.state == S.rejected else "overdue"
            await move(
                ctx=ctx, line=line, action="escalate", to=S.escalated, payload={"reason": why}
            )
            moved.append(line)
    return moved


async def leader_decide(
    *, ctx: Context, line: RequestLine, decision: LeaderDecision
) -> RequestLine:
    """The leader settles an escalated line.

    国发〔2016〕51号 makes coordination an upward channel, not an unlimited one: core-grade data is
    never granted by override; overriding an owner's refusal names its legal basis and the meeting
    that decided it; the catalog's terms bind the leader (`_within_catalog_terms`); and an
    approval of L4 or important-grade data issues no grant until a platform steward countersigns
    it (`countersign`).
    """
    if Role.leader not in ctx.principal.roles:
        raise Forbidden("Only a leader settles escalated lines.")
    if line.state not in ALLOWED["leader_decide"]:
        raise Conflict(
            f"Line {line.id} is {line.state.value}; 'leader_decide' is not possible now.",
            extra={"state": line.state.value},
        )
    record = {
        "note": decision.note,
        "legal_basis": decision.legal_basis,
        "meeting_reference": decision.meeting_reference,
    }
    terms: Conditions | None = None
    if decision.decision != "rejected_final":
        await _check_override(ctx, line, decision)
        terms = _within_catalog_terms(line, decision.conditions)
    line.decided_at = ctx.now
    line.reason = decision.note
    line.pending_approval = None
    if decision.decision == "rejected_final":
        await move(ctx=ctx, line=line, action="leader_decide", to=S.rejected_final, payload=record)
        return line
    line.conditions = terms.model_dump(mode="json") if terms is not None else None
    if policy.needs_countersignature(line):
        await move(
            ctx=ctx,
            line=line,
            action="leader_decide",
            to=S.awaiting_countersignature,
            payload={**record, "conditions": line.conditions, "countersignature": "required"},
        )
        return line
    await move(
        ctx=ctx,
        line=line,
        action="leader_decide",
        to=S.approved,
        payload={**record, "conditions": line.conditions},
    )
    await _issue_grant(ctx, line, terms)
    return line


CORE_DATA_RULE = "核心数据不得通过协调授权 (core-grade data is never granted by override)"
COUNTERSIGN_RULE = (
    "协调决定须由另一人会签 (a leader's decision is countersigned by someone other than the "
    "leader who made it)"
)


async def _check_override(ctx: Context, line: RequestLine, decision: LeaderDecision) -> None:
    """An approving override: never of core-grade data (409); of a refusal, only with a legal
    basis and a meeting reference (422 naming each missing field)."""
    if line.dataset is not None and line.dataset.data_grade == DataGrade.core:
        raise Conflict(
            f"Line {line.id} asks for core-grade data: {CORE_DATA_RULE}.",
            extra={"state": line.state.value, "rule": CORE_DATA_RULE},
        )
    if not await _escalated_from_refusal(ctx, line):
        return
    missing = [
        FieldError(f"body.{field}", "Overriding a refusal needs it.")
        for field in ("legal_basis", "meeting_reference")
        if getattr(decision, field) is None
    ]
    if missing:
        raise InvalidInput(
            "Overriding an owner's refusal names its legal basis and the meeting that decided it.",
            errors=missing,
        )


def _within_catalog_terms(line: RequestLine, conditions: Conditions | None) -> Conditions | None:
    """The leader's terms, held to what the owner published in the catalog (issue 14: item
    defaults and in-platform-only still apply to an override).

    An item's default masking is applied by `grants.issue` to every grant; only the owner's own
    approvers may lift it, so a coordination decision that lifts it is refused (422). A dataset
    the catalog offers for in-platform use only (共享方式 平台内使用 alone) is granted for
    in-platform use whatever the leader wrote.
    """
    if conditions is not None and conditions.lift_masking:
        raise InvalidInput(
            "A coordination decision cannot lift an item's default masking; only the owning "
            "department's approvers can.",
            errors=[
                FieldError(
                    "body.conditions.lift_masking",
                    "A coordination decision cannot lift an item's default masking; leave it out.",
                )
            ],
        )
    if conditions is not None:
        grants.check_conditions(
            dataset=line.dataset, item=line.item, conditions=conditions, location="body.conditions"
        )
    if policy.in_platform_only(line) and not (conditions and conditions.in_platform_only):
        return (conditions or Conditions()).model_copy(update={"in_platform_only": True})
    return conditions


async def countersign(
    *, ctx: Context, line: RequestLine, decision: Countersignature
) -> RequestLine:
    """A platform steward's word on a leader's approval of L4 or important-grade data (issue 14:
    such lines settled by the leader need a platform steward's countersignature before a grant is
    issued). Countersigned, the line is approved and granted on the leader's terms, with the
    defaults `grants.issue` applies; refused, it is refused for good with the note as reason.

    The countersigner is a steward of the platform (`policy.countersigns`), never whoever made the
    leader's decision.
    """
    if not policy.countersigns(ctx.principal):
        raise Forbidden("Only a steward of the platform countersigns a leader's decision.")
    action = "countersign" if decision.decision == "countersign" else "countersign_refused"
    if line.state not in ALLOWED[action]:
        raise Conflict(
            f"Line {line.id} is {line.state.value}; only a line awaiting_countersignature can be "
            "countersigned.",
            extra={"state": line.state.value},
        )
    if await _leader_of(ctx, line) == _acting(ctx):
        raise Forbidden(
            f"You made the leader's decision on line {line.id}: {COUNTERSIGN_RULE}.",
            extra={"rule": COUNTERSIGN_RULE},
        )
    line.decided_at = ctx.now
    if decision.decision == "refuse":
        line.reason, line.conditions = decision.note, None
        await move(
            ctx=ctx, line=line, action=action, to=S.rejected_final, payload={"note": decision.note}
        )
        return line
    await move(
        ctx=ctx,
        line=line,
        action=action,
        to=S.approved,
        payload={"note": decision.note, "conditions": line.conditions},
    )
    terms = None if line.conditions is None else Conditions.model_validate(line.conditions)
    await _issue_grant(ctx, line, terms)
    return line


async def _leader_of(ctx: Context, line: RequestLine) -> str | None:
    """Who made the leader's decision now waiting for a countersignature."""
    return await ctx.session.scalar(
        select(Decision.actor_subject)
        .where(Decision.line_id == line.id, Decision.action == "leader_decide")
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(1)
    )


async def _escalated_from_refusal(ctx: Context, line: RequestLine) -> bool:
    """Whether the line came to coordination as a refusal (rather than overdue)."""
    from_state = await ctx.session.scalar(
        select(Decision.from_state)
        .where(Decision.line_id == line.id, Decision.action == "escalate")
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(1)
    )
    return from_state == S.rejected.value
