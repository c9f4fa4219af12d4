"""Hand-made tokens for refusal tests, signed with the broker's own current key."""

import base64
import json
import time
import uuid
from typing import Any

from fastapi import FastAPI
from joserfc import jwt

from broker.auth import keys


async def forge(app: FastAPI, account_name: str, **overrides: Any) -> str:
    """A token for an existing account with some claims changed (None removes a claim)."""
    from broker.accounts import service as accounts

    settings = app.state.settings
    async with app.state.session_factory() as session:
        account = await accounts.get_by_name(session=session, name=account_name)
        signer = await keys.current_signer(session=session)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": str(account.id),
            "client_id": account.name,
            "dept": account.department_code,
            "roles": account.roles,
            "scope": " ".join(account.roles),
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        for key, value in overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        token = jwt.encode(
            {"alg": signer.alg, "kid": signer.kid, "typ": "at+jwt"},
            claims,
            keys.private_key(signer),
        )
        await session.commit()
        return token


def tamper(token: str) -> str:
    """Same signature, a payload claiming more roles."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["platform_admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def header_of(token: str) -> dict[str, Any]:
    raw = token.split(".")[0]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return value
