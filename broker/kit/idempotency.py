"""Idempotency-Key on creating writes: same key and body replays, another body 422, in flight 409.

The key is claimed in its own committed transaction before the work starts, so a concurrent
retry on any replica sees it; the stored answer commits with the work itself, in the request's
transaction. A failed attempt releases the key for a retry. A claim left in flight longer than
`ABANDONED_AFTER` (its process died, or its commit failed after the claim) may be taken over.
"""

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import JSON, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.datastructures import UploadFile

from broker.kit.session import SessionDep
from core.errors import Conflict, FieldError, InvalidInput
from core.models import Base
from core.time import utcnow

HEADER = "Idempotency-Key"
ABANDONED_AFTER = timedelta(minutes=10)
_FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class IdempotencyRecord(Base):
    """A write that carried an Idempotency-Key: replayed for the same body, refused for another."""

    __tablename__ = "idempotency_record"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    subject: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("subject", "key"),)


async def fingerprint(request: Request) -> str:
    """What makes two requests the same: method, path and body (a form field by field, files by
    content, so an upload is hashed in chunks instead of being held in memory twice)."""
    digest = hashlib.sha256(f"{request.method}\0{request.url.path}\0".encode())
    if request.headers.get("content-type", "").startswith(_FORM_MEDIA_TYPES):
        form = await request.form()
        for name, value in sorted(form.multi_items(), key=lambda item: item[0]):
            digest.update(f"\0{name}=".encode())
            if isinstance(value, UploadFile):
                digest.update(f"file:{value.filename}\0".encode())
                while chunk := await value.read(1 << 20):
                    digest.update(chunk)
                await value.seek(0)
            else:
                digest.update(value.encode())
    else:
        digest.update(await request.body())
    return digest.hexdigest()


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
        assert existing is not None
        if existing.fingerprint != print_:
            raise InvalidInput(
                "This Idempotency-Key was used with a different request.",
                errors=[FieldError(f"header.{HEADER}", "Use a new key for a new request.")],
            )
        if existing.status_code is None:
            taken_over = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == existing.id,
                    IdempotencyRecord.status_code.is_(None),
                    IdempotencyRecord.created_at < utcnow() - ABANDONED_AFTER,
                )
                .values(created_at=utcnow())
            )
            await session.commit()
            if taken_over.rowcount == 1:  # type: ignore[attr-defined]
                return None
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry later."
            )
        await session.commit()
    return existing


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


class Replayed(Exception):
    """The request repeats a finished one: answer with what it answered."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(record.key)
        self.record = record


@dataclass
class Idempotency:
    """Handed to a create route: it says what the route answered, so a retry gets the same."""

    session: AsyncSession
    subject: str
    key: str | None
    remembered: dict[str, Any] = field(default_factory=dict)

    async def remember(
        self, result: BaseModel, *, status_code: int, headers: dict[str, str] | None = None
    ) -> None:
        """Store the answer in the request's transaction: it commits (or not) with the work."""
        if self.key is None:
            return
        record = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.subject == self.subject, IdempotencyRecord.key == self.key
            )
        )
        assert record is not None
        record.status_code = status_code
        record.response = result.model_dump(mode="json")
        record.headers = headers or {}


async def idempotency(
    request: Request,
    session: SessionDep,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=200,
            description="Retry-safe create: the same key with the same body replays the first "
            "answer (`Idempotent-Replayed: true`); with another body it is a 422.",
        ),
    ] = None,
) -> AsyncIterator[Idempotency]:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise RuntimeError("Declare Idempotent after the route's authentication dependency.")
    subject: str = principal.subject
    if key is None:
        yield Idempotency(session=session, subject=subject, key=None)
        return
    # End the read transaction authentication opened: on SQLite it holds the only write lock,
    # which the claim's own session needs.
    await session.commit()
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    replay = await claim(factory, subject, key, await fingerprint(request))
    if replay is not None:
        raise Replayed(replay)
    try:
        yield Idempotency(session=session, subject=subject, key=key)
    except BaseException:
        # Roll back first: on SQLite the failed work still holds the write lock the release needs.
        await session.rollback()
        await release(factory, subject, key)
        raise


Idempotent = Annotated[Idempotency, Depends(idempotency, scope="function")]


async def _replay(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Replayed)
    record = exc.record
    assert record.status_code is not None
    return JSONResponse(
        record.response,
        status_code=record.status_code,
        headers={**(record.headers or {}), "Idempotent-Replayed": "true"},
    )


def install_replay(app: FastAPI) -> None:
    app.add_exception_handler(Replayed, _replay)
