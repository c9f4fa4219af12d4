"""Who an audit event names: the verified caller, the request id and the client address."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from broker.audit.service import Actor, AuditObject, Outcome, record
from broker.auth.dependencies import Authenticated
from broker.auth.principal import Principal
from core.errors import DomainError


def actor_of(request: Request, principal: Principal | None) -> Actor:
    request_id = getattr(request.state, "request_id", None)
    address = request.client.host if request.client else None
    if principal is None:
        return Actor(subject=None, department=None, request_id=request_id, client_address=address)
    return Actor(
        subject=principal.subject,
        department=principal.department_code,
        roles=tuple(sorted(r.value for r in principal.roles)),
        client_id=principal.client_id,
        request_id=request_id,
        client_address=address,
    )


async def audit_actor(request: Request, principal: Authenticated) -> Actor:
    return actor_of(request, principal)


AuditActor = Annotated[Actor, Depends(audit_actor)]

OBJECT_ID_LENGTH = 200  # AuditEvent.object_id is String(200)


async def record_denial(request: Request, error: DomainError) -> None:
    """Every 403 leaves one `access.denied` event, in its own transaction (the request's failed).

    The one audit record made outside a service, by design: a denial has no service call that
    succeeded, and the event must outlive the request's rolled-back transaction, so it gets a
    session and a commit of its own.
    """
    route = request.scope.get("route")
    operation = route.name if isinstance(route, APIRoute) else None
    target = f"{request.method} {request.url.path}"
    details: dict[str, Any] = {"operation": operation, "reason": error.detail}
    if len(target) > OBJECT_ID_LENGTH:
        # The caller chose the URL; cut to the column, whole path in details, so the 403 stands.
        details["path"] = request.url.path
        target = target[:OBJECT_ID_LENGTH]
    async with request.app.state.session_factory() as session:
        await record(
            session,
            actor_of(request, getattr(request.state, "principal", None)),
            "access.denied",
            AuditObject("route", target),
            Outcome.denied,
            details,
        )
        await session.commit()
