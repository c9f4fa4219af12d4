"""Every download carries a signed receipt; both sides read it later; anyone can check it."""

import asyncio
import hashlib
import io
import json
import string
import subprocess
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from joserfc import jws
from joserfc.jwk import KeySet, KeySetSerialization
from sqlalchemy import select

from broker.accounts import service as accounts
from broker.audit.models import AuditEvent
from broker.audit.service import Actor
from broker.delivery import receipts
from broker.delivery.models import Receipt
from support.delivery_data import POPULATION
from support.identities import Identities
from support.processes import BROKER_SCRIPT, CLI_TIMEOUT_SECONDS, REPO_ROOT, environment
from support.sharing import sharing
from support.workflow import DECLARATION

PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
PURPOSE = "常住人口与经济运行关联分析"
TERMS = {"masking": {"RK-XM": "hash", "RK-ZZ": "null"}, "no_reshare": True}


@dataclass
class Shared:
    """The police sub-bureau's population register, granted to Development and Reform."""

    app: FastAPI
    client: httpx.AsyncClient
    identities: Identities
    steward: dict[str, str]
    requester: dict[str, str]
    grant: dict[str, Any]

    async def download(self, **params: str) -> httpx.Response:
        response = await self.client.get(
            f"/v1/grants/{self.grant['id']}/data", params=params, headers=self.requester
        )
        assert response.status_code == 200, response.text
        return response

    async def jwks(self) -> dict[str, Any]:
        published: dict[str, Any] = (await self.client.get("/.well-known/jwks.json")).json()
        return published


@pytest.fixture
async def shared(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Shared:
    police = await sharing(app, client, identities, rows=30)
    steward, requester = police.steward, police.requester
    await client.post(
        "/v1/scenarios", json={"code": "econ", "name": "经济运行监测"}, headers=requester
    )
    request = await client.post(
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "人口数据需求",
            "purpose": PURPOSE,
            "usage_start": date.today().isoformat(),
            "usage_end": (date.today() + timedelta(days=180)).isoformat(),
            "lines": [{"dataset_code": POPULATION["code"]}],
        },
        headers=requester,
    )
    assert request.status_code == 201, request.text
    submitted = await client.post(f"/v1/requests/{request.json()['id']}/submit", headers=requester)
    line = submitted.json()["lines"][0]
    decided = await client.post(
        f"/v1/lines/{line['id']}/decisions",
        json={
            "decision": "approve_with_conditions",
            "declaration": DECLARATION,
            "conditions": TERMS,
        },
        headers=steward,
    )
    assert decided.status_code == 200, decided.text
    accepted = await client.post(f"/v1/lines/{line['id']}/accept", headers=requester)
    assert accepted.status_code == 200, accepted.text
    grants = (await client.get("/v1/grants", headers=requester)).json()["items"]
    grant = next(g for g in grants if g["line_id"] == line["id"])
    return Shared(app, client, identities, steward, requester, grant)


