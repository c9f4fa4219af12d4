"""Submitting a bundle routes every line at once: the audit chain, the lines' history and the
grants are what a line-by-line run produced, written in a fixed number of SQL statements.

`submit_95_lines.json` was recorded from the line-by-line implementation (one audit append, one
decision and one grant insert per line) before submit was rewritten to write in bulk. Ids and
moments differ run to run, so they are replaced by placeholders: each distinct id by its order
of first appearance, each ISO moment by "<time>". Set BROKER_RECORD_SUBMIT_FIXTURE=1 to record it
again (only ever from a build known to be right).
"""

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select

from broker.audit import service as audit
from broker.grants.models import Grant
from broker.requests.models import Decision, RequestLine
from support.audit_helpers import events, head
from support.identities import Identities
from support.workflow import District, all_item_codes, bundle, district

FIXTURE = Path(__file__).with_name("submit_95_lines.json")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


@pytest.fixture
async def d(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, identities: Identities
) -> District:
    return await district(admin_client, client, identities)


class _Placeholders:
    """Stable stand-ins for what differs run to run."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            value = _UUID.sub(lambda m: self.ids.setdefault(m[0], f"<id{len(self.ids)}>"), value)
            return _MOMENT.sub("<time>", value)
        return value


def _one_row_a_line(record: dict[str, Any]) -> str:
    parts = [
        f'"{key}": [\n' + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]"
        for key, rows in record.items()
    ]
    return "{\n" + ",\n".join(parts) + "\n}\n"


async def _submitted_record(app: FastAPI, request_code: str) -> dict[str, Any]:
    """The audit events, line histories and grants the submit wrote, in their order."""
    stand_in = _Placeholders()
    stand_in(request_code)
    request_id = uuid.UUID(request_code)
    async with app.state.session_factory() as session:
        lines = (
            await session.scalars(
                select(RequestLine)
                .where(RequestLine.request_id == request_id)
                .order_by(RequestLine.position)
            )
        ).all()
        for line in lines:
            stand_in(str(line.id))
        decisions = (
            await session.execute(
                select(Decision, RequestLine.position)
                .join(RequestLine, RequestLine.id == Decision.line_id)
                .where(RequestLine.request_id == request_id)
                .order_by(RequestLine.position, Decision.created_at)
            )
        ).all()
        grants = (
            await session.execute(
                select(Grant, RequestLine.position)
                .join(RequestLine, RequestLine.id == Grant.line_id)
                .where(Grant.request_id == request_id)
                .order_by(RequestLine.position)
            )
        ).all()
        await session.commit()
    chain = [
        {
            "action": e.action,
            "object": [e.object_type, stand_in(e.object_id)],
            "actor": stand_in([e.actor_subject, e.actor_department, e.actor_roles, e.actor_client]),
            "outcome": e.outcome,
            "details": stand_in(e.details),
        }
        for e in await events(app)
        if e.action.startswith(("request.submitted", "line.", "grant."))
    ]
    return {
        "events": chain,
        "lines": [
            stand_in(
                {
                    "position": line.position,
                    "state": line.state.value,
                    "route_reason": line.route_reason,
                    "freshness_warning": line.freshness_warning,
                    "clock": [line.routed_at is not None, line.due_at is not None],
                    "clock_basis": line.clock_basis,
                    "reason": line.reason,
                    "refusal_basis": line.refusal_basis,
                    "version": line.version,
                }
            )
            for line in lines
        ],
        "decisions": [
            stand_in(
                {
                    "line": position,
                    "action": decision.action,
                    "actor": [decision.actor_subject, decision.actor_department],
                    "states": [decision.from_state, decision.to_state],
                    "payload": decision.payload,
                }
            )
            for decision, position in decisions
        ],
        "grants": [
            stand_in(
                {
                    "line": position,
                    "columns": grant.columns,
                    "conditions": grant.conditions,
                    "purpose": grant.purpose,
                    "issued_by": grant.issued_by,
                    "status": grant.status.value,
                }
            )
            for grant, position in grants
        ],
    }


async def test_a_95_line_submit_writes_the_audit_chain_a_line_by_line_run_wrote(
    app: FastAPI, d: District
) -> None:
    draft = await bundle(d)
    submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    assert len(submitted.json()["lines"]) == len(all_item_codes()) == 95

    record = await _submitted_record(app, draft["id"])
    if os.environ.get("BROKER_RECORD_SUBMIT_FIXTURE"):
        FIXTURE.write_text(_one_row_a_line(record), "utf-8")
    expected = json.loads(FIXTURE.read_text("utf-8"))
    assert [e["action"] for e in record["events"]] == [e["action"] for e in expected["events"]]
    for key in ("events", "lines", "decisions", "grants"):
        assert len(record[key]) == len(expected[key]), key
        for position, (got, want) in enumerate(zip(record[key], expected[key], strict=True)):
            assert got == want, (key, position)

    async with app.state.session_factory() as session:
        verification = await audit.verify_chain(session=session)
        await session.commit()
    assert verification.ok, verification.explanation
    assert verification.count == await head(app)


async def _statements_of_submit(app: FastAPI, d: District, codes: list[str]) -> list[str]:
    draft = await bundle(d, codes)
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        submitted = await d.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert submitted.status_code == 200, submitted.text
    assert len(submitted.json()["lines"]) == len(codes)
    return statements


async def test_submit_takes_the_same_number_of_statements_for_1_10_or_95_lines(
    app: FastAPI, d: District
) -> None:
    """Routing is done in memory; events, histories, lines and grants are each written by one
    statement, and the chain's head is read once, whatever the number of lines."""
    codes = all_item_codes()
    counts = {n: len(await _statements_of_submit(app, d, codes[:n])) for n in (1, 10)}
    every = await _statements_of_submit(app, d, codes)
    counts[95] = len(every)
    assert counts[1] == counts[10] == counts[95], (counts, every)
    heads = [s for s in every if "audit_event" in s and "ORDER BY audit_event.seq DESC" in s]
    assert len(heads) == 1, heads
