"""Audit exports as JSON Lines or RFC 4180 CSV, ending with a trailer a recipient can check.

Rows go straight from the driver to the encoder (issue 17): a Core select of the columns (no
ORM objects), fetched in batches through a server-side cursor. The id, time and JSON columns are
read as the stored text; JSON text that SQLAlchemy wrote as plain ASCII on one line is already
what json.dumps(value, ensure_ascii=False) gives and goes into a JSONL line as it is, anything
else is decoded and encoded again. The bytes are those of encoding `event_document(event)` plus
its hash row by row, as the export did before (tests/audit/test_audit_export_speed_equivalence.py
holds the two side by side).
"""

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import DateTime, Text, cast, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.chain import timestamp
from broker.audit.models import AuditEvent
from broker.audit.service import EVENT_FIELDS, EventFilter, chain_head
from catalog.exports import safe_cell

ExportFormat = Literal["jsonl", "csv"]
CSV_COLUMNS = list(EVENT_FIELDS)
_CHUNK_BYTES = 64 * 1024
_BATCH = 2000
# json.dumps builds a new encoder on every call with non-default options; these are built once.
_DETAILS = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False).encode
_STRING = json.encoder.encode_basestring  # json.dumps(s, ensure_ascii=False)
# A cell can only need quoting (catalog.exports.safe_cell) when it starts with one of these.
_RISKY_FIRST = frozenset("'=+-@\t\r")


def _columns(dialect: str) -> list[Any]:
    """The table's columns in CSV_COLUMNS order, as near to the stored text as the driver allows.

    The id, the time and the two JSON columns come back as the database holds them (no UUID,
    datetime or json.loads per row); `_id_text`, `_time_text` and `_json_text` turn them into
    the exported text.
    """
    table = AuditEvent.__table__.c
    columns: list[Any] = [table[name] for name in CSV_COLUMNS]
    raw = {"id", "actor_roles", "details"}
    if dialect == "sqlite":
        raw.add("time")
    for index, name in enumerate(CSV_COLUMNS):
        if name in raw:
            column = table[name]
            columns[index] = (
                type_coerce(column, Text) if dialect == "sqlite" else cast(column, Text)
            )
        elif name == "time":
            columns[index] = type_coerce(table[name], DateTime(timezone=True))
    return columns


def _id_text(raw: Any) -> str:
    """str(uuid) of the id as stored: 32 lowercase hex digits (SQLite) or the dashed form."""
    if isinstance(raw, str):
        if len(raw) == 36:
            return raw
        if len(raw) == 32 and raw.lower() == raw:
            return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return str(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))


def _time_text(raw: Any) -> str:
    """`chain.timestamp` of the stored time: SQLite's text, or PostgreSQL's aware datetime."""
    if isinstance(raw, str):
        if len(raw) == 26 and raw[10] == " " and raw[19] == ".":
            return f"{raw[:10]}T{raw[11:]}Z"  # SQLAlchemy's SQLite format, always UTC here
        value = datetime.fromisoformat(raw)
        return timestamp(value if value.tzinfo else value.replace(tzinfo=UTC))
    if raw.tzinfo is not UTC:
        raw = raw.astimezone(UTC)
    if raw.year >= 1000:
        return str(raw.replace(tzinfo=None).isoformat(timespec="microseconds")) + "Z"
    return timestamp(raw)


def _json_text(raw: str | None) -> str:
    """json.dumps(value, ensure_ascii=False) of a JSON column, from the text stored.

    SQLAlchemy stores json.dumps(value) (ASCII, ", " and ": "), so text with no escape sequence
    and on one line is already that; anything else is decoded and encoded again.
    """
    if raw is None:
        return "null"
    if "\\u" in raw or "\n" in raw or "\r" in raw:
        return _JSON_TEXT(json.loads(raw))
    return raw


def _jsonl_lines(rows: Sequence[Any]) -> list[str]:
    string, id_text, time_text, json_text = _STRING, _id_text, _time_text, _json_text

    def text(value: str | None) -> str:
        return "null" if value is None else string(value)

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
            f'{{"seq": {seq}, "id": "{id_text(id_)}", "time": "{time_text(time)}", '
            f'"actor": {{"subject": {text(subject)}, "department": {text(department)}, '
            f'"roles": {json_text(roles)}, "client_id": {text(client)}}}, '
            f'"action": {text(action)}, '
            f'"object": {{"type": {text(object_type)}, "id": {text(object_id)}}}, '
            f'"outcome": {text(outcome)}, "request_id": {text(request_id)}, '
            f'"client_address": {text(client_address)}, "details": {json_text(details)}, '
            f'"prev_hash": {text(prev_hash)}, "hash": {text(hash_)}}}'
        )
    lines.append("")  # the newline after the last line of the batch
    return lines


def _csv_records(rows: Sequence[Any], roles_cache: dict[str, str]) -> list[list[Any]]:
    """The CSV records of a batch; every text cell goes through `safe_cell` when it could run."""
    risky, safe, id_text, time_text, details_, loads = (
        _RISKY_FIRST,
        safe_cell,
        _id_text,
        _time_text,
        _DETAILS,
        json.loads,
    )
    records = []
    for row in rows:
        cells: list[Any] = [
            "" if v is None else safe(v) if v[:1] in risky else v for v in row[3:13]
        ]
        roles = row[5]
        joined = roles_cache.get(roles)
        if joined is None:
            joined = " ".join(loads(roles))
            joined = safe(joined) if joined[:1] in risky else joined
            if len(roles_cache) < 4096:  # a few role sets, in practice
                roles_cache[roles] = joined
        cells[2] = joined
        details = details_(loads(row[13]))
        prev_hash, hash_ = row[14], row[15]
        records.append(
            [
                row[0],
                id_text(row[1]),
                time_text(row[2]),
                *cells,
                safe(details) if details[:1] in risky else details,
                safe(prev_hash) if prev_hash[:1] in risky else prev_hash,
                safe(hash_) if hash_[:1] in risky else hash_,
            ]
        )
    return records


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
    query = filters.apply(select(*_columns(session.get_bind().dialect.name)))
    query = query.order_by(AuditEvent.seq)
    roles_cache: dict[str, str] = {}
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
            writer.writerows(_csv_records(rows, roles_cache))
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
