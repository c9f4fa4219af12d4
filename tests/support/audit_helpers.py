"""Reading the audit log straight from the database, as an inspector with SQL access would."""

from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from broker.audit.models import AuditEvent


async def events(app: FastAPI) -> list[AuditEvent]:
    async with app.state.session_factory() as session:
        rows = list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())
        await session.commit()
        return rows


async def actions_after(app: FastAPI, seq: int) -> list[str]:
    return [e.action for e in await events(app) if e.seq > seq]


async def head(app: FastAPI) -> int:
    rows = await events(app)
    return rows[-1].seq if rows else 0


def details_of(event: AuditEvent) -> dict[str, Any]:
    return event.details
