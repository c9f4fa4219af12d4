import base64
import binascii
from functools import partial
from typing import Annotated
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status

from broker.accounts import onboarding
from broker.accounts import service as accounts
from broker.accounts.schemas import (
    AccessToken,
    AccountCreate,
    AccountCreated,
    AccountImportResult,
    AccountRead,
    AccountRolesUpdate,
    AuthorizationServerMetadata,
    ClientSecret,
    JsonWebKeySet,
)
from broker.audit.dependencies import AuditActor, actor_of
from broker.audit.service import Actor
from broker.auth import keys
from broker.auth.dependencies import HashingLimiter, PlatformAdmin
from broker.auth.models import Role
from broker.config import Settings
from broker.departments.router import LIST_FORMATS, DryRun
from broker.kit.heavy_work import HeavyWorkDep
from broker.kit.idempotency import Idempotent
from broker.kit.pagination import (
    CursorQuery,
    CursorText,
    LimitQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from broker.kit.session import SessionDep
from core.errors import OAuthError

oauth_router = APIRouter(tags=["oauth"])
accounts_router = APIRouter(prefix="/accounts", tags=["accounts"])
# Not under /accounts: `/accounts/import` would also be the path of an account named `import`.
account_imports_router = APIRouter(prefix="/imports", tags=["accounts"])

_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                        "scope": {"type": "string"},
                    },
                }
            }
        },
    }
}


def _basic_credentials(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1], validate=True).decode()
        client_id, _, secret = decoded.partition(":")
    except (IndexError, binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "Malformed HTTP Basic credentials.", status=401) from exc
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(client_id), unquote(secret)


@oauth_router.post(
    "/oauth/token",
    response_model=AccessToken,
    openapi_extra=_TOKEN_FORM,
    responses={400: {"description": "RFC 6749 error"}, 401: {"description": "invalid_client"}},
)
async def issue_token(
    request: Request, session: SessionDep, response: Response, limiter: HashingLimiter
) -> AccessToken:
    """RFC 6749 §4.4 client credentials: exchange a client id and secret for an access token."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "Send the token request as application/x-www-form-urlencoded."
        )
    try:
        form = parse_qs(
            (await request.body()).decode(), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "The form is not valid UTF-8.") from exc
    if any(len(values) > 1 for values in form.values()):
        raise OAuthError("invalid_request", "Each parameter may appear only once.")
    fields = {k: v[0] for k, v in form.items()}
    if fields.get("grant_type") != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type" if "grant_type" in fields else "invalid_request",
            "Only grant_type=client_credentials is supported.",
        )
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        if "client_secret" in fields:
            raise OAuthError("invalid_request", "Authenticate with Basic or the form, not both.")
        client_id, secret = _basic_credentials(authorization)
    else:
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
    if not client_id or not secret:
        raise OAuthError("invalid_client", "Client authentication is required.", status=401)

    settings: Settings = request.app.state.settings
    try:
        account = await accounts.authenticate_client(
            session=session,
            actor=actor_of(request, None),
            settings=settings,
            limiter=limiter,
            client_id=client_id,
            client_secret=secret,
        )
    except OAuthError:
        # The failure count and the `token.refused` event must outlive the failed request,
        # which SessionDep would roll back.
        await session.commit()
        raise
    requested = set(fields.get("scope", "").split())
    if requested - set(account.roles):
        raise OAuthError(
            "invalid_scope", f"Scopes must be among this client's roles: {sorted(account.roles)}."
        )
    client_actor = Actor(
        subject=str(account.id),
        department=account.department_code,
        roles=tuple(account.roles),
        client_id=account.name,
        request_id=getattr(request.state, "request_id", None),
        client_address=request.client.host if request.client else None,
    )
    token, ttl = await accounts.issue_token(
        session=session,
        actor=client_actor,
        settings=settings,
        account=account,
        grant_type="client_credentials",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return AccessToken(access_token=token, expires_in=ttl, scope=" ".join(sorted(account.roles)))


@oauth_router.get("/.well-known/jwks.json", response_model=JsonWebKeySet)
async def jwks(session: SessionDep) -> JsonWebKeySet:
    """The public keys that verify this broker's tokens (retired keys are gone from here)."""
    return JsonWebKeySet.model_validate(await keys.public_jwks(session=session))