def verify_with(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a receipt, checked with joserfc alone (as a grantee would)."""
    key_set = KeySet.import_key_set(cast(KeySetSerialization, jwks))
    verified = jws.deserialize_compact(token, key_set, algorithms=["ES256"])
    return dict(verified.headers()), json.loads(verified.payload)


def flip(token: str, part: int) -> str:
    """The token with one character changed in the middle of one of its three parts."""
    parts = token.split(".")
    middle = len(parts[part]) // 2
    old = parts[part][middle]
    parts[part] = parts[part][:middle] + ("A" if old != "A" else "B") + parts[part][middle + 1 :]
    return ".".join(parts)


def run_verify(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BROKER_SCRIPT, "receipts", "verify", *args],
        env=environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


async def test_a_download_carries_a_signed_receipt_of_what_left_and_under_which_terms(
    shared: Shared,
) -> None:
    response = await shared.download(format="csv")
    token = response.headers["x-receipt"]
    header, claims = verify_with(token, await shared.jwks())

    assert header["typ"] == "broker-receipt+jwt"
    assert claims["jti"] == response.headers["x-receipt-id"]
    assert claims["iss"] == shared.app.state.settings.issuer
    grant = shared.grant
    assert claims["grant"] == {
        "id": grant["id"],
        "scenario_id": grant["scenario_id"],
        "purpose": PURPOSE,
        "terms": grant["conditions"],
        "columns": grant["columns"],
        "grantee": "drc",
        "owner": "police",
    }
    assert claims["grant"]["terms"]["no_reshare"] is True
    assert claims["grant"]["terms"]["masking"]["RK-ZZ"] == "null"
    assert claims["data"] == {
        "dataset": POPULATION["code"],
        "release_id": response.headers["x-release-id"],
        "copy": "owner",
        "period_start": PERIOD["period_start"],
        "period_end": PERIOD["period_end"],
        "releases": [],
        "format": "csv",
        "rows": 30,
        "size_bytes": len(response.content),
        "sha256": hashlib.sha256(response.content).hexdigest(),
    }
    assert claims["account"]["client_id"] == "drc-requester"
    assert claims["account"]["department"] == "drc"
    assert claims["account"]["subject"] == claims["account"]["account_id"]

    async with shared.app.state.session_factory() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "data.downloaded")
        )
        stored = await session.get(Receipt, uuid.UUID(claims["jti"]))
    assert event is not None
    assert event.details["receipt"] == claims["jti"]
    assert stored is not None
    assert stored.jws == token


async def test_broker_receipts_verify_accepts_the_receipt_and_refuses_a_changed_byte(
    shared: Shared, database_url: str, tmp_path: Path
) -> None:
    response = await shared.download(format="jsonl")
    token, receipt_id = response.headers["x-receipt"], response.headers["x-receipt-id"]
    read = await shared.client.get(f"/v1/receipts/{receipt_id}", headers=shared.requester)
    (tmp_path / "data.jsonl").write_bytes(response.content)
    (tmp_path / "jwks.json").write_text(json.dumps(await shared.jwks()))
    for name, text in {
        "receipt.jws": token,
        "receipt.json": read.text,
        "changed-payload.jws": flip(token, 1),
        "changed-signature.jws": flip(token, 2),
    }.items():
        (tmp_path / name).write_text(text)
    # --jwks works offline: these runs name a database that cannot be opened
    nowhere = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'none.db'}"
    offline = ("--jwks", str(tmp_path / "jwks.json"))

    def check(url: str, name: str, *options: str) -> subprocess.CompletedProcess[str]:
        return run_verify(url, str(tmp_path / name), *options)

    accepted, accepted_offline, changed_payload, changed_signature = await asyncio.gather(
        asyncio.to_thread(check, database_url, "receipt.jws"),
        asyncio.to_thread(
            check, nowhere, "receipt.json", *offline, "--data", str(tmp_path / "data.jsonl")
        ),
        asyncio.to_thread(check, database_url, "changed-payload.jws"),
        asyncio.to_thread(check, nowhere, "changed-signature.jws", *offline),
    )
    assert accepted.returncode == 0, accepted.stderr
    assert f"valid: receipt {receipt_id}" in accepted.stdout
    assert '"rows": 30' in accepted.stdout
    assert accepted_offline.returncode == 0, accepted_offline.stderr
    assert "is the file the receipt names" in accepted_offline.stdout
    for refused in (changed_payload, changed_signature):
        assert refused.returncode == 1, refused.stdout
        assert "INVALID" in refused.stderr
        assert "valid: receipt" not in refused.stdout
    assert "signature does not verify" in changed_signature.stderr


async def test_a_receipt_with_any_character_changed_does_not_verify(shared: Shared) -> None:
    response = await shared.download()
    token, jwks = response.headers["x-receipt"], await shared.jwks()
    assert receipts.verify(token, jwks=jwks)["jti"] == response.headers["x-receipt-id"]
    alphabet = string.ascii_letters + string.digits + "-_"
    verified = []
    for at, old in enumerate(token):
        if old == ".":
            continue
        new = alphabet[(alphabet.index(old) + 1) % len(alphabet)]
        try:
            receipts.verify(token[:at] + new + token[at + 1 :], jwks=jwks)
        except receipts.ReceiptInvalid:
            continue
        verified.append(at)
    assert verified == [], "changed characters that still verified"


async def test_the_receipt_json_must_agree_with_its_signed_claims(shared: Shared) -> None:
    response = await shared.download()
    read = await shared.client.get(
        f"/v1/receipts/{response.headers['x-receipt-id']}", headers=shared.requester
    )
    jwks = await shared.jwks()
    assert receipts.verify_document(read.text, jwks=jwks) == read.json()["claims"]
    changed = read.json()
    changed["claims"]["data"]["rows"] += 1
    with pytest.raises(receipts.ReceiptInvalid, match="claims"):
        receipts.verify_document(json.dumps(changed), jwks=jwks)
    changed = read.json()
    changed["sha256"] = "0" * 64
    with pytest.raises(receipts.ReceiptInvalid, match="sha256"):
        receipts.verify_document(json.dumps(changed), jwks=jwks)


async def test_the_grantee_and_the_owner_read_receipts_and_other_departments_do_not(
    shared: Shared,
) -> None:
    first = await shared.download(format="csv")
    second = await shared.download(format="parquet")
    tax = await shared.identities.headers(
        "tax-steward", department="tax", department_kind="bureau", roles=("steward",)
    )
    auditor = await shared.identities.headers("auditor", roles=("auditor",))
    path = f"/v1/grants/{shared.grant['id']}/receipts"

    for who in (shared.requester, shared.steward, auditor):
        listed = await shared.client.get(path, headers=who)
        assert listed.status_code == 200, listed.text
        assert [r["id"] for r in listed.json()["items"]] == [
            first.headers["x-receipt-id"],
            second.headers["x-receipt-id"],
        ]
    page = (await shared.client.get(path, params={"limit": 1}, headers=shared.steward)).json()
    rest = await shared.client.get(
        path, params={"limit": 1, "cursor": page["next_cursor"]}, headers=shared.steward
    )
    assert [r["id"] for r in page["items"] + rest.json()["items"]] == [
        first.headers["x-receipt-id"],
        second.headers["x-receipt-id"],
    ]
    assert rest.json()["next_cursor"] is None

    one = await shared.client.get(
        f"/v1/receipts/{second.headers['x-receipt-id']}", headers=shared.steward
    )
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["jws"] == second.headers["x-receipt"]
    assert body["sha256"] == hashlib.sha256(second.content).hexdigest()
    assert body["claims"]["data"]["format"] == "parquet"
    assert body["claims"]["grant"]["id"] == body["grant_id"] == shared.grant["id"]

    assert (await shared.client.get(path, headers=tax)).status_code == 404
    hidden = await shared.client.get(f"/v1/receipts/{body['id']}", headers=tax)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == f"No receipt has the id '{body['id']}'."


async def test_receipts_still_verify_after_the_signing_key_is_rotated_and_retired(
    shared: Shared, database_url: str, tmp_path: Path
) -> None:
    before = await shared.download()
    old_kid = verify_with(before.headers["x-receipt"], await shared.jwks())[0]["kid"]
    async with shared.app.state.session_factory() as session:
        await accounts.rotate_signing_key(session=session, actor=Actor.system("test"))
        await session.commit()
    after = await shared.download()
    header, _claims = verify_with(after.headers["x-receipt"], await shared.jwks())
    assert header["kid"] != old_kid
    verify_with(before.headers["x-receipt"], await shared.jwks())

    async with shared.app.state.session_factory() as session:
        await accounts.retire_signing_key(session=session, actor=Actor.system("test"), kid=old_kid)
        await session.commit()
    assert old_kid not in {k["kid"] for k in (await shared.jwks())["keys"]}
    (tmp_path / "old.jws").write_text(before.headers["x-receipt"])
    checked = await asyncio.to_thread(run_verify, database_url, str(tmp_path / "old.jws"))
    assert checked.returncode == 0, checked.stderr
    assert f"valid: receipt {before.headers['x-receipt-id']}" in checked.stdout


async def test_a_parquet_download_carries_its_grant_and_terms_in_the_file(shared: Shared) -> None:
    response = await shared.download(format="parquet")
    metadata = pl.read_parquet_metadata(io.BytesIO(response.content))
    assert metadata["broker.grant_id"] == shared.grant["id"]
    assert metadata["broker.receipt_id"] == response.headers["x-receipt-id"]
    assert metadata["broker.purpose"] == PURPOSE
    assert json.loads(metadata["broker.terms"]) == shared.grant["conditions"]
    assert pl.read_parquet(io.BytesIO(response.content)).height == 30


async def test_a_receipt_presented_as_a_bearer_token_is_refused(shared: Shared) -> None:
    receipt = (await shared.download()).headers["x-receipt"]
    refused = await shared.client.get("/v1/grants", headers={"Authorization": f"Bearer {receipt}"})
    assert refused.status_code == 401
    assert "not an access token" in refused.json()["detail"]
