"""External-issuer mode against a real HTTP JWKS endpoint that the test controls.

The identity provider is played by a tiny HTTP server on a free local port: it serves whatever
key set the test publishes, counts how often it is fetched, and can be made to fail. Tokens are
Keycloak-shaped (realm roles under `realm_access.roles`, the department in `dept`).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, cast

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, KeyParameters, RSAKey

from broker.app import create_app
from broker.config import Settings
from catalog.departments import service as departments
from catalog.departments.models import DepartmentKind
from catalog.departments.schemas import DepartmentCreate
from support.identities import Identities

ISSUER = "https://idp.test/realms/city"
AUDIENCE = "broker-api"

SigningKey = ECKey | RSAKey


class FakeIdentityProvider:
    """A JWKS endpoint over real HTTP: publishes what the test says and counts fetches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._document = b'{"keys": []}'
        self._fetches = 0
        self._failing = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks":
                    self.send_error(404)
                    return
                with provider._lock:
                    provider._fetches += 1
                    failing, body = provider._failing, provider._document
                if failing:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def publish(self, *keys: SigningKey) -> None:
        document = {"keys": [key.as_dict(private=False) for key in keys]}
        with self._lock:
            self._document = json.dumps(document).encode()

    def fail(self, failing: bool = True) -> None:
        with self._lock:
            self._failing = failing

    @property
    def fetches(self) -> int:
        with self._lock:
            return self._fetches

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class IssuerKeys(NamedTuple):
    ec: ECKey
    rsa: RSAKey


def _ec_key(**parameters: str) -> ECKey:
    return ECKey.generate_key(
        "P-256",
        parameters=cast(KeyParameters, {"alg": "ES256", "use": "sig", **parameters}),
        auto_kid=True,
    )


@pytest.fixture(scope="module")
def issuer_keys() -> IssuerKeys:
    rsa = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"}, auto_kid=True)
    return IssuerKeys(ec=_ec_key(), rsa=rsa)


@pytest.fixture
def idp(issuer_keys: IssuerKeys) -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider()
    provider.publish(issuer_keys.ec, issuer_keys.rsa)
    yield provider
    provider.close()


@pytest.fixture
def settings(database_url: str, idp: FakeIdentityProvider) -> Settings:
    """Overrides conftest's: both local tokens and the external issuer are trusted."""
    return Settings(
        database_url=database_url,
        external_issuer=ISSUER,
        external_jwks_url=idp.jwks_url,
        external_audience=AUDIENCE,
        external_jwks_min_refetch_seconds=0,
    )


async def _register_departments(app: FastAPI) -> None:
    """The departments external tokens name: a bureau and the platform."""
    async with app.state.session_factory() as session:
        for code, kind in (("tax", DepartmentKind.bureau), ("platform", DepartmentKind.platform)):
            if await departments.find_by_code(session=session, code=code) is None:
                await departments.create(
                    session=session, data=DepartmentCreate(code=code, name=code, kind=kind)
                )
        await session.commit()


