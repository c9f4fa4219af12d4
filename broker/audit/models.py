import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


class AuditEvent(Base):
    """One link of the hash chain: who did what to which object, with what outcome.

    Ordered by `seq` (gapless, allocated under a lock), never by time. `prev_hash` is UNIQUE so two
    writers that somehow read the same head cannot both append: the chain cannot fork.
    """

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(unique=True)
    time: Mapped[datetime]
    actor_subject: Mapped[str | None] = mapped_column(String(200))
    actor_department: Mapped[str | None] = mapped_column(String(32))
    actor_roles: Mapped[list[str]] = mapped_column(JSON)
    actor_client: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (
        Index("ix_audit_event_time", "time"),
        Index("ix_audit_event_action", "action"),
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_actor_department", "actor_department"),
    )
