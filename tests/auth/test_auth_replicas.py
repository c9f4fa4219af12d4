"""Two real API processes sharing one database agree on tokens, through a key rotation.

Everything runs as an operator would run it: the `broker` console script for bootstrap, rotation
and retirement, and two `uvicorn` processes serving the app factory on their own ports.
"""

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from support.processes import bootstrap_admin, client_token, run_broker, start_replicas


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients for two API processes on one database, both ready; both stopped afterwards."""
    with ExitStack() as stack:
        apis = start_replicas(database_url, tmp_path, stack)
        clients = [
            stack.enter_context(httpx.Client(base_url=api.base_url, timeout=10.0)) for api in apis
        ]
        yield clients[0], clients[1]


def _kid(token: str) -> str:
    segment = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    kid = header["kid"]
    assert isinstance(kid, str)
    assert kid
    return kid


def _departments(api: httpx.Client, token: str) -> httpx.Response:
    return api.get("/v1/departments", headers={"Authorization": f"Bearer {token}"})


def _published_kids(api: httpx.Client) -> set[str]:
    response = api.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    return {key["kid"] for key in response.json()["keys"]}


def test_token_from_one_process_verifies_on_another_across_key_rotation(
    database_url: str, replicas: tuple[httpx.Client, httpx.Client]
) -> None:
    api_a, api_b = replicas
    both = (api_a, api_b)

    secret = bootstrap_admin(database_url)

    first = client_token(api_a, "admin", secret)
    listed = _departments(api_b, first)
    assert listed.status_code == 200, listed.text
    assert "platform" in {d["code"] for d in listed.json()["items"]}

    rotated = run_broker(database_url, "keys", "rotate")
    second = client_token(api_b, "admin", secret)
    old_kid, new_kid = _kid(first), _kid(second)
    assert new_kid != old_kid
    assert new_kid in rotated
    for api in both:
        for token in (first, second):
            response = _departments(api, token)
            assert response.status_code == 200, (str(api.base_url), response.text)
        assert {old_kid, new_kid} <= _published_kids(api)

    assert f"retired {old_kid}" in run_broker(database_url, "keys", "retire", old_kid)
    for api in both:
        refused = _departments(api, first)
        assert refused.status_code == 401, (str(api.base_url), refused.text)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        still = _departments(api, second)
        assert still.status_code == 200, (str(api.base_url), still.text)
        published = _published_kids(api)
        assert new_kid in published
        assert old_kid not in published