@pytest.fixture
async def api(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await _register_departments(app)
    return client


def keycloak_claims(**overrides: Any) -> dict[str, Any]:
    """Claims as a Keycloak realm puts them in a client-credentials access token."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": [AUDIENCE, "account"],
        "sub": "6f1c2d7e-0a4b-4d3e-9c57-2b1f0e8a9d13",
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "typ": "Bearer",
        "azp": "tax-portal",
        "scope": "profile email",
        "preferred_username": "service-account-tax-portal",
        "dept": "tax",
        "realm_access": {"roles": ["steward", "offline_access"]},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    alg = "ES256" if isinstance(key, ECKey) else "RS256"
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT", **header}, claims, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert 'error="invalid_token"' in challenge
    assert reason in response.json()["detail"]


async def test_keycloak_steward_token_reads_departments_but_may_not_create_them(
    api: httpx.AsyncClient, issuer_keys: IssuerKeys
) -> None:
    token = sign(issuer_keys.ec, keycloak_claims())

    listed = await api.get("/v1/departments", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    assert {d["code"] for d in listed.json()["items"]} == {"platform", "tax"}

    created = await api.post(
        "/v1/departments",
        headers=bearer(token),
        json={"code": "police", "name": "区公安分局", "kind": "bureau"},
    )
    assert created.status_code == 403, created.text
    assert (await api.get("/v1/departments/police", headers=bearer(token))).status_code == 404


async def test_keycloak_platform_admin_of_the_platform_department_creates_departments(
    api: httpx.AsyncClient, issuer_keys: IssuerKeys
) -> None:
    claims = keycloak_claims(
        dept="platform", azp="ops-console", realm_access={"roles": ["platform_admin"]}
    )
    token = sign(issuer_keys.rsa, claims)

    created = await api.post(
        "/v1/departments",
        headers=bearer(token),
        json={"code": "police", "name": "区公安分局", "kind": "bureau"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/departments/police"
    assert (await api.get("/v1/departments/police", headers=bearer(token))).status_code == 200


async def test_rotation_at_the_issuer_is_picked_up_and_the_removed_key_is_refused(
    api: httpx.AsyncClient, idp: FakeIdentityProvider, issuer_keys: IssuerKeys
) -> None:
    old_key = issuer_keys.ec
    idp.publish(old_key)
    before_old = sign(old_key, keycloak_claims())
    assert (await api.get("/v1/departments", headers=bearer(before_old))).status_code == 200
    assert idp.fetches == 1

    new_key = _ec_key()
    assert new_key.kid != old_key.kid
    idp.publish(new_key)
    cached = await api.get("/v1/departments", headers=bearer(before_old))
    assert cached.status_code == 200, "within the cache TTL the old key set is still trusted"
    assert idp.fetches == 1

    rotated = await api.get("/v1/departments", headers=bearer(sign(new_key, keycloak_claims())))
    assert rotated.status_code == 200, rotated.text
    assert idp.fetches == 2, "an unknown kid must refetch the key set"

    after_old = sign(old_key, keycloak_claims())
    assert_refused(await api.get("/v1/departments", headers=bearer(after_old)), "does not list")
    assert_refused(await api.get("/v1/departments", headers=bearer(before_old)), "does not list")


def _wrong_audience(keys: IssuerKeys) -> str:
    return sign(keys.ec, keycloak_claims(aud=["account", "other-api"]))


def _wrong_issuer(keys: IssuerKeys) -> str:
    return sign(keys.ec, keycloak_claims(iss="https://idp.test/realms/other"))


def _expired(keys: IssuerKeys) -> str:
    now = int(time.time())
    return sign(keys.ec, keycloak_claims(iat=now - 900, exp=now - 300))


def _unregistered_department(keys: IssuerKeys) -> str:
    return sign(keys.ec, keycloak_claims(dept="no-such-department"))


def _no_department(keys: IssuerKeys) -> str:
    return sign(keys.ec, keycloak_claims(dept=None))


def _impostor_key_reusing_a_listed_kid(keys: IssuerKeys) -> str:
    impostor = ECKey.generate_key(
        "P-256", parameters=cast(KeyParameters, {"alg": "ES256", "kid": keys.ec.kid})
    )
    return sign(impostor, keycloak_claims())


def _payload_edited_after_signing(keys: IssuerKeys) -> str:
    header, _payload, signature = sign(keys.rsa, keycloak_claims()).split(".")
    promoted = keycloak_claims(dept="platform", realm_access={"roles": ["platform_admin"]})
    return f"{header}.{_b64(json.dumps(promoted).encode())}.{signature}"


def _unlisted_key(keys: IssuerKeys) -> str:
    return sign(_ec_key(), keycloak_claims())


def _alg_none(keys: IssuerKeys) -> str:
    return _segments({"alg": "none", "kid": keys.ec.kid, "typ": "JWT"}, keycloak_claims()) + "."


def _hs256_keyed_with_the_public_key(keys: IssuerKeys) -> str:
    signing_input = _segments(
        {"alg": "HS256", "kid": keys.rsa.kid, "typ": "JWT"}, keycloak_claims()
    )
    secret = keys.rsa.as_pem(private=False)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _embedded_jwk(keys: IssuerKeys) -> str:
    attacker = _ec_key()
    return sign(attacker, keycloak_claims(), jwk=attacker.as_dict(private=False))


def _no_kid(keys: IssuerKeys) -> str:
    return jwt.encode({"alg": "ES256", "typ": "JWT"}, keycloak_claims(), keys.ec)


def _claims_the_brokers_own_issuer(keys: IssuerKeys) -> str:
    return sign(keys.ec, keycloak_claims(iss=Settings().issuer, aud=Settings().audience))


REFUSED: dict[str, tuple[Callable[[IssuerKeys], str], str]] = {
    "wrong-audience": (_wrong_audience, "another audience"),
    "wrong-issuer": (_wrong_issuer, "issuer is not trusted"),
    "expired": (_expired, "expired"),
    "unregistered-department": (_unregistered_department, "names no department"),
    "no-department": (_no_department, "names no department"),
    "impostor-key-reusing-listed-kid": (_impostor_key_reusing_a_listed_kid, "does not verify"),
    "payload-edited-after-signing": (_payload_edited_after_signing, "does not verify"),
    "key-not-in-jwks": (_unlisted_key, "does not list"),
    "alg-none": (_alg_none, "algorithm is not accepted"),
    "hs256-with-public-key-as-secret": (_hs256_keyed_with_the_public_key, "not accepted"),
    "embedded-jwk-header": (_embedded_jwk, "naming their own keys"),
    "no-kid": (_no_kid, "no key id"),
    "issuer-key-posing-as-the-broker": (_claims_the_brokers_own_issuer, "unknown or retired"),
}


@pytest.mark.parametrize("case", REFUSED.keys())
async def test_untrustworthy_external_tokens_are_refused_with_a_bearer_challenge(
    api: httpx.AsyncClient, issuer_keys: IssuerKeys, case: str
) -> None:
    control = await api.get(
        "/v1/departments", headers=bearer(sign(issuer_keys.ec, keycloak_claims()))
    )
    assert control.status_code == 200, control.text

    forge, reason = REFUSED[case]
    assert_refused(await api.get("/v1/departments", headers=bearer(forge(issuer_keys))), reason)


async def test_unknown_kids_refetch_the_key_set_at_most_once_per_interval(
    settings: Settings, idp: FakeIdentityProvider, issuer_keys: IssuerKeys
) -> None:
    limited = create_app(settings.model_copy(update={"external_jwks_min_refetch_seconds": 60}))
    try:
        await _register_departments(limited)
        transport = httpx.ASGITransport(app=limited, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as http:
            stranger = ECKey.generate_key("P-256", parameters={"alg": "ES256"})
            for _ in range(25):
                forged = jwt.encode(
                    {"alg": "ES256", "kid": uuid.uuid4().hex}, keycloak_claims(), stranger
                )
                refused = await http.get("/v1/departments", headers=bearer(forged))
                assert_refused(refused, "does not list")
            assert 1 <= idp.fetches <= 2, "the first load plus at most one refetch"

            fetched = idp.fetches
            good = sign(issuer_keys.rsa, keycloak_claims())
            assert (await http.get("/v1/departments", headers=bearer(good))).status_code == 200
            assert idp.fetches == fetched, "a listed kid is served from the cache"
    finally:
        await limited.state.engine.dispose()


async def test_local_tokens_keep_working_when_an_external_issuer_is_configured(
    api: httpx.AsyncClient,
    identities: Identities,
    idp: FakeIdentityProvider,
    issuer_keys: IssuerKeys,
) -> None:
    admin = await identities.headers("admin")
    created = await api.post(
        "/v1/accounts",
        headers=admin,
        json={
            "name": "tax-etl",
            "display_name": "Tax ETL",
            "kind": "client",
            "department_code": "tax",
            "roles": ["requester"],
        },
    )
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]

    issued = await api.post(
        "/oauth/token", auth=("tax-etl", secret), data={"grant_type": "client_credentials"}
    )
    assert issued.status_code == 200, issued.text
    local = issued.json()["access_token"]
    assert (await api.get("/v1/departments", headers=bearer(local))).status_code == 200
    assert idp.fetches == 0, "local tokens never need the external issuer"

    external = sign(issuer_keys.ec, keycloak_claims())
    answered = await api.get("/v1/departments", headers=bearer(external))
    assert answered.status_code == 200, answered.text
    assert idp.fetches == 1
    assert (await api.get("/v1/departments", headers=bearer(local))).status_code == 200


async def test_issuer_outage_refuses_external_tokens_but_not_local_ones(
    api: httpx.AsyncClient,
    identities: Identities,
    idp: FakeIdentityProvider,
    issuer_keys: IssuerKeys,
) -> None:
    idp.fail()
    external = sign(issuer_keys.ec, keycloak_claims())
    assert_refused(
        await api.get("/v1/departments", headers=bearer(external)), "could not be fetched"
    )
    assert idp.fetches >= 1

    local = await api.get("/v1/departments", headers=await identities.headers("admin"))
    assert local.status_code == 200, local.text

    idp.fail(False)
    recovered = await api.get("/v1/departments", headers=bearer(external))
    assert recovered.status_code == 200, recovered.text


async def test_external_platform_admin_outside_the_platform_is_not_an_admin(
    api: httpx.AsyncClient, issuer_keys: IssuerKeys
) -> None:
    """The local rule holds for external tokens: only platform accounts administer the platform."""
    token = sign(issuer_keys.ec, keycloak_claims(realm_access={"roles": ["platform_admin"]}))
    response = await api.post(
        "/v1/departments",
        headers=bearer(token),
        json={"code": "police", "name": "公安分局", "kind": "bureau"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("roles", [5, {"platform_admin": True}, "platform_admin"])
async def test_a_roles_claim_that_is_not_a_list_is_refused(
    api: httpx.AsyncClient, issuer_keys: IssuerKeys, roles: object
) -> None:
    token = sign(issuer_keys.ec, keycloak_claims(realm_access={"roles": roles}))
    assert_refused(await api.get("/v1/departments", headers=bearer(token)), "not a list")


async def test_concurrent_unknown_kids_on_a_cold_cache_fetch_the_key_set_once(
    settings: Settings, idp: FakeIdentityProvider
) -> None:
    limited = create_app(settings.model_copy(update={"external_jwks_min_refetch_seconds": 60}))
    try:
        await _register_departments(limited)
        transport = httpx.ASGITransport(app=limited, raise_app_exceptions=False)
        stranger = ECKey.generate_key("P-256", parameters={"alg": "ES256"})
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as http:
            forged = [
                jwt.encode({"alg": "ES256", "kid": uuid.uuid4().hex}, keycloak_claims(), stranger)
                for _ in range(20)
            ]
            answers = await asyncio.gather(
                *(http.get("/v1/departments", headers=bearer(t)) for t in forged)
            )
        assert {a.status_code for a in answers} == {401}
        assert idp.fetches == 1
    finally:
        await limited.state.engine.dispose()


async def test_a_failing_issuer_is_not_asked_again_on_every_request(
    settings: Settings, idp: FakeIdentityProvider, issuer_keys: IssuerKeys
) -> None:
    limited = create_app(settings.model_copy(update={"external_jwks_min_refetch_seconds": 60}))
    try:
        await _register_departments(limited)
        idp.fail()
        transport = httpx.ASGITransport(app=limited, raise_app_exceptions=False)
        token = sign(issuer_keys.ec, keycloak_claims())
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as http:
            for _ in range(10):
                assert (await http.get("/v1/departments", headers=bearer(token))).status_code == 401
        assert idp.fetches == 1
    finally:
        await limited.state.engine.dispose()
