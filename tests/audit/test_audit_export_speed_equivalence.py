"""The streamed Core-row export writes byte for byte what the ORM-object export wrote before it."""

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import export as export_module
from broker.audit.chain import event_document, timestamp
from broker.audit.export import CSV_COLUMNS, ExportFormat, export_chunks
from broker.audit.models import AuditEvent
from broker.audit.service import (
    Actor,
    AuditObject,
    EventFilter,
    Outcome,
    chain_head,
    record,
    verify_chain,
)
from broker.db import make_read_session_factory
from catalog.exports import safe_cell
from core.time import utcnow

# --- the implementation this one replaced (ORM objects, one json.dumps / csv writer per row) ---


def _reference_csv_row(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        ["" if v is None else safe_cell(v) for v in values]
    )
    return buffer.getvalue()


def _reference_csv_values(document: dict[str, Any], hash_: str) -> list[Any]:
    actor, obj = document["actor"], document["object"]
    return [
        document["seq"],
        document["id"],
        document["time"],
        actor["subject"],
        actor["department"],
        " ".join(actor["roles"]),
        actor["client_id"],
        document["action"],
        obj["type"],
        obj["id"],
        document["outcome"],
        document["request_id"],
        document["client_address"],
        json.dumps(document["details"], ensure_ascii=False, sort_keys=True),
        document["prev_hash"],
        hash_,
    ]


async def reference_export(
    session: AsyncSession, filters: EventFilter, format: ExportFormat
) -> AsyncIterator[str]:
    head_seq, head_hash = await chain_head(session=session)
    count, first_seq, last_seq, last_hash = 0, None, None, None
    parts: list[str] = []
    if format == "csv":
        parts.append(_reference_csv_row(CSV_COLUMNS))
    query = filters.apply(select(AuditEvent)).order_by(AuditEvent.seq)
    for event in (await session.scalars(query)).all():
        document = event_document(event)
        if format == "jsonl":
            line = json.dumps({**document, "hash": event.hash}, ensure_ascii=False) + "\n"
        else:
            line = _reference_csv_row(_reference_csv_values(document, event.hash))
        parts.append(line)
        count += 1
        first_seq = first_seq if first_seq is not None else event.seq
        last_seq, last_hash = event.seq, event.hash
    trailer = {
        "count": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "last_hash": last_hash,
        "chain_head_seq": head_seq,
        "chain_head_hash": head_hash,
        "filters": {
            k: (timestamp(v) if hasattr(v, "astimezone") else v)
            for k, v in asdict(filters).items()
            if v not in (None, {}) and k != "extra"
        },
    }
    if format == "jsonl":
        parts.append(json.dumps({"trailer": trailer}, ensure_ascii=False) + "\n")
    else:
        row: list[Any] = ["#trailer"] + [""] * (len(CSV_COLUMNS) - 1)
        row[CSV_COLUMNS.index("details")] = json.dumps(trailer, ensure_ascii=False, sort_keys=True)
        parts.append(_reference_csv_row(row))
    yield "".join(parts)


# --- a fixed, awkward set of events ------------------------------------------------------------

ACTORS = [
    Actor("alice", "tax", ("steward", "requester"), "tax-client", "r-1", "10.0.0.1"),
    Actor('=HYPERLINK("http://x")', None, (), None, None, None),
    Actor("'=cmd", "+dept", ("@role",), "-client", "\trequest", "\r10.0.0.2"),
    Actor("张三", "统计局", ("auditor",), "客户端", "请求", "::1"),
    Actor.system("scheduler"),
]
DETAILS: list[dict[str, Any]] = [
    {},
    {"before": {"name": "税务局", "version": 1}, "after": {"name": "=1+1", "version": 2}},
    {"é": "non-ASCII key", "z": [1, 2.5, True, None, {"b": '\u0007\n"\\', "a": -(2**53 - 1)}]},
    {"reason": "'@SUM(A1)", "big": 2**53 - 1, "nested": {"list": ["-", "+", "'", "''=x"]}},
    {"emoji": "🙂 \u2028 \u00a0", "empty": "", "zero": 0, "neg": -5},
]


async def seed(app: FastAPI) -> None:
    async with app.state.session_factory() as session:
        for index in range(23):
            await record(
                session,
                ACTORS[index % len(ACTORS)],
                ["department.updated", "token.issued", "access.denied", "=action"][index % 4],
                AuditObject(
                    ["department", "account", "route"][index % 3],
                    [None, "tax", "-1", "GET /v1/x", "@obj"][index % 5],
                ),
                [Outcome.success, Outcome.denied, Outcome.failure][index % 3],
                DETAILS[index % len(DETAILS)],
            )
        await session.commit()


async def collect(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


@pytest.mark.parametrize("format", ["jsonl", "csv"])
async def test_export_bytes_match_the_previous_implementation_for_every_filter(
    app: FastAPI, format: ExportFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(app)
    monkeypatch.setattr(export_module, "_BATCH", 4)  # many batches and chunk boundaries
    monkeypatch.setattr(export_module, "_CHUNK_BYTES", 1000)
    now = utcnow()
    cases = [
        EventFilter(),
        EventFilter(actor="alice"),
        EventFilter(department="统计局"),
        EventFilter(action_prefix="=act"),
        EventFilter(object_type="route", object_id="-1"),
        EventFilter(after_seq=7),
        EventFilter(since=now - timedelta(hours=1), until=now + timedelta(hours=1)),
        EventFilter(actor="nobody"),
    ]
    factory = make_read_session_factory(app.state.engine)
    for filters in cases:
        async with factory() as session:
            expected = await collect(reference_export(session, filters, format))
        async with factory() as session:
            got = await collect(export_chunks(session=session, filters=filters, format=format))
        assert got == expected, filters


async def test_verify_recomputes_every_awkward_event_as_the_append_hashed_it(app: FastAPI) -> None:
    """Non-ASCII keys and floats take the reference encoder, the rest the fast path."""
    await seed(app)
    async with make_read_session_factory(app.state.engine)() as session:
        verification = await verify_chain(session=session)
    assert (verification.ok, verification.count, verification.head_seq) == (True, 23, 23)
