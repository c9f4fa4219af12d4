"""A refused call is recorded whatever its URL holds: the record never turns a 403 into a 500."""

import httpx
from fastapi import FastAPI

from support.audit_helpers import events, head
from support.identities import Identities


async def test_refusal_at_a_path_longer_than_the_object_id_is_recorded_in_full(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities
) -> None:
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    path = "/v1/accounts/" + "0" * 300
    before = await head(app)
    refused = await client.get(path, headers=requester)
    assert refused.status_code == 403, refused.text
    [denied] = [e for e in await events(app) if e.seq > before]
    assert denied.action == "access.denied"
    assert denied.object_id is not None
    assert len(denied.object_id) <= 200
    assert f"GET {path}".startswith(denied.object_id)
    assert denied.details["path"] == path
