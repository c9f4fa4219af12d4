"""RFC 9068 JWT access tokens: minted for our accounts, verified for us and an external issuer."""

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from broker.auth import keys
from broker.auth.models import Account, Role
from broker.auth.principal import Principal
from broker.config import Settings
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind

ALLOWED_ALGORITHMS = ["ES256", "RS256"]
FORBIDDEN_HEADERS = {"jku", "jwk", "x5u", "x5c"}
# RFC 9068 §4: our access tokens are typed, so nothing else we sign (a download receipt, an audit
# checkpoint) can be presented as one.
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}


class InvalidToken(Exception):
    """The token cannot be trusted; the message is safe to show the caller."""


async def mint(*, session: AsyncSession, settings: Settings, account: Account) -> tuple[str, int]:
    signer = await keys.current_signer(session=session)
    now = int(time.time())
    ttl = settings.token_ttl_seconds
    roles = sorted(account.roles)
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(account.id),
        "client_id": account.name,
        "dept": account.department_code,
        "roles": roles,
        "scope": " ".join(roles),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": signer.alg, "kid": signer.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, keys.private_key(signer)), ttl


def _segment(token: str, index: int) -> dict[str, Any]:
    try:
        raw = token.split(".")[index]
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("The token is not a well-formed JWT.") from exc
    if not isinstance(value, dict):
        raise InvalidToken("The token is not a well-formed JWT.")
    return value


def _claim_at(claims: dict[str, Any], dotted: str) -> Any:
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ExternalJwks:
    """An external issuer's key set: cached for a TTL, refetched on an unknown kid, rate-limited.

    A per-process copy of public data; replicas each keep their own and agree via the issuer.
    Attempts (failed ones too) are spaced by `external_jwks_min_refetch_seconds` and serialised
    by a lock, so a burst of tokens with made-up kids cannot turn into a burst of fetches.
    """

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.transport = transport
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        assert self.settings.external_jwks_url is not None
        self._attempted_at = time.monotonic()
        async with httpx.AsyncClient(transport=self.transport, timeout=5.0) as http:
            response = await http.get(self.settings.external_jwks_url)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        self._fetched_at = time.monotonic()

    def _may_attempt(self) -> bool:
        return (
            time.monotonic() - self._attempted_at >= self.settings.external_jwks_min_refetch_seconds
        )

    async def key_for(self, kid: str) -> ECKey | RSAKey | None:
        found = self._find(kid) if not self._expired() else None
        if found is not None:
            return found
        async with self._lock:
            found = self._find(kid) if not self._expired() else None
            if found is not None or not self._may_attempt():
                # Too soon to ask again: keys from the last good fetch stay usable meanwhile.
                found = found or self._find(kid)
            else:
                try:
                    await self._fetch()
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    if self._keys is None:
                        raise InvalidToken(
                            "The external issuer's keys could not be fetched."
                        ) from exc
                found = self._find(kid)
            if found is None and self._keys is None:
                raise InvalidToken("The external issuer's keys could not be fetched.")
        return found

    def _expired(self) -> bool:
        return time.monotonic() - self._fetched_at > self.settings.external_jwks_cache_seconds

    def _find(self, kid: str) -> ECKey | RSAKey | None:
        if self._keys is None:
            return None
        for key in self._keys.keys:
            if key.kid == kid and isinstance(key, ECKey | RSAKey):
                return key
        return None


def _decode(
    token: str, key: ECKey | RSAKey, *, issuer: str, audience: str, leeway: int
) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, key, algorithms=ALLOWED_ALGORITHMS)
        JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(decoded.claims)
    except JoseError as exc:
        raise InvalidToken(_describe(exc)) from exc
    return decoded.claims


def _describe(exc: JoseError) -> str:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return "The token has expired; request a new one."
    if name == "InvalidTokenError" and "nbf" in str(exc):
        return "The token is not valid yet."
    if name == "BadSignatureError":
        return "The token's signature does not verify."
    if name == "InvalidClaimError" and "aud" in str(exc):
        return "The token is for another audience."
    if name in {"UnsupportedAlgorithmError", "MissingAlgorithmError"}:
        return f"The token's algorithm is not accepted; use one of {ALLOWED_ALGORITHMS}."
    return f"The token was refused: {exc.description or name}."


class LocalTokens:
    """What one process keeps to verify its own tokens quickly: the parsed public keys, and the
    claims of tokens whose signature it already checked (keyed by the whole token, so only the
    very same bytes skip the ECDSA check; their key must still be unretired and the token
    unexpired at every use). Nothing about the account is kept: it is read on every request."""

    def __init__(self, *, key_ttl_seconds: float = 60.0, max_tokens: int = 10_000) -> None:
        self.keys = keys.VerificationKeys(ttl_seconds=key_ttl_seconds)
        self.max_tokens = max_tokens
        self._claims: dict[str, dict[str, Any]] = {}

    def verified(self, token: str) -> dict[str, Any] | None:
        return self._claims.get(token)

    def remember(self, token: str, claims: dict[str, Any]) -> None:
        if len(self._claims) >= self.max_tokens:
            del self._claims[next(iter(self._claims))]  # the oldest
        self._claims[token] = claims

    def forget(self, token: str) -> None:
        self._claims.pop(token, None)