@oauth_router.get(
    "/.well-known/oauth-authorization-server", response_model=AuthorizationServerMetadata
)
async def authorization_server_metadata(request: Request) -> AuthorizationServerMetadata:
    """RFC 8414 discovery document."""
    settings: Settings = request.app.state.settings
    base = settings.public_base_url.rstrip("/")
    return AuthorizationServerMetadata(
        issuer=settings.issuer,
        token_endpoint=f"{base}/oauth/token",
        jwks_uri=f"{base}/.well-known/jwks.json",
        grant_types_supported=["client_credentials"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        scopes_supported=[r.value for r in Role],
        response_types_supported=["token"],
    )


class AccountPage(Page[AccountRead]):
    pass


@accounts_router.get("", response_model=AccountPage)
async def list_accounts(
    session: SessionDep,
    _admin: PlatformAdmin,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
    department: Annotated[str | None, Query(max_length=32, description="Department code")] = None,
) -> AccountPage:
    position = decode_cursor(cursor, keys={"name": CursorText})
    rows = await accounts.list_accounts(
        session=session,
        after_name=position["name"] if position else None,
        limit=limit + 1,
        department_code=department,
    )
    next_cursor = encode_cursor({"name": rows[limit - 1].name}) if len(rows) > limit else None
    return AccountPage(
        items=[AccountRead.model_validate(a) for a in rows[:limit]], next_cursor=next_cursor
    )


@accounts_router.post("", response_model=AccountCreated, status_code=status.HTTP_201_CREATED)
async def create_account(
    body: AccountCreate,
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    idempotency: Idempotent,
    response: Response,
    limiter: HashingLimiter,
) -> AccountCreated:
    """A person or client of a department. With an Idempotency-Key a retry replays the answer,
    without the client secret, which is never stored: rotate it if the first answer was lost."""
    account, secret = await accounts.register(
        session=session, actor=actor, data=body, limiter=limiter
    )
    result = AccountCreated.model_validate(
        {**AccountRead.model_validate(account).model_dump(), "client_secret": secret}
    )
    headers = {"Location": f"/v1/accounts/{account.name}", "Cache-Control": "no-store"}
    await idempotency.remember(
        result.model_copy(update={"client_secret": None}), status_code=201, headers=headers
    )
    response.headers.update(headers)
    return result


@account_imports_router.post("/accounts", response_model=AccountImportResult)
async def import_accounts(
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    heavy_work: HeavyWorkDep,
    limiter: HashingLimiter,
    response: Response,
    file: Annotated[
        UploadFile,
        File(
            description=f"Account list ({LIST_FORMATS}): 账号/name, 类型/kind (person or system), "
            "部门/department, 角色/roles and optionally 显示名/display name."
        ),
    ],
    dry_run: DryRun = False,
) -> AccountImportResult:
    """Create a district's people and systems from one list, all or nothing.

    The departments must exist (POST /v1/imports/departments). Existing accounts the list repeats
    are unchanged; changed roles and display names are updated; a changed department or kind is
    refused. The client secrets of new system accounts are in this answer once, and nowhere else.
    """
    data = await file.read()
    listing = await heavy_work.run(
        partial(onboarding.read_accounts, data, filename=file.filename, location="body.file")
    )
    plan = await onboarding.import_accounts(
        session=session,
        actor=actor,
        listing=listing,
        source=file.filename,
        dry_run=dry_run,
        limiter=limiter,
    )
    response.headers["Cache-Control"] = "no-store"
    return AccountImportResult(dry_run=dry_run, **vars(plan))


@accounts_router.get("/{name}", response_model=AccountRead)
async def get_account(name: str, session: SessionDep, _admin: PlatformAdmin) -> AccountRead:
    return AccountRead.model_validate(await accounts.get_by_name(session=session, name=name))


@accounts_router.put("/{name}/roles", response_model=AccountRead)
async def set_account_roles(
    name: str,
    body: AccountRolesUpdate,
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
) -> AccountRead:
    account = await accounts.get_by_name(session=session, name=name)
    account = await accounts.set_roles(
        session=session, actor=actor, account=account, roles=body.roles
    )
    return AccountRead.model_validate(account)


@accounts_router.post("/{name}/disable", response_model=AccountRead)
async def disable_account(
    name: str, session: SessionDep, _admin: PlatformAdmin, actor: AuditActor
) -> AccountRead:
    account = await accounts.get_by_name(session=session, name=name)
    account = await accounts.set_disabled(
        session=session, actor=actor, account=account, disabled=True
    )
    return AccountRead.model_validate(account)


@accounts_router.post("/{name}/enable", response_model=AccountRead)
async def enable_account(
    name: str, session: SessionDep, _admin: PlatformAdmin, actor: AuditActor
) -> AccountRead:
    account = await accounts.get_by_name(session=session, name=name)
    account = await accounts.set_disabled(
        session=session, actor=actor, account=account, disabled=False
    )
    return AccountRead.model_validate(account)


@accounts_router.post("/{name}/secret", response_model=ClientSecret)
async def rotate_client_secret(
    name: str,
    session: SessionDep,
    _admin: PlatformAdmin,
    actor: AuditActor,
    response: Response,
    limiter: HashingLimiter,
) -> ClientSecret:
    account = await accounts.get_by_name(session=session, name=name)
    secret = await accounts.rotate_secret(
        session=session, actor=actor, account=account, limiter=limiter
    )
    response.headers["Cache-Control"] = "no-store"
    return ClientSecret(client_id=account.name, client_secret=secret)
