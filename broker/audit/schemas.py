import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from broker.audit.chain import event_document
from broker.audit.models import AuditEvent


class AuditActorRead(BaseModel):
    subject: str | None
    department: str | None
    roles: list[str]
    client_id: str | None


class AuditObjectRead(BaseModel):
    type: str
    id: str | None


class AuditEventRead(BaseModel):
    seq: int
    id: uuid.UUID
    time: datetime
    actor: AuditActorRead
    action: str
    object: AuditObjectRead
    outcome: str
    request_id: str | None
    client_address: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, event: AuditEvent) -> "AuditEventRead":
        return cls.model_validate({**event_document(event), "hash": event.hash})


class ChainVerification(BaseModel):
    ok: bool
    count: int = Field(description="Events checked before stopping (all of them when ok).")
    head_seq: int = Field(description="Last seq that verified.")
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = Field(
        default=None,
        description="edited, deleted, reordered, inserted, rewritten (vs. checkpoint) or truncated",
    )
    explanation: str | None = None
    checkpoint: dict[str, Any] | None = Field(
        default=None, description="The checkpoint's signed claims, when one was given."
    )


class Checkpoint(BaseModel):
    checkpoint: str = Field(description="Compact JWS over {seq, head_hash, time}; keep a copy.")
    seq: int
    head_hash: str
    time: str
