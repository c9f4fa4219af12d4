"""The hash chain's arithmetic: what is hashed, and how, for every event."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import rfc8785

from broker.audit.models import AuditEvent

GENESIS_HASH = "0" * 64


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_document(event: AuditEvent) -> dict[str, Any]:
    """The event as exported and hashed: every field but its own hash."""
    return {
        "seq": event.seq,
        "id": str(event.id),
        "time": timestamp(event.time),
        "actor": {
            "subject": event.actor_subject,
            "department": event.actor_department,
            "roles": list(event.actor_roles),
            "client_id": event.actor_client,
        },
        "action": event.action,
        "object": {"type": event.object_type, "id": event.object_id},
        "outcome": event.outcome,
        "request_id": event.request_id,
        "client_address": event.client_address,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }


_MAX_SAFE_INTEGER = 2**53 - 1


def _plain(value: Any) -> bool:
    """True when json.dumps already produces RFC 8785 output for this value.

    That holds without floats (JCS formats numbers the ECMAScript way), with integers in the
    IEEE-754 safe range, and with ASCII keys (JCS sorts by UTF-16 code units, Python by code
    points; the two agree on ASCII). Events almost always qualify, which makes verifying a long
    chain several times faster than the pure-Python encoder.
    """
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    return False


def canonical_json(document: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) bytes of the document."""
    if _plain(document):
        try:
            text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference encoder decide
            pass
    return rfc8785.dumps(document)


def compute_hash(prev_hash: str, document: dict[str, Any]) -> str:
    """sha256 over the previous hash and the RFC 8785 canonical JSON of the event."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical_json(document))
    return digest.hexdigest()
