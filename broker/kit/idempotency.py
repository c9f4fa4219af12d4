"""Idempotency-Key for submits: same key and body replays, another body 422, in flight 409.

The key is claimed in its own committed transaction before the work starts, so a concurrent
retry on any replica sees it; the stored answer commits with the work itself.
"""

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from core.errors import Conflict, FieldError, InvalidInput
from core.models import Base
from core.time import utcnow


class IdempotencyRecord(Base):
    """A write that carried an Idempotency-Key: replayed for the same body, refused for another."""

    __tablename__ = "idempotency_record"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    subject: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("subject", "key"),)


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


async def claim(
    factory: async_sessionmaker[AsyncSession], subject: str, key: str, print_: str
) -> IdempotencyRecord | None:
    """None when the key is new (now claimed); the finished record when this is a replay."""
    async with factory() as session:
        session.add(
            IdempotencyRecord(subject=subject, key=key, fingerprint=print_, created_at=utcnow())
        )
        try:
            await session.commit()
            return None
        except IntegrityError:
            await session.rollback()
        existing = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.subject == subject, IdempotencyRecord.key == key
            )
        )
        await session.commit()
    assert existing is not None
    if existing.fingerprint != print_:
        raise InvalidInput(
            "This Idempotency-Key was used with a different request.",
            errors=[FieldError("header.Idempotency-Key", "Use a new key for a new request.")],
        )
    if existing.status_code is None:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry later.")
    return existing


async def complete(
    session: AsyncSession, subject: str, key: str, status_code: int, response: dict[str, Any]
) -> None:
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.subject == subject, IdempotencyRecord.key == key
        )
    )
    assert record is not None
    record.status_code, record.response = status_code, response


async def release(factory: async_sessionmaker[AsyncSession], subject: str, key: str) -> None:
    """The work failed: forget the claim so the client may retry with the same key."""
    async with factory() as session:
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.subject == subject,
                IdempotencyRecord.key == key,
                IdempotencyRecord.status_code.is_(None),
            )
        )
        await session.commit()
