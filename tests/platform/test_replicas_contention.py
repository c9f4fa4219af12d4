"""Two API processes on one database under contention: no 5xx, no second grant, no lost count.

Stewards on both replicas fire overlapping batch decisions over shuffled, overlapping line sets
all at once, while clients ask both replicas for tokens in parallel, some with the right secret
and some guessing. Each batch is all or nothing, so a batch either decides every line it names
(200) or finds one already decided (409); a deadlock or a serialization failure must never
reach the caller as a 500. Every valid token request gets its token, and every wrong guess is
counted exactly once. Runs on SQLite (two processes on one file, writers serialised by the
database) and on PostgreSQL (row locks, where the deadlocks happened).
"""

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from broker import demo
from broker.demo import ECONOMIC_INDICATORS_SHEET
from support.processes import bootstrap_admin, client_token, create_client, start_replicas
from support.workflow import DECLARATION, all_item_codes

TIMEOUT_SECONDS = 60.0
ROUNDS = 3
BATCHES_PER_DEPARTMENT = 8
BATCH_SIZE = 4
VALID_TOKEN_REQUESTS = 10
WRONG_GUESSES = 30
DEPARTMENTS = ("commerce", "tax")
DECISIONS: list[dict[str, Any]] = [
    {"decision": "approve", "declaration": DECLARATION},
    {"decision": "approve", "declaration": DECLARATION},
    {
        "decision": "reject",
        "reason": "不予提供",
        "legal_basis": "《政务数据共享条例》第十五条",
        "declaration": DECLARATION,
    },
    {"decision": "needs_info", "question": "用途？"},
]
DECIDED_STATE = {"approve": "approved", "reject": "rejected", "needs_info": "needs_info"}


@dataclass(frozen=True)
class Batch:
    replica: int
    steward: str
    line_ids: list[str]
    decision: dict[str, Any]


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with ExitStack() as stack:
        apis = start_replicas(database_url, tmp_path, stack)
        clients = [
            stack.enter_context(httpx.Client(base_url=api.base_url, timeout=TIMEOUT_SECONDS))
            for api in apis
        ]
        yield clients[0], clients[1]


