"""The hash chain's arithmetic: what is hashed, and how, for every event."""

import hashlib
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


def compute_hash(prev_hash: str, document: dict[str, Any]) -> str:
    """sha256 over the previous hash and the RFC 8785 canonical JSON of the event."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(rfc8785.dumps(document))
    return digest.hexdigest()
