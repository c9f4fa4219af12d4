"""An upload cut off mid-stream leaves no release and no file, against a real server."""

import socket
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from support.delivery_data import POPULATION, as_csv, people
from support.processes import (
    bootstrap_admin,
    client_token,
    create_client,
    start_api,
    wait_until_ready,
)

BOUNDARY = "----cut-off-upload"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _send_half_and_hang_up(base_url: str, token: str, data: bytes) -> None:
    """A multipart upload declaring the whole file, of which only half is sent before closing."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="period_start"\r\n\r\n2026-10-01\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="period_end"\r\n\r\n2026-10-31\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="population.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    body_length = len(head) + len(data) + len(tail)
    address = urlsplit(base_url)
    request = (
        f"POST /v1/datasets/{POPULATION['code']}/releases HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {body_length}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port)) as connection:
        connection.sendall(request + head + data[: len(data) // 2])
        time.sleep(0.5)  # let the server start consuming the body
        connection.shutdown(socket.SHUT_RDWR)


def test_an_upload_cut_off_mid_stream_leaves_no_release_and_no_file(
    database_url: str, tmp_path: Path
) -> None:
    admin_secret = bootstrap_admin(database_url)
    storage = tmp_path / "releases"
    with ExitStack() as stack:
        api = start_api(database_url, tmp_path / "api.log", stack, storage_root=storage)
        wait_until_ready(api)
        http = stack.enter_context(httpx.Client(base_url=api.base_url, timeout=60))
        admin = client_token(http, "admin", admin_secret)
        as_admin = {"Authorization": f"Bearer {admin}"}
        made = http.post(
            "/v1/departments",
            json={"code": "police", "name": "区公安分局", "kind": "bureau"},
            headers=as_admin,
        )
        assert made.status_code == 201, made.text
        secret = create_client(
            http, admin, name="police-system", department="police", roles=["steward"]
        )
        token = client_token(http, "police-system", secret)
        steward = {"Authorization": f"Bearer {token}"}
        assert http.post("/v1/datasets", json=POPULATION, headers=steward).status_code == 201

        data = as_csv(people(40_000))
        _send_half_and_hang_up(api.base_url, token, data)
        time.sleep(1.0)

        releases = f"/v1/datasets/{POPULATION['code']}/releases"
        assert http.get(releases, headers=steward).json()["items"] == []
        assert _files(storage) == []

        whole = http.post(
            releases,
            files={"file": ("population.csv", data, "text/csv")},
            data={"period_start": "2026-10-01", "period_end": "2026-10-31"},
            headers=steward,
        )
        assert whole.status_code == 201, whole.text
        assert [p.name for p in _files(storage)] == [f"{whole.json()['sha256']}.parquet"]
        assert len(http.get(releases, headers=steward).json()["items"]) == 1
