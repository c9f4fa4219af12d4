"""What the benches share: servers on free ports, child measurements, RSS, the exit status.

The benches run as scripts (`python bench/x.py`), so they import this sibling as `servers`.
"""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0


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


def broker_command(port: int) -> list[str]:
    """uvicorn serving the broker app on 127.0.0.1:`port`, quietly."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "broker.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


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
