"""The broker's signing keys: generated, rotated and retired through the database."""

import time
from collections.abc import Hashable
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import Select, func, select
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


def key_set_version() -> Select[int, int, datetime, datetime | None]:
    """A fingerprint of the key set that every rotation and retirement changes, read per request
    (one aggregate over a table of a few rows): how each replica notices another's change."""
    return select(
        func.count().label("key_count"),
        func.count(SigningKey.retired_at).label("retired_count"),
        func.max(SigningKey.created_at).label("newest_key"),
        func.max(SigningKey.retired_at).label("last_retired"),
    )


class VerificationKeys:
    """The unretired public keys, parsed once and kept in memory.

    Reloaded when the key-set version read in the request's transaction differs from the one
    they were loaded at (a rotation or retirement, by any process), and at the latest after
    `ttl_seconds` whatever the version says.
    """

    def __init__(self, ttl_seconds: float = 60.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._keys: dict[str, ECKey] = {}
        self._version: Hashable | None = None
        self._loaded_at = float("-inf")

    def fresh(self, version: Hashable) -> bool:
        return version == self._version and time.monotonic() - self._loaded_at < self.ttl_seconds

    async def key_for(self, *, session: AsyncSession, kid: str, version: Hashable) -> ECKey | None:
        """The public key for a kid at key-set `version`, None when unknown or retired."""
        if not self.fresh(version):
            rows = await session.execute(
                select(SigningKey.kid, SigningKey.public_jwk).where(SigningKey.retired_at.is_(None))
            )
            self._keys = {row.kid: ECKey.import_key(row.public_jwk) for row in rows}
            self._version = version
            self._loaded_at = time.monotonic()
        return self._keys.get(kid)


def private_key(row: SigningKey) -> ECKey:
    return ECKey.import_key(row.private_jwk)


async def public_jwks(*, session: AsyncSession) -> dict[str, Any]:
    return {"keys": [dict(k.public_jwk) for k in await active_keys(session=session)]}


async def all_public_jwks(*, session: AsyncSession) -> dict[str, Any]:
    """Every public key, retired ones too: a signed record (a download receipt) outlives the
    key's use for tokens, and must still verify after rotation and retirement."""
    rows = await session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
    return {"keys": [dict(row.public_jwk) for row in rows.all()]}
