"""What a request route gets handed: the caller's context, and the line it acts on, locked."""

import uuid
from typing import Annotated

from fastapi import Depends, Request

from broker.audit.dependencies import AuditActor
from broker.auth.dependencies import Authenticated
from broker.kit.session import SessionDep
from broker.requests import service
from broker.requests.models import RequestLine
from broker.requests.transitions import Context
from core.time import utcnow


def context(
    request: Request, session: SessionDep, principal: Authenticated, actor: AuditActor
) -> Context:
    return Context(
        session=session,
        principal=principal,
        actor=actor,
        settings=request.app.state.settings,
        now=utcnow(),
    )


Ctx = Annotated[Context, Depends(context)]


async def locked_line(
    line_id: uuid.UUID, session: SessionDep, principal: Authenticated
) -> RequestLine:
    """The line named by the path, locked until the request's transaction ends; a line the
    caller may not see is a 404 like an unknown one."""
    return await service.get_line(
        session=session, principal=principal, line_id=line_id, for_update=True
    )


LockedLine = Annotated[RequestLine, Depends(locked_line)]