_version = keys.key_set_version().subquery()
_account = (
    select(
        Account.id.label("account_id"),
        Account.name.label("account_name"),
        Account.department_id,
        Account.roles,
        Account.disabled,
        Department.code.label("department_code"),
        Department.kind.label("department_kind"),
    )
    .join(Department, Department.id == Account.department_id)
    .where(Account.id == bindparam("account_id", type_=Account.id.type))
    .subquery()
)
# One statement per request: the key-set version (has any process rotated or retired a key?) and
# the account by its primary key (disabled accounts stop at once); no row of it when gone.
ACCOUNT_AND_KEY_SET = select(_version, _account).select_from(_version.outerjoin(_account, true()))


def _subject(claims: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(claims.get("sub")))
    except ValueError:
        return None


async def verify(
    token: str,
    *,
    session: AsyncSession,
    settings: Settings,
    external: ExternalJwks | None,
    local: LocalTokens,
) -> Principal:
    """Turn a bearer token into a Principal, or raise InvalidToken saying why."""
    header = _segment(token, 0)
    unverified = _segment(token, 1)
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise InvalidToken(
            f"The token's algorithm is not accepted; use one of {ALLOWED_ALGORITHMS}."
        )
    if FORBIDDEN_HEADERS & set(header):
        raise InvalidToken("Tokens naming their own keys (jku, jwk, x5u, x5c) are refused.")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidToken("The token has no key id (kid).")
    issuer = unverified.get("iss")
    leeway = settings.jwt_leeway_seconds

    if issuer == settings.issuer:
        # The subject is read before the signature is checked only to fetch the account in the
        # same statement as the key-set version; nothing is trusted until the signature holds.
        row = (
            await session.execute(ACCOUNT_AND_KEY_SET, {"account_id": _subject(unverified)})
        ).one()
        version = (row.key_count, row.retired_count, row.newest_key, row.last_retired)
        key = await local.keys.key_for(session=session, kid=kid, version=version)
        if key is None:
            local.forget(token)
            raise InvalidToken("The token was signed by an unknown or retired key.")
        if header.get("typ") not in ACCESS_TOKEN_TYPES:
            raise InvalidToken(
                "The token is not an access token (its typ is not at+jwt); a download receipt "
                "is not a credential."
            )
        claims = local.verified(token)
        if claims is None:
            claims = _decode(
                token, key, issuer=settings.issuer, audience=settings.audience, leeway=leeway
            )
            local.remember(token, claims)
        elif claims["exp"] + leeway < time.time():
            local.forget(token)
            raise InvalidToken("The token has expired; request a new one.")
        account_id = _subject(claims)
        if account_id is None:
            raise InvalidToken("The token's subject is not an account of this broker.")
        if row.account_id is None or row.disabled:
            raise InvalidToken("The account behind this token is disabled or gone.")
        roles = frozenset(Role(r) for r in row.roles)
        return Principal(
            subject=str(row.account_id),
            department_id=row.department_id,
            department_code=row.department_code,
            roles=roles,
            issuer=settings.issuer,
            department_is_platform=row.department_kind == DepartmentKind.platform,
            client_id=row.account_name,
            account_id=row.account_id,
        )

    if external is not None and settings.external_issuer and issuer == settings.external_issuer:
        external_key = await external.key_for(kid)
        if external_key is None:
            raise InvalidToken("The token was signed by a key the external issuer does not list.")
        claims = _decode(
            token,
            external_key,
            issuer=settings.external_issuer,
            audience=settings.external_audience or settings.audience,
            leeway=leeway,
        )
        code = _claim_at(claims, settings.external_department_claim)
        department = (
            await departments.find_by_code(session=session, code=code)
            if isinstance(code, str)
            else None
        )
        if department is None:
            raise InvalidToken(
                f"The token's '{settings.external_department_claim}' claim names no department "
                "registered here."
            )
        raw_roles = _claim_at(claims, settings.external_roles_claim)
        if raw_roles is None:
            raw_roles = []
        if not isinstance(raw_roles, list):
            raise InvalidToken(
                f"The token's '{settings.external_roles_claim}' claim is not a list."
            )
        known = {r.value for r in Role}
        roles = frozenset(Role(r) for r in raw_roles if isinstance(r, str) and r in known)
        if Role.platform_admin in roles and department.kind != DepartmentKind.platform:
            # The same rule as for local accounts: only the platform administers the platform.
            roles = roles - {Role.platform_admin}
        client = claims.get("azp") or claims.get("client_id")
        return Principal(
            subject=str(claims["sub"]),
            department_id=department.id,
            department_code=department.code,
            roles=roles,
            issuer=settings.external_issuer,
            department_is_platform=department.kind == DepartmentKind.platform,
            client_id=str(client) if client else None,
        )

    raise InvalidToken("The token's issuer is not trusted here.")
