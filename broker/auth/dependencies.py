"""Authentication and role checks as FastAPI dependencies: one per route says who may call it."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2

from broker.auth.models import Role
from broker.auth.principal import Principal, viewer_of
from broker.auth.tokens import InvalidToken, LocalTokens, verify
from broker.kit.session import SessionDep
from catalog.access import Viewer
from core.errors import Forbidden, Unauthorized

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes={r.value: f"act as {r.value}" for r in Role}
        )
    ),
    scheme_name="oauth2",
    description="Client credentials at /oauth/token, or a token from the city's identity provider. "
    "Send it as `Authorization: Bearer <token>`.",
    auto_error=False,
)


def local_tokens(request: Request) -> LocalTokens:
    """The process's parsed signing keys and already-verified tokens (one per app)."""
    state = request.app.state
    local: LocalTokens | None = getattr(state, "local_tokens", None)
    if local is None:
        local = LocalTokens()
        state.local_tokens = local
    return local


async def current_principal(
    request: Request,
    session: SessionDep,
    authorization: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller behind the bearer token; 401 with an RFC 6750 challenge when there is none."""
    if not authorization:
        raise Unauthorized("Send an access token: `Authorization: Bearer <token>`.", error=None)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized(
            "The Authorization header must be `Bearer <token>`.", error="invalid_request"
        )

    try:
        principal = await verify(
            token,
            session=session,
            settings=request.app.state.settings,
            external=request.app.state.external_jwks,
            local=local_tokens(request),
        )
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from exc
    request.state.principal = principal
    return principal


Authenticated = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency letting through principals holding at least one of `roles`, else 403."""
    names = ", ".join(r.value for r in roles)

    async def check(principal: Authenticated) -> Principal:
        if not principal.has_any(*roles):
            raise Forbidden(f"This action needs one of the roles: {names}.")
        return principal

    return check


PlatformAdmin = Annotated[Principal, Depends(require_roles(Role.platform_admin))]


def secret_hashing_limiter(request: Request) -> CapacityLimiter:
    """The process's one bound on concurrent scrypt work (`auth_hash_concurrency`)."""
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "secret_hashing_limiter", None)
    if limiter is None:
        limiter = CapacityLimiter(state.settings.auth_hash_concurrency)
        state.secret_hashing_limiter = limiter
    return limiter


HashingLimiter = Annotated[CapacityLimiter, Depends(secret_hashing_limiter)]


async def current_viewer(principal: Authenticated) -> Viewer:
    return viewer_of(principal)


CatalogViewer = Annotated[Viewer, Depends(current_viewer)]
