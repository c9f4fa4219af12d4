"""The signing keys and verified tokens a process keeps in memory never outlive a change made
by another replica: a retirement, a rotation, a disabled account, an expiry."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from broker.accounts import service as accounts
from broker.app import create_app
from broker.auth import keys
from broker.auth.models import Account
from broker.config import Settings
from support.forgery import forge, header_of
from support.identities import Identities


@pytest.fixture
async def other_replica(settings: Settings) -> AsyncIterator[FastAPI]:
    """A second instance of the service on the same database, as another replica would be."""
    application = create_app(settings)
    yield application
    await application.state.engine.dispose()


async def _get(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/departments", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL the app sends, in order."""
    seen: list[str] = []

    def remember(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", remember)
    yield seen
    event.remove(app.state.engine.sync_engine, "before_cursor_execute", remember)


async def test_key_retired_by_another_replica_refuses_an_already_verified_token_at_once(
    client: httpx.AsyncClient, identities: Identities, other_replica: FastAPI
) -> None:
    old = await identities.token("admin")
    assert (await _get(client, old)).status_code == 200  # verified and remembered here
    async with other_replica.state.session_factory() as session:
        await keys.rotate(session=session)
        await session.commit()
    new = await identities.token("admin")
    assert header_of(new)["kid"] != header_of(old)["kid"]
    assert (await _get(client, new)).status_code == 200
    assert (await _get(client, old)).status_code == 200

    async with other_replica.state.session_factory() as session:
        await keys.retire(session=session, kid=header_of(old)["kid"])
        await session.commit()

    refused = await _get(client, old)
    assert refused.status_code == 401, refused.text
    assert "unknown or retired key" in refused.json()["detail"]
    assert (await _get(client, new)).status_code == 200


async def test_key_rotated_by_another_replica_verifies_here_without_a_restart(
    client: httpx.AsyncClient, identities: Identities, app: FastAPI, other_replica: FastAPI
) -> None:
    assert (await _get(client, await identities.token("admin"))).status_code == 200
    async with other_replica.state.session_factory() as session:
        await keys.rotate(session=session)
        await session.commit()
    # minted by the other replica with its newest key, which this one has never loaded
    token = await Identities(other_replica).token("admin")
    answer = await _get(client, token)
    assert answer.status_code == 200, answer.text


async def test_account_disabled_elsewhere_is_refused_at_once_despite_a_verified_token(
    client: httpx.AsyncClient, identities: Identities, other_replica: FastAPI
) -> None:
    token = await identities.token("clerk", roles=("auditor",))
    assert (await _get(client, token)).status_code == 200
    async with other_replica.state.session_factory() as session:
        account = await accounts.get_by_name(session=session, name="clerk")
        await session.execute(
            update(Account).where(Account.id == account.id).values(disabled=True, version=99)
        )
        await session.commit()
    refused = await _get(client, token)
    assert refused.status_code == 401, refused.text
    assert "disabled or gone" in refused.json()["detail"]


async def test_roles_changed_elsewhere_apply_to_the_next_request_of_a_verified_token(
    client: httpx.AsyncClient, identities: Identities, other_replica: FastAPI
) -> None:
    token = await identities.token("boss")
    assert (
        await client.get("/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    ).is_success
    async with other_replica.state.session_factory() as session:
        account = await accounts.get_by_name(session=session, name="boss")
        await session.execute(
            update(Account).where(Account.id == account.id).values(roles=["auditor"], version=99)
        )
        await session.commit()
    answer = await client.get("/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403, answer.text


async def test_verified_token_is_refused_once_it_expires(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url, storage_root=str(tmp_path / "releases"), jwt_leeway_seconds=0
    )
    application = create_app(settings)
    try:
        await Identities(application).token("admin")
        token = await forge(application, "admin", exp=int(time.time()) + 2)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as http:
            assert (await _get(http, token)).status_code == 200
            await asyncio.sleep(3.1)
            refused = await _get(http, token)
        assert refused.status_code == 401, refused.text
        assert "expired" in refused.json()["detail"]
    finally:
        await application.state.engine.dispose()


async def test_repeated_requests_read_the_key_set_version_and_the_account_not_the_keys(
    client: httpx.AsyncClient, identities: Identities, app: FastAPI, statements: list[str]
) -> None:
    token = await identities.token("admin")
    assert (await _get(client, token)).status_code == 200
    statements.clear()
    assert (await _get(client, token)).status_code == 200
    assert not [s for s in statements if "public_jwk" in s]
    auth = [s for s in statements if "signing_key" in s or "FROM account" in s]
    assert len(auth) == 1, auth  # one statement: the key-set version and the account together

    async with app.state.session_factory() as session:
        await keys.rotate(session=session)
        await session.commit()
    statements.clear()
    assert (await _get(client, token)).status_code == 200
    assert len([s for s in statements if "public_jwk" in s]) == 1  # reloaded after the change


async def test_tampered_copy_of_a_verified_token_is_still_checked_and_refused(
    client: httpx.AsyncClient, identities: Identities
) -> None:
    from support.forgery import tamper

    token = await identities.token("clerk", roles=("auditor",))
    assert (await _get(client, token)).status_code == 200
    refused = await _get(client, tamper(token))
    assert refused.status_code == 401, refused.text
    assert "signature" in refused.json()["detail"]
