"""Two real API processes sharing one database agree on tokens, through a key rotation.

Everything runs as an operator would run it: the `broker` console script for bootstrap, rotation
and retirement, and two `uvicorn` processes serving the app factory on their own ports.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BROKER_SCRIPT = os.path.join(os.path.dirname(sys.executable), "broker")
SECRET_PREFIX = "client secret (shown once, store it now): "
READY_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 60.0


def _environment(database_url: str) -> dict[str, str]:
    """This process's environment without any BROKER_* setting but the shared database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env["BROKER_DATABASE_URL"] = database_url
    return env


def _broker(database_url: str, *args: str) -> str:
    """Run the `broker` command and return its stdout; fail the test if it fails."""
    done = subprocess.run(
        [BROKER_SCRIPT, *args],
        env=_environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"broker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Api(NamedTuple):
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start_api(database_url: str, log: Path, stack: ExitStack) -> _Api:
    """Start `uvicorn` on a free port; the stack stops it (terminate, then kill if it hangs)."""
    port = _free_port()
    output = stack.enter_context(log.open("wb"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "broker.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=_environment(database_url),
        cwd=REPO_ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    stack.callback(_stop, process)
    return _Api(f"http://127.0.0.1:{port}", process, log)


def _wait_until_ready(api: _Api) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last = "no answer yet"
    with httpx.Client(base_url=api.base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if api.process.poll() is not None:
                pytest.fail(
                    f"{api.base_url} exited with {api.process.returncode}:\n{api.log.read_text()}"
                )
            try:
                response = http.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
    pytest.fail(
        f"{api.base_url} not ready within {READY_TIMEOUT_SECONDS}s ({last}):\n{api.log.read_text()}"
    )


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients for two API processes on one database, both ready; both stopped afterwards."""
    with ExitStack() as stack:
        apis = [_start_api(database_url, tmp_path / f"api-{n}.log", stack) for n in ("a", "b")]
        clients: list[httpx.Client] = []
        for api in apis:
            _wait_until_ready(api)
            clients.append(stack.enter_context(httpx.Client(base_url=api.base_url, timeout=10.0)))
        yield clients[0], clients[1]


def _kid(token: str) -> str:
    segment = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    kid = header["kid"]
    assert isinstance(kid, str)
    assert kid
    return kid


def _token(api: httpx.Client, client_id: str, secret: str) -> str:
    response = api.post(
        "/oauth/token", auth=(client_id, secret), data={"grant_type": "client_credentials"}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


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

    printed = _broker(database_url, "accounts", "bootstrap", "--name", "admin")
    secret_lines = [line for line in printed.splitlines() if line.startswith(SECRET_PREFIX)]
    assert len(secret_lines) == 1, printed
    secret = secret_lines[0].removeprefix(SECRET_PREFIX).strip()
    assert secret

    first = _token(api_a, "admin", secret)
    listed = _departments(api_b, first)
    assert listed.status_code == 200, listed.text
    assert "platform" in {d["code"] for d in listed.json()["items"]}

    rotated = _broker(database_url, "keys", "rotate")
    second = _token(api_b, "admin", secret)
    old_kid, new_kid = _kid(first), _kid(second)
    assert new_kid != old_kid
    assert new_kid in rotated
    for api in both:
        for token in (first, second):
            response = _departments(api, token)
            assert response.status_code == 200, (str(api.base_url), response.text)
        assert {old_kid, new_kid} <= _published_kids(api)

    assert f"retired {old_kid}" in _broker(database_url, "keys", "retire", old_kid)
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
