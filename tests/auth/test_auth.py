import asyncio
import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.auth import keys
from support.forgery import forge, header_of

PROBLEM = "application/problem+json"


async def new_client(admin_client: httpx.AsyncClient, name: str = "tax-system") -> str:
    await admin_client.post(
        "/v1/departments", json={"code": "tax", "name": "区税务局", "kind": "bureau"}
    )
    created = await admin_client.post(
        "/v1/accounts",
        json={
            "name": name,
            "display_name": "税务数据交换系统",
            "kind": "client",
            "department_code": "tax",
            "roles": ["steward"],
        },
    )
    assert created.status_code == 201, created.text
    secret: str = created.json()["client_secret"]
    return secret


async def test_client_credentials_by_basic_and_by_form_give_rfc9068_tokens(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    secret = await new_client(admin_client)
    by_basic = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", secret)
    )
    by_form = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "tax-system",
            "client_secret": secret,
        },
    )
    for response in (by_basic, by_form):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] <= 3600
        token = body["access_token"]
        assert header_of(token)["typ"] == "at+jwt"
        assert header_of(token)["alg"] == "ES256"
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert set(claims) >= {"iss", "aud", "sub", "client_id", "dept", "roles", "scope"}
        assert set(claims) >= {"iat", "exp", "jti"}
        assert claims["dept"] == "tax"
        assert claims["roles"] == ["steward"]
        assert claims["exp"] - claims["iat"] <= 3600
        me = await client.get("/v1/departments/tax", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


async def test_token_endpoint_errors_follow_rfc6749(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    secret = await new_client(admin_client)
    wrong = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", "nope")
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    unknown = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("ghost", "nope")
    )
    assert unknown.json() == wrong.json()
    grant = await client.post("/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    scope = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "platform_admin"},
        auth=("tax-system", secret),
    )
    assert scope.status_code == 400
    assert scope.json()["error"] == "invalid_scope"
    missing = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert missing.status_code == 401


async def test_repeated_wrong_secrets_are_slowed_but_the_client_is_not_locked_forever(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    secret = await new_client(admin_client)
    limit = app.state.settings.auth_max_failures
    for _ in range(limit):
        response = await client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", "bad")
        )
        assert response.status_code == 401
    refused = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", secret)
    )
    assert refused.status_code == 401
    # Locked looks exactly like unknown: the answer must not confirm that the client id exists.
    unknown = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("ghost", secret)
    )
    assert (refused.json(), refused.headers.get("retry-after")) == (unknown.json(), None)
    # The lock is short (2^0 s after the limit): the real client gets back in.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        retry = await client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", secret)
        )
        if retry.status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert retry.status_code == 200


async def test_disabled_account_tokens_stop_working_at_once(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    secret = await new_client(admin_client)
    token = (
        await client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", secret)
        )
    ).json()["access_token"]
    assert (await admin_client.post("/v1/accounts/tax-system/disable")).status_code == 200
    refused = await client.get("/v1/departments", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    assert "disabled" in refused.json()["detail"]
    relogin = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("tax-system", secret)
    )
    assert relogin.status_code == 401


async def test_rotated_secret_replaces_the_old_one_and_is_shown_once(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    old = await new_client(admin_client)
    rotated = await admin_client.post("/v1/accounts/tax-system/secret")
    new = rotated.json()["client_secret"]
    assert new != old
    form = {"grant_type": "client_credentials"}
    assert (
        await client.post("/oauth/token", data=form, auth=("tax-system", old))
    ).status_code == 401
    assert (
        await client.post("/oauth/token", data=form, auth=("tax-system", new))
    ).status_code == 200
    listing = await admin_client.get("/v1/accounts")
    fetched = await admin_client.get("/v1/accounts/tax-system")
    for text in (listing.text, fetched.text):
        assert new not in text
        assert "scrypt" not in text
        assert "secret_hash" not in text


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic abc", "Bearer a b", "bearer", "Token xyz", "Bearer a.b"],
)
async def test_malformed_authorization_headers_are_401_problems(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/v1/departments", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_unsigned_confused_and_self_keyed_tokens_are_refused(
    app: FastAPI, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    async with app.state.session_factory() as session:
        signer = await keys.current_signer(session=session)
        await session.commit()
    now = int(time.time())
    claims = {"iss": app.state.settings.issuer, "aud": app.state.settings.audience, "exp": now + 60}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"' + signer.kid.encode() + b'"}')
    unsigned = f"{none_header.decode().rstrip('=')}.{body}."
    # Algorithm confusion: HS256 keyed with the public key's PEM (joserfc refuses to build
    # such a key, so the token is assembled by hand, as an attacker would).
    public_pem = ECKey.import_key(signer.public_jwk).as_pem(private=False)
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': signer.kid}).encode())}.{body}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{_b64(mac)}"
    attacker = ECKey.generate_key("P-256", auto_kid=True)
    self_keyed = jwt.encode(
        {"alg": "ES256", "kid": attacker.kid, "jwk": attacker.as_dict(private=False)},
        claims,
        attacker,
    )
    unknown_kid = await forge(app, "admin")
    parts = unknown_kid.split(".")
    relabelled_header = json.dumps({"alg": "ES256", "kid": "no-such-kid", "typ": "at+jwt"})
    relabelled = ".".join(
        [base64.urlsafe_b64encode(relabelled_header.encode()).decode().rstrip("="), *parts[1:]]
    )
    for token in (unsigned, confused, self_keyed, relabelled):
        response = await client.get("/v1/departments", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_discovery_documents_describe_the_token_service(client: httpx.AsyncClient) -> None:
    await client.post("/oauth/token", data={"grant_type": "client_credentials"})
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["token_endpoint"].endswith("/oauth/token")
    assert metadata["grant_types_supported"] == ["client_credentials"]
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])


async def test_platform_admin_role_is_only_for_platform_accounts(
    admin_client: httpx.AsyncClient,
) -> None:
    await admin_client.post(
        "/v1/departments", json={"code": "tax", "name": "区税务局", "kind": "bureau"}
    )
    response = await admin_client.post(
        "/v1/accounts",
        json={
            "name": "sneaky",
            "display_name": "x",
            "kind": "person",
            "department_code": "tax",
            "roles": ["platform_admin"],
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "body.roles"
    duplicate = await admin_client.post(
        "/v1/accounts",
        json={
            "name": "admin",
            "display_name": "x",
            "kind": "person",
            "department_code": "tax",
            "roles": ["requester"],
        },
    )
    assert duplicate.status_code == 409
