"""Audit exports as JSON Lines or RFC 4180 CSV, ending with a trailer a recipient can check.

Rows go straight from the driver to the encoder: a Core select of the columns (no ORM objects),
fetched in batches through a server-side cursor, each batch encoded with prebuilt C encoders.
The bytes are exactly those of encoding `event_document(event)` plus its hash, row by row
(tests/audit/test_audit_export_speed_equivalence.py holds the two side by side).
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.chain import timestamp
from broker.audit.models import AuditEvent
from broker.audit.service import EventFilter, chain_head
from catalog.exports import safe_cell

ExportFormat = Literal["jsonl", "csv"]
CSV_COLUMNS = [
    "seq",
    "id",
    "time",
    "actor_subject",
    "actor_department",
    "actor_roles",
    "actor_client",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "request_id",
    "client_address",
    "details",
    "prev_hash",
    "hash",
]
_CHUNK_BYTES = 64 * 1024
_BATCH = 2000
# The columns in table order: seq, id, time, actor_subject, actor_department, actor_roles,
# actor_client, action, object_type, object_id, outcome, request_id, client_address, details,
# prev_hash, hash (the same order as CSV_COLUMNS).
_COLUMNS = [AuditEvent.__table__.c[name] for name in CSV_COLUMNS]
# json.dumps builds a new encoder on every call with non-default options; these are built once.
_JSONL = json.JSONEncoder(ensure_ascii=False).encode
_DETAILS = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
# A cell can only need quoting (catalog.exports.safe_cell) when it starts with one of these.
_RISKY_FIRST = frozenset("'=+-@\t\r")


def _time(value: datetime) -> str:
    """`chain.timestamp`, without strftime for the UTC values the column type returns."""
    if value.tzinfo is UTC and value.year >= 1000:
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return timestamp(value)


def _jsonl_lines(rows: Sequence[Any]) -> list[str]:
    encode, time_ = _JSONL, _time
    lines = []
    for (
        seq,
        id_,
        time,
        subject,
        department,
        roles,
        client,
        action,
        object_type,
        object_id,
        outcome,
        request_id,
        client_address,
        details,
        prev_hash,
        hash_,
    ) in rows:
        lines.append(
            encode(
                {
                    "seq": seq,
                    "id": str(id_),
                    "time": time_(time),
                    "actor": {
                        "subject": subject,
                        "department": department,
                        "roles": list(roles),
                        "client_id": client,
                    },
                    "action": action,
                    "object": {"type": object_type, "id": object_id},
                    "outcome": outcome,
                    "request_id": request_id,
                    "client_address": client_address,
                    "details": details,
                    "prev_hash": prev_hash,
                    "hash": hash_,
                }
            )
        )
    lines.append("")  # the newline after the last line of the batch
    return lines


def _cell(value: str | None) -> str:
    if value is None:
        return ""
    if value and value[0] in _RISKY_FIRST:
        return safe_cell(value)
    return value


def _csv_records(rows: Sequence[Any]) -> Iterable[list[Any]]:
    cell, time_, details_ = _cell, _time, _DETAILS
    for (
        seq,
        id_,
        time,
        subject,
        department,
        roles,
        client,
        action,
        object_type,
        object_id,
        outcome,
        request_id,
        client_address,
        details,
        prev_hash,
        hash_,
    ) in rows:
        yield [
            "" if seq is None else seq,
            str(id_),
            time_(time),
            cell(subject),
            cell(department),
            cell(" ".join(roles)),
            cell(client),
            cell(action),
            cell(object_type),
            cell(object_id),
            cell(outcome),
            cell(request_id),
            cell(client_address),
            cell(details_(details)),
            cell(prev_hash),
            cell(hash_),
        ]


def _csv_row(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        ["" if v is None else safe_cell(v) for v in values]
    )
    return buffer.getvalue()


async def export_chunks(
    *, session: AsyncSession, filters: EventFilter, format: ExportFormat
) -> AsyncIterator[str]:
    """The export, in chunks of about 64 KiB, streamed from a server-side cursor.

    The trailer gives the count, the seq range and last hash of the exported events, and the
    chain head when the export began, so a recipient can check completeness against a verify.
    """
    head_seq, head_hash = await chain_head(session=session)
    filters.check()
    query = filters.apply(select(*_COLUMNS)).order_by(AuditEvent.seq)
    count, first_seq, last_seq, last_hash = 0, None, None, None
    parts: list[str] = []
    size = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if format == "csv":
        parts.append(_csv_row(CSV_COLUMNS))
    result = await session.stream(query.execution_options(yield_per=_BATCH))
    async for rows in result.partitions(_BATCH):
        if not rows:
            continue
        if format == "jsonl":
            text = "\n".join(_jsonl_lines(rows))
        else:
            writer.writerows(_csv_records(rows))
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        parts.append(text)
        size += len(text)
        count += len(rows)
        if first_seq is None:
            first_seq = rows[0][0]
        last_seq, last_hash = rows[-1][0], rows[-1][-1]
        if size >= _CHUNK_BYTES:
            yield "".join(parts)
            parts, size = [], 0
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
        parts.append(_csv_row(row))
    yield "".join(parts)
