"""The platform never loses its last administrator by an API call, and can recover if it does.

Disabling an account or changing its roles may not leave zero active platform admins, not even
when two admins disable each other at the same moment; `broker accounts bootstrap --recover`
is the local, audited way back for a database where it happened anyway (e.g. by SQL).
"""

import asyncio
import subprocess

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from broker.audit.models import AuditEvent
from broker.auth.models import Account
from support.identities import Identities
from support.processes import BROKER_SCRIPT, REPO_ROOT, SECRET_PREFIX, environment, run_broker


async def _active_admins(app: FastAPI) -> list[str]:
    async with app.state.session_factory() as session:
        accounts = (await session.scalars(select(Account).order_by(Account.name))).all()
        return [a.name for a in accounts if not a.disabled and "platform_admin" in a.roles]


async def test_the_last_active_admin_cannot_disable_itself(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    refused = await admin_client.post("/v1/accounts/admin/disable")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "conflict"
    assert "last active platform admin" in refused.json()["detail"]
    assert await _active_admins(app) == ["admin"]


async def test_the_last_active_admin_cannot_drop_its_admin_role(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    refused = await admin_client.put("/v1/accounts/admin/roles", json={"roles": ["auditor"]})
    assert refused.status_code == 409, refused.text
    assert await _active_admins(app) == ["admin"]
    kept = await admin_client.put(
        "/v1/accounts/admin/roles", json={"roles": ["platform_admin", "auditor"]}
    )
    assert kept.status_code == 200, kept.text


async def test_a_disabled_admin_does_not_count_as_the_remaining_one(
    admin_client: httpx.AsyncClient, identities: Identities, app: FastAPI
) -> None:
    await identities.token("admin2")
    disabled = await admin_client.post("/v1/accounts/admin2/disable")
    assert disabled.status_code == 200, disabled.text
    refused = await admin_client.put("/v1/accounts/admin/roles", json={"roles": ["steward"]})
    assert refused.status_code == 409, refused.text
    enabled = await admin_client.post("/v1/accounts/admin2/enable")
    assert enabled.status_code == 200, enabled.text
    dropped = await admin_client.put("/v1/accounts/admin/roles", json={"roles": ["steward"]})
    assert dropped.status_code == 200, dropped.text
    assert await _active_admins(app) == ["admin2"]


async def test_two_admins_disabling_each_other_at_once_leave_one(
    admin_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    identities: Identities,
    app: FastAPI,
) -> None:
    second = await identities.headers("admin2")
    answers = await asyncio.gather(
        admin_client.post("/v1/accounts/admin2/disable"),
        client.post("/v1/accounts/admin/disable", headers=second),
    )
    statuses = sorted(a.status_code for a in answers)
    # The loser either waited for the winner and was refused (409), or, where writers queue
    # before authentication (SQLite), found its own account disabled (401).
    assert statuses in ([200, 401], [200, 409]), [a.text for a in answers]
    assert len(await _active_admins(app)) == 1


def _broker(database_url: str, *args: str) -> tuple[int, str]:
    """The `broker` command's exit code and everything it said, for commands that must fail."""
    done = subprocess.run(
        [BROKER_SCRIPT, *args],
        env=environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _execute(database_url: str, sql: str) -> None:
    """What an operator's SQL would do behind the API's back."""
    url = make_url(database_url)
    driver = "postgresql+psycopg" if url.drivername.startswith("postgresql") else "sqlite"
    engine = create_engine(url.set(drivername=driver))
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


LOSE_THE_ADMIN = {
    "disabled": "UPDATE account SET disabled = true WHERE name = 'admin'",
    "roles": "UPDATE account SET roles = '[\"auditor\"]' WHERE name = 'admin'",
}


@pytest.mark.parametrize("lost_by", sorted(LOSE_THE_ADMIN))
async def test_bootstrap_recover_restores_an_admin_when_none_is_left(
    database_url: str, client: httpx.AsyncClient, app: FastAPI, lost_by: str
) -> None:
    run_broker(database_url, "accounts", "bootstrap", "--name", "admin")
    refused, said = _broker(database_url, "accounts", "bootstrap", "--recover")
    assert refused != 0
    assert "active platform admin" in said
    _execute(database_url, LOSE_THE_ADMIN[lost_by])
    assert await _active_admins(app) == []
    plain, said = _broker(database_url, "accounts", "bootstrap")
    assert plain != 0, said

    printed = run_broker(database_url, "accounts", "bootstrap", "--recover")
    secret = next(
        line.removeprefix(SECRET_PREFIX).strip()
        for line in printed.splitlines()
        if line.startswith(SECRET_PREFIX)
    )
    assert await _active_admins(app) == ["admin"]
    token = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", secret)
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/v1/accounts", headers=headers)).status_code == 200
    async with app.state.session_factory() as session:
        recorded = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "account.recovered")
            )
        ).all()
    assert [(e.object_id, e.actor_subject) for e in recorded] == [("admin", "system:cli")]
