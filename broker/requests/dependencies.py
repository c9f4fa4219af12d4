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


class LineLock:
    """The line named by the path, for the caller. It is looked up and locked when the route
    calls it, after FastAPI has validated the body: a malformed body is a 422 whether or not the
    line exists, and a line the caller may not see is a 404 like an unknown one."""

    def __init__(self, line_id: uuid.UUID, session: SessionDep, principal: Authenticated) -> None:
        self.line_id, self.session, self.principal = line_id, session, principal

    async def __call__(self) -> RequestLine:
        return await service.get_line(
            session=self.session, principal=self.principal, line_id=self.line_id, for_update=True
        )


LockedLine = Annotated[LineLock, Depends()]
