"""Real processes for tests that need them: the `broker` command and uvicorn API servers."""

import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_SCRIPT = os.path.join(os.path.dirname(sys.executable), "broker")
SECRET_PREFIX = "client secret (shown once, store it now): "
READY_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 60.0


def environment(database_url: str) -> dict[str, str]:
    """This process's environment without any BROKER_* setting but the shared database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env["BROKER_DATABASE_URL"] = database_url
    return env


def run_broker(database_url: str, *args: str, timeout: float = CLI_TIMEOUT_SECONDS) -> str:
    """Run the `broker` command and return its stdout; fail the test if it fails."""
    done = subprocess.run(
        [BROKER_SCRIPT, *args],
        env=environment(database_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"broker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Api(NamedTuple):
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_api(
    database_url: str, log: Path, stack: ExitStack, storage_root: Path | None = None
) -> Api:
    """Start `uvicorn` on a free port; the stack stops it (terminate, then kill if it hangs).

    Release files go to `storage_root`, by default a `releases` folder beside the log.
    """
    port = free_port()
    env = environment(database_url)
    env["BROKER_STORAGE_ROOT"] = str(storage_root or log.parent / "releases")
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
        env=env,
        cwd=REPO_ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    stack.callback(stop, process)
    return Api(f"http://127.0.0.1:{port}", process, log)


def wait_until_ready(api: Api) -> None:
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


def start_replicas(database_url: str, logs: Path, stack: ExitStack, count: int = 2) -> list[Api]:
    """`count` API processes on one database, each ready to serve; the stack stops them."""
    apis = [start_api(database_url, logs / f"api-{n}.log", stack) for n in range(count)]
    for api in apis:
        wait_until_ready(api)
    return apis


def bootstrap_admin(database_url: str, name: str = "admin") -> str:
    """Create the first platform administrator with `broker accounts bootstrap`; its secret."""
    printed = run_broker(database_url, "accounts", "bootstrap", "--name", name)
    secret_lines = [line for line in printed.splitlines() if line.startswith(SECRET_PREFIX)]
    assert len(secret_lines) == 1, printed
    secret = secret_lines[0].removeprefix(SECRET_PREFIX).strip()
    assert secret
    return secret


def client_token(api: httpx.Client, client_id: str, secret: str) -> str:
    """Exchange a client's id and secret for an access token at the API's `/oauth/token`."""
    response = api.post(
        "/oauth/token", auth=(client_id, secret), data={"grant_type": "client_credentials"}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def create_client(
    api: httpx.Client, admin_token: str, *, name: str, department: str, roles: list[str]
) -> str:
    """Create a client account (a department system) with `POST /v1/accounts`; its secret."""
    response = api.post(
        "/v1/accounts",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "name": name,
            "display_name": name,
            "kind": "client",
            "department_code": department,
            "roles": roles,
        },
    )
    assert response.status_code == 201, response.text
    secret = response.json()["client_secret"]
    assert isinstance(secret, str)
    assert secret
    return secret
