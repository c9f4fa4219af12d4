"""What the benches share: scratch databases, servers on free ports, the broker CLI and client
accounts, child measurements, RSS, percentiles, the exit status. Each bench keeps only what it
measures.

The benches run as scripts (`python bench/x.py`), so they import this sibling as `servers`.
"""

import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BROKER_SCRIPT = Path(sys.executable).parent / "broker"
SECRET_PREFIX = "client secret (shown once, store it now): "  # noqa: S105 - a label
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0
REMINT_AFTER_SECONDS = 10 * 60


class BenchError(Exception):
    """Something stops the benchmark; the message says what."""


def exit_status(run: Callable[[], None]) -> int:
    """A bench's exit status: 0 when `run` finishes, 1 after a BenchError (its message printed),
    130 when interrupted."""
    try:
        run()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def status_kib(field: str, pid: int | str = "self") -> int | None:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM, ...), or None where it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def json_child(args: Sequence[str], what: str, timeout: float) -> dict[str, Any]:
    """Run this interpreter on `args` and return the JSON object its last output line holds."""
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"{what} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: TextIO

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def peak_kib(self) -> int | None:
        return status_kib("VmHWM", self.process.pid)

    def rss_kib(self) -> int | None:
        return status_kib("VmRSS", self.process.pid)

    def reset_peak(self) -> bool:
        """Set VmHWM back to the current RSS (Linux clear_refs 5), so a phase's peak is its own."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5", encoding="ascii")
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.log.close()


def uvicorn_command(app: str, port: int, *, app_dir: Path | None = None) -> list[str]:
    """uvicorn serving the app factory `app` (module:function) on 127.0.0.1:`port`, quietly."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        *(["--app-dir", str(app_dir)] if app_dir is not None else []),
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def broker_command(port: int) -> list[str]:
    """uvicorn serving the broker app on 127.0.0.1:`port`, quietly."""
    return uvicorn_command("broker.app:create_app", port)


def start_server(
    name: str,
    env: dict[str, str],
    workdir: Path,
    command: Callable[[int], list[str]] = broker_command,
) -> Server:
    """Start `command(port)` on a free port, logging to workdir/<name>.log, and wait, boundedly,
    until its /readyz answers 200."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        command(port),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(name, port, process, log_path, log)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while True:
            if process.poll() is not None:
                server.stop()
                raise BenchError(
                    f"the {name} server exited with {process.returncode}:\n{server.log_tail()}"
                )
            try:
                response = client.get("/readyz")
                if response.status_code == 200:
                    return server
                problem = f"/readyz answered {response.status_code}: {response.text[:300]}"
            except httpx.TransportError as exc:
                problem = f"/readyz unreachable: {exc!r}"
            if time.monotonic() > deadline:
                server.stop()
                raise BenchError(
                    f"the {name} server was not ready within {READY_TIMEOUT_SECONDS:.0f} s "
                    f"({problem}):\n{server.log_tail()}"
                )
            time.sleep(0.2)


# --- databases ----------------------------------------------------------------------------------


def sync_url(database_url: str) -> URL:
    url = make_url(database_url)
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver)


def async_url(database_url: str) -> str:
    url = make_url(database_url)
    driver = "sqlite+aiosqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


@contextmanager
def scratch_database(admin_url: str | None, workdir: Path, name: str) -> Iterator[str]:
    """An empty database for one run, as an async URL: `name`.db in `workdir` without a URL, the
    given SQLite file, or, with a PostgreSQL URL used only as an administrator, a database `name`
    created next to it and dropped afterwards."""
    if admin_url is None:
        yield f"sqlite+aiosqlite:///{workdir / name}.db"
        return
    url = make_url(admin_url)
    if url.get_backend_name() == "sqlite":
        yield async_url(admin_url)
        return
    scratch = f"{name}_{os.getpid()}"
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{scratch}"'))
    except Exception as exc:
        admin.dispose()
        raise BenchError(f"cannot create a scratch database at {admin_url}: {exc}") from exc
    try:
        yield async_url(url.set(database=scratch).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


# --- the broker CLI and client accounts over HTTP -----------------------------------------------


def server_environment(workdir: Path) -> dict[str, str]:
    """The environment of a broker on an SQLite file in `workdir`, release files beside it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env["BROKER_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'broker.db'}"
    env["BROKER_STORAGE_ROOT"] = str(workdir / "releases")
    env["BROKER_MAX_RELEASE_BYTES"] = str(64 * 1024**3)
    return env


def broker(env: dict[str, str], *args: str) -> str:
    """Run the `broker` command line; its output."""
    done = subprocess.run(
        [str(BROKER_SCRIPT), *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"broker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON body of a response that must have `status`."""
    if response.status_code != status:
        raise BenchError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not {status}: {response.text[:2000]}"
        )
    body: dict[str, Any] = response.json() if response.content else {}
    return body


@dataclass
class Caller:
    """A client account's bearer token, minted again before it could expire mid-run."""

    http: httpx.Client
    client_id: str
    secret: str
    token: str = ""
    minted: float = 0.0

    def headers(self) -> dict[str, str]:
        if not self.token or time.monotonic() - self.minted > REMINT_AFTER_SECONDS:
            response = self.http.post(
                "/oauth/token",
                auth=(self.client_id, self.secret),
                data={"grant_type": "client_credentials"},
            )
            expect(response, 200)
            self.token, self.minted = response.json()["access_token"], time.monotonic()
        return {"Authorization": f"Bearer {self.token}"}


def bootstrap_admin(http: httpx.Client, env: dict[str, str]) -> Caller:
    """The platform admin `broker accounts bootstrap` creates, its secret read from the output."""
    printed = broker(env, "accounts", "bootstrap", "--name", "admin")
    secrets = [line for line in printed.splitlines() if line.startswith(SECRET_PREFIX)]
    if len(secrets) != 1:
        raise BenchError(f"no secret in the bootstrap's output:\n{printed}")
    return Caller(http, "admin", secrets[0].removeprefix(SECRET_PREFIX).strip())


def create_client(admin: Caller, name: str, department: str, role: str) -> Caller:
    """A client account of `department` with one role, created by the admin over HTTP."""
    account = {
        "name": name,
        "display_name": name,
        "kind": "client",
        "department_code": department,
        "roles": [role],
    }
    created = expect(admin.http.post("/v1/accounts", json=account, headers=admin.headers()), 201)
    return Caller(admin.http, name, created["client_secret"])
