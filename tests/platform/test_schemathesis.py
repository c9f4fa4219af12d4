"""Schemathesis against a live server: the API answers as its OpenAPI document says it does.

A uvicorn process serves a fresh migrated database, seeded through the API with a little realistic
data (departments, a steward and a requester, datasets with items, a scenario, a submitted
request) so that the stateful phase's links have records to follow. Schemathesis then runs every
phase (examples, coverage, fuzzing, stateful) with every check it has but one, a bounded number of
examples per operation, once as the platform admin and once as a requester, each on its own
server. A failure lists each distinct problem: the operation, the check, the status and a curl
command that reproduces it (with the token left out: add `-H 'Authorization: Bearer ...'`).

Check switched off, and why:
- `object_level_authorization`: it needs a second principal's credentials and a map of which
  records belong to whom; who may read and change what is pinned by tests/auth/test_auth_matrix.py.

Checks told of statuses the schema cannot express, and why:
- `missing_required_header` also expects 428: RFC 6585 §3 defines 428 Precondition Required as
  the answer to an update without If-Match, which is what the dataset updates answer.
- `positive_data_acceptance` also expects 412 and 422. 412: an If-Match that is well formed but
  names another version is stale. 422: a well-formed request that breaks a domain rule (a cursor
  or checkpoint this broker never issued, an unknown parent department, `since` after `until`,
  platform_admin for a bureau's account) is refused by the rule, not by the schema.

The admin must still be an admin at the end: fuzzing as the only platform admin also tries to
disable it and to take its role away, which the last-admin rule refuses.
"""

import base64
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from support import catalog_data
from support.processes import (
    bootstrap_admin,
    client_token,
    create_client,
    start_api,
    wait_until_ready,
)

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
TIMEOUT_SECONDS = 600
MAX_EXAMPLES = 6
SEED = 20261101
PHASES = "examples,coverage,fuzzing,stateful"
DISABLED_CHECKS = "object_level_authorization"
CONFIG = """\
[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]
"""


class Server(NamedTuple):
    base_url: str
    tokens: dict[str, str]


def _created(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def seed(http: httpx.Client, admin: str) -> str:
    """Departments, datasets with items, a steward, a requester with a scenario and a submitted
    request; the requester's access token."""
    as_admin = {"Authorization": f"Bearer {admin}"}
    departments = [*catalog_data.DEPARTMENTS, ("drc", "区发展和改革委员会", "bureau")]
    for code, name, kind in departments:
        department = {"code": code, "name": name, "kind": kind}
        _created(http.post("/v1/departments", headers=as_admin, json=department))
    for dataset in catalog_data.DATASETS[:3]:
        _created(http.post("/v1/datasets", headers=as_admin, json=dataset))
    create_client(http, admin, name="stats-steward", department="stats", roles=["steward"])
    secret = create_client(http, admin, name="drc-requester", department="drc", roles=["requester"])
    requester = client_token(http, "drc-requester", secret)
    as_requester = {"Authorization": f"Bearer {requester}"}
    scenario = {"code": "econ", "name": "经济运行指标监测", "phase": "development"}
    _created(http.post("/v1/scenarios", headers=as_requester, json=scenario))
    today = date.today()
    request = _created(
        http.post(
            "/v1/requests",
            headers=as_requester,
            json={
                "scenario_code": "econ",
                "title": "经济运行指标数据需求",
                "purpose": "经济运行监测分析与月度研判",
                "usage_start": today.isoformat(),
                "usage_end": (today + timedelta(days=365)).isoformat(),
            },
        )
    )
    lines = {"item_codes": ["TJ-GYZCZ", "TJ-GDP", "SW-SSSR"]}
    path = f"/v1/requests/{request['id']}"
    _created(http.post(f"{path}/lines", headers=as_requester, json=lines), 200)
    _created(http.post(f"{path}/submit", headers=as_requester), 200)
    return requester


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with ExitStack() as stack:
        api = start_api(database_url, tmp_path / "api.log", stack)
        wait_until_ready(api)
        admin_secret = bootstrap_admin(database_url)
        with httpx.Client(base_url=api.base_url, timeout=30.0) as http:
            admin = client_token(http, "admin", admin_secret)
            requester = seed(http, admin)
        yield Server(api.base_url, {"admin": admin, "requester": requester})


class Failure(NamedTuple):
    operation: str
    check: str
    title: str
    status: int | None
    curl: str


def _curl(request: dict[str, Any]) -> str:
    parts = ["curl", "-X", request["method"]]
    for name, values in request.get("headers", {}).items():
        if name.lower() != "authorization":
            parts += ["-H", f"{name}: {', '.join(values)}"]
    body = request.get("body")
    if body:
        raw = base64.b64decode(body["$base64"]) if "$base64" in body else str(body).encode()
        parts += ["--data-binary", raw.decode("utf-8", errors="backslashreplace")]
    parts.append(request["uri"])
    return shlex.join(parts)


def failures_in(ndjson: Path) -> list[Failure]:
    """Each distinct failure of a run, read from Schemathesis's NDJSON event stream."""
    found: dict[tuple[str, str, str], Failure] = {}
    for line in ndjson.read_text(encoding="utf-8").splitlines():
        recorder = json.loads(line).get("ScenarioFinished", {}).get("recorder", {})
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check["status"] != "failure":
                    continue
                failure = (check.get("failure_info") or {}).get("failure") or {}
                interaction = recorder.get("interactions", {}).get(case_id) or {}
                request = interaction.get("request") or {}
                operation = failure.get("operation") or recorder.get("label", "?")
                title = f"{failure.get('code', '')} {failure.get('title', '')}".strip()
                found.setdefault(
                    (operation, check["name"], title),
                    Failure(
                        operation,
                        check["name"],
                        title,
                        (interaction.get("response") or {}).get("status_code"),
                        _curl(request) if request else "(no request recorded)",
                    ),
                )
    return sorted(found.values())


def run_schemathesis(server: Server, role: str, workdir: Path) -> tuple[int, str, list[Failure]]:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    report = workdir / f"{role}.ndjson"
    done = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{server.base_url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            DISABLED_CHECKS,
            "--phases",
            PHASES,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--header",
            f"Authorization: Bearer {server.tokens[role]}",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    output = done.stdout + done.stderr
    (workdir / f"{role}.out").write_text(output, encoding="utf-8")
    return done.returncode, output, failures_in(report) if report.exists() else []


def admin_is_intact(server: Server) -> str | None:
    """What is wrong with the admin after the run, if anything."""
    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
        headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
        response = http.get("/v1/accounts/admin", headers=headers)
    if response.status_code != 200:
        return f"GET /v1/accounts/admin answers {response.status_code}: {response.text}"
    account = response.json()
    if account.get("disabled") or "platform_admin" not in account.get("roles", []):
        return f"the last platform admin was disabled or lost its role: {account}"
    return None


@pytest.mark.parametrize("role", ["admin", "requester"])
def test_api_answers_as_its_openapi_document_says(
    server: Server, role: str, tmp_path: Path
) -> None:
    status, output, failures = run_schemathesis(server, role, tmp_path)
    problems = [
        f"{f.operation} [{f.check}] {f.title} -> {f.status}\n    {f.curl}" for f in failures
    ]
    if role == "admin" and (lockout := admin_is_intact(server)):
        problems.append(f"after the run, {lockout}")
    if status != 0 and not problems:
        problems.append(f"schemathesis exited with {status}:\n{output[-5000:]}")
    summary = "\n".join(problems)
    assert problems == [], f"schemathesis as {role}: {len(problems)} problem(s)\n{summary}"
