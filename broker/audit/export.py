"""Audit exports as JSON Lines or RFC 4180 CSV, ending with a trailer a recipient can check."""

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.chain import event_document, timestamp
from broker.audit.service import EventFilter, chain_head, stream_events
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


def _csv_row(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        ["" if v is None else safe_cell(v) for v in values]
    )
    return buffer.getvalue()


def _csv_values(document: dict[str, Any], hash_: str) -> list[Any]:
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


async def export_chunks(
    *, session: AsyncSession, filters: EventFilter, format: ExportFormat
) -> AsyncIterator[str]:
    """The export, in chunks of about 64 KiB, streamed from a server-side cursor.

    The trailer gives the count, the seq range and last hash of the exported events, and the
    chain head when the export began, so a recipient can check completeness against a verify.
    """
    head_seq, head_hash = await chain_head(session=session)
    count, first_seq, last_seq, last_hash = 0, None, None, None
    parts: list[str] = []
    size = 0
    if format == "csv":
        parts.append(_csv_row(CSV_COLUMNS))
    async for event in stream_events(session=session, filters=filters):
        document = event_document(event)
        if format == "jsonl":
            line = json.dumps({**document, "hash": event.hash}, ensure_ascii=False) + "\n"
        else:
            line = _csv_row(_csv_values(document, event.hash))
        parts.append(line)
        size += len(line)
        count += 1
        first_seq = first_seq if first_seq is not None else event.seq
        last_seq, last_hash = event.seq, event.hash
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
