"""The token endpoint under parallel load: scrypt off the event loop, every failure counted once,
no valid secret refused because of a race, and a refusal that never says whether a client exists.
"""

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from broker.auth.models import Account
from broker.config import Settings
from support.database import ON_POSTGRES

HASH_CONCURRENCY = 2


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        storage_root=str(tmp_path / "releases"),
        auth_hash_concurrency=HASH_CONCURRENCY,
        auth_max_failures=3,
    )


async def _new_client(admin_client: httpx.AsyncClient, name: str) -> str:
    await admin_client.post(
        "/v1/departments", json={"code": "tax", "name": "区税务局", "kind": "bureau"}
    )
    created = await admin_client.post(
        "/v1/accounts",
        json={
            "name": name,
            "display_name": name,
            "kind": "client",
            "department_code": "tax",
            "roles": ["steward"],
        },
    )
    assert created.status_code == 201, created.text
    secret: str = created.json()["client_secret"]
    return secret


def _token_request(client: httpx.AsyncClient, name: str, secret: str) -> Any:
    return client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(name, secret)
    )


async def _failed_attempts(app: FastAPI, name: str) -> int:
    async with app.state.session_factory() as session:
        account = await session.scalar(select(Account).where(Account.name == name))
        assert account is not None
        failed: int = account.failed_attempts
        return failed


async def test_token_requests_hash_off_the_event_loop_a_bounded_number_at_a_time(
    admin_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = await _new_client(admin_client, "tax-system")
    scrypt: Callable[..., bytes] = hashlib.scrypt
    loop_thread = threading.get_ident()
    lock = threading.Lock()
    running = 0
    seen: Counter[str] = Counter()

    def watched(*args: Any, **kwargs: Any) -> bytes:
        nonlocal running
        with lock:
            running += 1
            seen["peak"] = max(seen["peak"], running)
            seen["on the event loop" if threading.get_ident() == loop_thread else "off"] += 1
        try:
            return scrypt(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(hashlib, "scrypt", watched)
    answers = await asyncio.gather(
        *(_token_request(client, "tax-system", secret) for _ in range(8)),
        *(_token_request(client, "ghost", "guess") for _ in range(4)),
    )
    assert Counter(a.status_code for a in answers) == {200: 8, 401: 4}
    assert seen["on the event loop"] == 0
    assert seen["off"] >= 12
    assert 1 <= seen["peak"] <= HASH_CONCURRENCY
    if ON_POSTGRES:  # on SQLite the writer's lock lets one token request at a time hash
        assert seen["peak"] == HASH_CONCURRENCY


async def test_parallel_wrong_secrets_are_each_counted_and_valid_ones_all_succeed(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    guessed = await _new_client(admin_client, "guessed-system")
    secret = await _new_client(admin_client, "tax-system")
    assert guessed != secret
    answers = await asyncio.gather(
        *(_token_request(client, "tax-system", secret) for _ in range(10)),
        *(_token_request(client, "guessed-system", f"guess-{n}") for n in range(12)),
    )
    valid, guesses = answers[:10], answers[10:]
    assert [a.status_code for a in valid] == [200] * 10, [a.text for a in valid]
    assert {a.status_code for a in guesses} == {401}, [a.text for a in guesses]
    assert await _failed_attempts(app, "guessed-system") == 12
    assert await _failed_attempts(app, "tax-system") == 0


async def test_a_locked_client_is_refused_exactly_like_an_unknown_one(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    secret = await _new_client(admin_client, "tax-system")
    for n in range(app.state.settings.auth_max_failures + 1):
        wrong = await _token_request(client, "tax-system", f"guess-{n}")
        assert wrong.status_code == 401
    locked = await _token_request(client, "tax-system", secret)
    unknown = await _token_request(client, "no-such-system", secret)
    assert locked.status_code == unknown.status_code == 401
    assert locked.json() == unknown.json() == wrong.json()
    assert locked.json()["error"] == "invalid_client"
    assert set(locked.headers) == set(unknown.headers)
    assert "retry-after" not in locked.headers
    assert locked.headers["www-authenticate"] == unknown.headers["www-authenticate"]
