"""The broker's signing keys: generated, rotated and retired through the database."""

from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.auth.models import SigningKey
from core.errors import Conflict, NotFound
from core.time import utcnow

SIGNING_ALG = "ES256"


async def rotate(*, session: AsyncSession) -> SigningKey:
    """Add a new signing key; it signs from now on, older unretired keys still verify."""
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": SIGNING_ALG}, auto_kid=True)
    row = SigningKey(
        kid=key.kid,
        alg=SIGNING_ALG,
        private_jwk=key.as_dict(private=True),
        public_jwk=key.as_dict(private=False),
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def active_keys(*, session: AsyncSession) -> list[SigningKey]:
    query = (
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
    )
    return list((await session.scalars(query)).all())


async def current_signer(*, session: AsyncSession) -> SigningKey:
    """The newest unretired key; a fresh install gets its first key on first use."""
    keys = await active_keys(session=session)
    return keys[0] if keys else await rotate(session=session)


async def retire(*, session: AsyncSession, kid: str) -> SigningKey:
    """Stop trusting a key: tokens it signed fail from now on, on every replica."""
    row = await session.get(SigningKey, kid)
    if row is None:
        raise NotFound(f"No signing key has the kid '{kid}'.")
    if row.retired_at is not None:
        raise Conflict(f"Key '{kid}' was already retired at {row.retired_at.isoformat()}.")
    others = [k for k in await active_keys(session=session) if k.kid != kid]
    if not others:
        raise Conflict(f"Key '{kid}' is the only active key; run `broker keys rotate` first.")
    row.retired_at = utcnow()
    await session.flush()
    return row


async def verification_key(*, session: AsyncSession, kid: str) -> ECKey | None:
    """The public key for a kid, looked up per token so a retirement takes effect at once."""
    row = await session.get(SigningKey, kid)
    if row is None or row.retired_at is not None:
        return None
    return ECKey.import_key(row.public_jwk)


def private_key(row: SigningKey) -> ECKey:
    return ECKey.import_key(row.private_jwk)


async def public_jwks(*, session: AsyncSession) -> dict[str, Any]:
    return {"keys": [dict(k.public_jwk) for k in await active_keys(session=session)]}


async def all_public_jwks(*, session: AsyncSession) -> dict[str, Any]:
    """Every public key, retired ones too: a signed record (a download receipt) outlives the
    key's use for tokens, and must still verify after rotation and retirement."""
    rows = await session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
    return {"keys": [dict(row.public_jwk) for row in rows.all()]}