def _sync_url(database_url: str) -> str:
    url = make_url(database_url)
    driver = "postgresql+psycopg" if url.drivername.startswith("postgresql") else "sqlite"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(_sync_url(database_url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def _all_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call on its own thread, released together so they overlap on the servers."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _setup(
    apis: tuple[httpx.Client, httpx.Client], database_url: str
) -> tuple[str, dict[str, str]]:
    """The district, its catalog and the clients; the admin's token and each client's secret."""
    admin_token = client_token(apis[0], "admin", bootstrap_admin(database_url))
    admin = {"Authorization": f"Bearer {admin_token}"}
    for department in demo.bureaus():
        created = apis[1].post(
            "/v1/departments",
            headers=admin,
            json={"code": department.code, "name": department.name, "kind": department.kind},
        )
        assert created.status_code == 201, created.text
    imported = apis[0].post(
        "/v1/catalog/import",
        headers=admin,
        files={"file": ("目录.csv", ECONOMIC_INDICATORS_SHEET.read_bytes(), "text/csv")},
    )
    assert imported.status_code == 200, imported.text
    clients = {
        "drc-requester": ("drc", ["requester"]),
        "guessed-client": ("drc", ["requester"]),
        **{f"{code}-steward{n}": (code, ["steward"]) for code in DEPARTMENTS for n in (0, 1)},
    }
    return admin_token, {
        name: create_client(apis[n % 2], admin_token, name=name, department=department, roles=roles)
        for n, (name, (department, roles)) in enumerate(clients.items())
    }


def _pending_lines(
    api: httpx.Client, requester: dict[str, str], round_: int
) -> dict[str, list[str]]:
    """A submitted 95-item request; its lines waiting for each contended department."""
    today = date.today()
    created = api.post(
        "/v1/requests",
        headers=requester,
        json={
            "scenario_code": "econ",
            "title": f"经济运行指标数据需求 第{round_ + 1}批",
            "purpose": "经济运行监测分析与月度研判",
            "usage_start": today.isoformat(),
            "usage_end": (today + timedelta(days=365)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    pasted = api.post(
        f"/v1/requests/{request_id}/lines",
        headers=requester,
        json={"item_codes": all_item_codes()},
    )
    assert pasted.status_code == 200, pasted.text
    submitted = api.post(f"/v1/requests/{request_id}/submit", headers=requester)
    assert submitted.status_code == 200, submitted.text
    pending: dict[str, list[str]] = {code: [] for code in DEPARTMENTS}
    for line in submitted.json()["lines"]:
        if line["state"] == "pending_owner" and line["owner_department_code"] in pending:
            pending[line["owner_department_code"]].append(line["id"])
    return pending


def _batches(pending: dict[str, list[str]], rng: random.Random) -> list[Batch]:
    """Shuffled, overlapping subsets of each department's lines, alternating between replicas."""
    batches = []
    for code, line_ids in pending.items():
        assert len(line_ids) > BATCH_SIZE, (code, line_ids)
        for n in range(BATCHES_PER_DEPARTMENT):
            chosen = rng.sample(line_ids, BATCH_SIZE)
            batches.append(
                Batch(n % 2, f"{code}-steward{n // 2 % 2}", chosen, rng.choice(DECISIONS))
            )
    rng.shuffle(batches)
    return batches


def test_overlapping_batches_and_token_requests_on_two_replicas_never_fail_or_double_grant(
    database_url: str, replicas: tuple[httpx.Client, httpx.Client]
) -> None:
    apis = replicas
    admin_token, secrets = _setup(apis, database_url)
    tokens = {
        name: client_token(apis[n % 2], name, secret)
        for n, (name, secret) in enumerate(secrets.items())
        if name != "guessed-client"
    }

    def bearer(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    scenario = apis[0].post(
        "/v1/scenarios",
        headers=bearer("drc-requester"),
        json={"code": "econ", "name": "经济运行指标监测", "phase": "development"},
    )
    assert scenario.status_code == 201, scenario.text

    rng = random.Random(20261203)
    statuses: Counter[int] = Counter()
    winners: dict[str, str] = {}  # line id -> the state the one successful batch left it in
    token_answers: list[tuple[bool, httpx.Response]] = []
    for round_ in range(ROUNDS):
        pending = _pending_lines(apis[round_ % 2], bearer("drc-requester"), round_)
        batches = _batches(pending, rng)
        calls: list[Callable[[], httpx.Response]] = [
            lambda b=batch: apis[b.replica].post(  # type: ignore[misc]
                "/v1/decisions",
                headers=bearer(b.steward),
                json={"line_ids": b.line_ids, **b.decision},
            )
            for batch in batches
        ]
        token_kinds = [True] * VALID_TOKEN_REQUESTS + [False] * (WRONG_GUESSES // ROUNDS)
        rng.shuffle(token_kinds)
        for n, is_valid in enumerate(token_kinds):
            name = "drc-requester" if is_valid else "guessed-client"
            secret = secrets[name] if is_valid else f"wrong-{round_}-{n}"
            calls.append(
                lambda api=apis[n % 2], name=name, secret=secret: api.post(  # type: ignore[misc]
                    "/oauth/token",
                    auth=(name, secret),
                    data={"grant_type": "client_credentials"},
                )
            )
        answers = _all_at_once(calls)
        decided, token_part = answers[: len(batches)], answers[len(batches) :]
        token_answers += list(zip(token_kinds, token_part, strict=True))
        for batch, answer in zip(batches, decided, strict=True):
            statuses[answer.status_code] += 1
            if answer.status_code == 200:
                state = DECIDED_STATE[batch.decision["decision"]]
                for line in answer.json()["lines"]:
                    assert line["id"] not in winners, "two batches both decided one line"
                    assert line["state"] == state, line
                    winners[line["id"]] = state

    token_statuses = Counter((ok, r.status_code) for ok, r in token_answers)
    assert set(statuses) <= {200, 409}, f"batch answers {statuses}, tokens {token_statuses}"
    assert statuses[200] >= ROUNDS, statuses
    assert token_statuses == {
        (True, 200): VALID_TOKEN_REQUESTS * ROUNDS,
        (False, 401): WRONG_GUESSES // ROUNDS * ROUNDS,
    }, f"tokens (valid?, status): {token_statuses}; batches {statuses}"
    guessed = [r for ok, r in token_answers if not ok]
    assert {r.json()["error"] for r in guessed} == {"invalid_client"}

    failures = _query(
        database_url,
        "SELECT failed_attempts FROM account WHERE name = :name",
        name="guessed-client",
    )
    assert failures == [(WRONG_GUESSES // ROUNDS * ROUNDS,)]
    doubled = _query(
        database_url, 'SELECT line_id FROM "grant" GROUP BY line_id HAVING count(*) > 1'
    )
    assert doubled == []
    granted = {
        str(row[0]).replace("-", "") for row in _query(database_url, 'SELECT line_id FROM "grant"')
    }
    approved = {i.replace("-", "") for i, state in winners.items() if state == "approved"}
    assert approved <= granted

    for api in apis:
        verified = api.get("/v1/audit/verify", headers={"Authorization": f"Bearer {admin_token}"})
        assert verified.status_code == 200, verified.text
        assert verified.json()["ok"] is True, verified.json()
