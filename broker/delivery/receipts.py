"""Download receipts: a compact JWS the broker signs for every download, kept for both sides.

A receipt names the grant, its purpose and terms, the release, the rows and the SHA-256 of the
bytes that left, and the account that took them (issue 14), so the grantee and the owner can later
show what was shared and under which terms. It is signed with the token keys but typed
`broker-receipt+jwt`, which the token verifier refuses: a receipt is never a credential.
"""

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.auth import keys
from broker.auth.principal import Principal
from broker.delivery.models import Receipt
from broker.delivery.schemas import ReceiptClaims
from broker.grants import service as grants
from core.errors import NotFound

RECEIPT_TYP = "broker-receipt+jwt"
CLAIMS = ("iss", "iat", "jti", "grant", "data", "account")
# The fields of GET /v1/receipts/{id} that repeat a signed claim: (field, path in the claims).
ENVELOPE = (
    ("id", ("jti",)),
    ("grant_id", ("grant", "id")),
    ("release_id", ("data", "release_id")),
    ("account_subject", ("account", "subject")),
    ("sha256", ("data", "sha256")),
)
KEY_NAMING_HEADERS = {"jku", "jwk", "x5u", "x5c"}


class ReceiptInvalid(Exception):
    """The receipt does not verify; the message says why."""


def _payload(claims: ReceiptClaims) -> bytes:
    document = claims.model_dump(mode="json")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


async def issue(*, session: AsyncSession, claims: ReceiptClaims, now: datetime) -> Receipt:
    """Sign the claims with the current key and keep the receipt (in the download's
    transaction, with its audit event: no data leaves without both)."""
    signer = await keys.current_signer(session=session)
    token = jws.serialize_compact(
        {"alg": signer.alg, "kid": signer.kid, "typ": RECEIPT_TYP},
        _payload(claims),
        keys.private_key(signer),
    )
    receipt = Receipt(
        id=claims.jti,
        grant_id=claims.grant.id,
        release_id=claims.data.release_id,
        account_subject=claims.account.subject,
        sha256=claims.data.sha256,
        jws=token,
        created_at=now,
    )
    session.add(receipt)
    await session.flush()
    return receipt


def claims_of(receipt: Receipt) -> ReceiptClaims:
    """The claims a stored receipt carries (the broker's own record, so read without checking)."""
    return ReceiptClaims.model_validate(_segment(receipt.jws.split(".")[1], "payload"))


async def list_for_grant(
    *,
    session: AsyncSession,
    principal: Principal,
    grant_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Receipt]:
    """Receipts of a grant's downloads, oldest first, for those who may see the grant."""
    grant = await grants.get(session=session, principal=principal, grant_id=grant_id)
    query = (
        select(Receipt)
        .where(Receipt.grant_id == grant.id)
        .order_by(Receipt.created_at, Receipt.id)
        .limit(limit)
    )
    if after is not None:
        moment, receipt_id = after
        query = query.where(
            (Receipt.created_at > moment)
            | ((Receipt.created_at == moment) & (Receipt.id > receipt_id))
        )
    return list((await session.scalars(query)).all())


async def get(*, session: AsyncSession, principal: Principal, receipt_id: uuid.UUID) -> Receipt:
    """A receipt, for those who may see its grant (the grantee, the owner, platform, auditors)."""
    receipt = await session.get(Receipt, receipt_id)
    try:
        if receipt is not None:
            await grants.get(session=session, principal=principal, grant_id=receipt.grant_id)
    except NotFound:
        receipt = None
    if receipt is None:
        raise NotFound(f"No receipt has the id '{receipt_id}'.")
    return receipt


# ---------------------------------------------------------------- verification (offline)


def _segment(part: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ReceiptInvalid(f"Its {name} is not base64url-encoded JSON.") from exc
    if not isinstance(value, dict):
        raise ReceiptInvalid(f"Its {name} is not a JSON object.")
    return value


def _key(jwks: Mapping[str, Any], kid: str) -> ECKey:
    listed = jwks.get("keys")
    if not isinstance(listed, list):
        raise ReceiptInvalid("The key set is not a JWKS (an object with a `keys` list).")
    for jwk in listed:
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            try:
                return ECKey.import_key(jwk)
            except (JoseError, ValueError) as exc:
                raise ReceiptInvalid(f"The key '{kid}' in the key set is not an EC key.") from exc
    raise ReceiptInvalid(f"It was signed by key '{kid}', which the key set does not hold.")


def verify(token: str, *, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of a compact receipt JWS whose every byte is as the broker signed it."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ReceiptInvalid("It is not a compact JWS (three base64url parts joined by dots).")
    header = _segment(parts[0], "header")
    if header.get("typ") != RECEIPT_TYP:
        raise ReceiptInvalid(f"Its typ is {header.get('typ')!r}, not '{RECEIPT_TYP}'.")
    if header.get("alg") != keys.SIGNING_ALG:
        raise ReceiptInvalid(f"Its alg is {header.get('alg')!r}, not '{keys.SIGNING_ALG}'.")
    if KEY_NAMING_HEADERS & set(header):
        raise ReceiptInvalid("It names its own key (jku, jwk, x5u, x5c); only the key set counts.")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise ReceiptInvalid("Its header has no key id (kid).")
    try:
        jws.deserialize_compact(token, _key(jwks, kid), algorithms=[keys.SIGNING_ALG])
    except BadSignatureError as exc:
        raise ReceiptInvalid(
            "The signature does not verify: the header, the payload or the signature was changed."
        ) from exc
    except (JoseError, ValueError) as exc:
        raise ReceiptInvalid(f"It cannot be read as a JWS: {exc}.") from exc
    claims = _segment(parts[1], "payload")
    missing = [name for name in CLAIMS if name not in claims]
    if missing:
        raise ReceiptInvalid(f"Its payload lacks the receipt claim(s) {', '.join(missing)}.")
    if not all(isinstance(claims[name], dict) for name in ("grant", "data", "account")):
        raise ReceiptInvalid("Its payload's grant, data and account are not all objects.")
    return claims


def _claim(claims: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = claims
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def verify_document(text: str, *, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """Verify a receipt as kept in a file: the compact JWS (the `X-Receipt` header), or the JSON
    of GET /v1/receipts/{id}, whose unsigned fields must then agree with the signed claims."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return verify(stripped, jwks=jwks)
    try:
        envelope = json.loads(stripped)
    except ValueError as exc:
        raise ReceiptInvalid("It is neither a compact JWS nor a receipt's JSON.") from exc
    token = envelope.get("jws") if isinstance(envelope, dict) else None
    if not isinstance(token, str):
        raise ReceiptInvalid("The JSON has no `jws`: give the body of GET /v1/receipts/{id}.")
    claims = verify(token.strip(), jwks=jwks)
    for field, path in ENVELOPE:
        if field in envelope and envelope[field] != _claim(claims, path):
            raise ReceiptInvalid(f"The JSON's `{field}` differs from the signed receipt's.")
    if "claims" in envelope and envelope["claims"] != claims:
        raise ReceiptInvalid("The JSON's `claims` differ from the signed receipt's.")
    return claims
