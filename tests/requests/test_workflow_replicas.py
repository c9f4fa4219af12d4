"""The 95-item request worked through two API processes on one database, taking turns.

DESIGN §7: nothing in a process may be the only copy of state. Tokens, idempotency keys,
four-eyes approvals, escalations and the audit chain all live in the database, so a request
created on one replica, submitted on the other and decided on both must look the same from
either one at every step. Every write here goes to the replica that did not take the previous
one; right after it, the other replica must show the whole request and its readiness board
exactly as the writer left them. Tokens come from both replicas' `/oauth/token`, and each is
used on the replica that did not issue it. Runs on SQLite (two processes on one file) and on
PostgreSQL.
"""

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker import demo
from broker.demo import ECONOMIC_INDICATORS_SHEET
from support.processes import bootstrap_admin, client_token, create_client, start_replicas
from support.workflow import DECLARATION, all_item_codes

TIMEOUT_SECONDS = 30.0
READY = ("approved", "auto_approved")
CONDITIONS = {
    "aggregation_level": "district",
    "purpose": "经济运行监测",
    "no_reshare": True,
}
# client id: (department, roles)
CLIENTS = {
    "drc-requester": ("drc", ["requester"]),
    "tax-steward": ("tax", ["steward"]),
    "commerce-steward": ("commerce", ["steward"]),
    "stats-steward": ("stats", ["steward"]),
    "hrss-steward": ("hrss", ["steward"]),
    "platform-steward": ("platform", ["steward"]),
    "platform-steward2": ("platform", ["steward"]),
    "leader": ("platform", ["leader"]),
}


class Replicas:
    """Two API processes that take turns: each write goes to the replica that did not take the
    previous one, and each check reads from the replica that did not take the write."""

    def __init__(self, apis: tuple[httpx.Client, httpx.Client]) -> None:
        self.apis = apis
        self.last_writer = 1
        self.tokens: dict[str, str] = {}
        self.token_issuer: dict[str, int] = {}
        self.token_used_on: dict[str, set[int]] = {}
        self.request_id = ""
        self.expected: dict[str, str] = {}  # line id -> state

    def login(self, who: str, secret: str, on: int) -> None:
        self.tokens[who] = client_token(self.apis[on], who, secret)
        self.token_issuer[who] = on
        self.token_used_on[who] = set()

    def call(self, on: int, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.token_used_on[who].add(on)
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}
        return self.apis[on].request(method, path, headers=headers, **kwargs)

    def write(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.last_writer = 1 - self.last_writer
        return self.call(self.last_writer, who, method, path, **kwargs)

    def read(self, who: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.call(1 - self.last_writer, who, "GET", path, **kwargs)

    def request(self) -> dict[str, Any]:
        response = self.read("drc-requester", f"/v1/requests/{self.request_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def board(self) -> dict[str, Any]:
        response = self.read("drc-requester", "/v1/scenarios/econ/readiness")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def check(self, *written: dict[str, Any]) -> None:
        """The other replica shows the lines just written exactly as the writer answered them,
        every other line as expected, and a board that counts them."""
        for line in written:
            self.expected[line["id"]] = line["state"]
        seen = {line["id"]: line for line in self.request()["lines"]}
        for line in written:
            assert seen[line["id"]] == line, (self.last_writer, line["item_code"])
        assert {i: line["state"] for i, line in seen.items()} == self.expected
        ready = sum(state in READY for state in self.expected.values())
        assert self.board()["coverage"] == f"{ready}/{len(self.expected)} ready"

    def act(self, who: str, line_id: str, action: str, state: str, **body: Any) -> dict[str, Any]:
        response = self.write(who, "POST", f"/v1/lines/{line_id}/{action}", json=body or None)
        assert response.status_code == 200, (self.last_writer, response.text)
        line: dict[str, Any] = response.json()
        assert line["state"] == state, line
        self.check(line)
        return line

    def decide(self, who: str, line_id: str, state: str, **decision: Any) -> dict[str, Any]:
        return self.act(who, line_id, "decisions", state, **decision)


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[Replicas]:
    with ExitStack() as stack:
        apis = start_replicas(database_url, tmp_path, stack)
        clients = [
            stack.enter_context(httpx.Client(base_url=api.base_url, timeout=TIMEOUT_SECONDS))
            for api in apis
        ]
        yield Replicas((clients[0], clients[1]))


def _setup(r: Replicas, database_url: str) -> None:
    """The district's departments and the 95-item sheet, then one client account per role
    needed; the admin's writes alternate between the replicas, and so do the token issuers."""
    r.login("admin", bootstrap_admin(database_url), on=0)
    for department in demo.district():
        if department.kind == "platform":  # bootstrap made it; the district names it
            method, path = "PATCH", f"/v1/departments/{department.code}"
            body = {"name": department.name}
            headers = {"If-Match": r.read("admin", path).headers["etag"]}
        else:
            method, path = "POST", "/v1/departments"
            body = {"code": department.code, "name": department.name, "kind": department.kind}
            headers = {}
        response = r.write("admin", method, path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
    imported = r.write(
        "admin",
        "POST",
        "/v1/catalog/import",
        files={"file": ("目录.csv", ECONOMIC_INDICATORS_SHEET.read_bytes(), "text/csv")},
    )
    assert imported.status_code == 200, imported.text
    for name, (code, roles) in CLIENTS.items():
        r.last_writer = 1 - r.last_writer
        secret = create_client(
            r.apis[r.last_writer], r.tokens["admin"], name=name, department=code, roles=roles
        )
        r.login(name, secret, on=1 - r.last_writer)


def test_request_worked_on_two_replicas_in_turn_reads_the_same_on_both(
    database_url: str, replicas: Replicas
) -> None:
    r = replicas
    _setup(r, database_url)

    # The scenario and the draft on A, the submit on B, its retry (same key) on A.
    scenario = r.call(
        0,
        "drc-requester",
        "POST",
        "/v1/scenarios",
        json={"code": "econ", "name": "经济运行指标监测", "phase": "development"},
    )
    assert scenario.status_code == 201, scenario.text
    today = date.today()
    created = r.call(
        0,
        "drc-requester",
        "POST",
        "/v1/requests",
        json={
            "scenario_code": "econ",
            "title": "经济运行指标数据需求",
            "purpose": "经济运行监测分析与月度研判",
            "usage_start": today.isoformat(),
            "usage_end": (today + timedelta(days=365)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    r.request_id = created.json()["id"]
    pasted = r.call(
        0,
        "drc-requester",
        "POST",
        f"/v1/requests/{r.request_id}/lines",
        json={"item_codes": all_item_codes()},
    )
    assert pasted.status_code == 200, pasted.text
    assert pasted.json()["unknown_codes"] == []

    submit = f"/v1/requests/{r.request_id}/submit"
    key = {"Idempotency-Key": "econ-1"}
    submitted = r.call(1, "drc-requester", "POST", submit, headers=key)
    assert submitted.status_code == 200, submitted.text
    replayed = r.call(0, "drc-requester", "POST", submit, headers=key)
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == submitted.json()
    lines = {line["item_code"]: line["id"] for line in submitted.json()["lines"]}
    r.expected = {line["id"]: line["state"] for line in submitted.json()["lines"]}
    states = list(r.expected.values())
    assert (states.count("auto_approved"), states.count("pending_owner")) == (69, 24)
    assert states.count("rejected") == 2
    r.last_writer = 1  # B took the submit; A must show it
    r.check()

    # Tax: conditions offered on one replica and accepted on the other; a question round.
    for code in ("SW-SSSR", "SW-QYSDS"):
        r.decide(
            "tax-steward",
            lines[code],
            "approved_with_conditions",
            decision="approve_with_conditions",
            declaration=DECLARATION,
            conditions=CONDITIONS,
        )
        accepted = r.act("drc-requester", lines[code], "accept", "approved")
        assert accepted["grant_id"]
        assert accepted["conditions"]["purpose"] == "经济运行监测"
    for code in ("SW-ZZS", "SW-GRSDS", "SW-QJSS"):
        r.decide(
            "tax-steward", lines[code], "approved", decision="approve", declaration=DECLARATION
        )
    r.decide(
        "tax-steward", lines["SW-SSZS"], "needs_info", decision="needs_info", question="口径？"
    )
    r.act("drc-requester", lines["SW-SSZS"], "answer", "pending_owner", answer="可比口径")
    r.decide(
        "tax-steward", lines["SW-SSZS"], "approved", decision="approve", declaration=DECLARATION
    )

    # Commerce: a batch, conditions accepted and declined, a re-route, a refusal to coordination.
    batch = r.write(
        "commerce-steward",
        "POST",
        "/v1/decisions",
        json={
            "line_ids": [
                lines[c] for c in ("SWW-SHLSZE", "SWW-SHLSZS", "SWW-XEPL", "SWW-WLLS", "SWW-SQKL")
            ],
            "decision": "approve",
            "declaration": DECLARATION,
        },
    )
    assert batch.status_code == 200, batch.text
    assert {line["state"] for line in batch.json()["lines"]} == {"approved"}
    r.check(*batch.json()["lines"])
    for code in ("SWW-YJJJ", "SWW-CKZE", "SWW-JKZE"):
        r.decide(
            "commerce-steward", lines[code], "approved", decision="approve", declaration=DECLARATION
        )
    for code in ("SWW-JCKZE", "SWW-SJWZ"):
        r.decide(
            "commerce-steward",
            lines[code],
            "approved_with_conditions",
            decision="approve_with_conditions",
            declaration=DECLARATION,
            conditions=CONDITIONS,
        )
    r.act("drc-requester", lines["SWW-JCKZE"], "accept", "approved")
    r.act("drc-requester", lines["SWW-SJWZ"], "decline", "withdrawn")
    rerouted = r.decide(
        "commerce-steward",
        lines["SWW-FWMY"],
        "pending_owner",
        decision="not_held",
        reroute_to="stats",
    )
    assert rerouted["owner_department_code"] == "stats"
    r.decide(
        "stats-steward", lines["SWW-FWMY"], "approved", decision="approve", declaration=DECLARATION
    )
    r.decide(
        "commerce-steward",
        lines["SWW-KJDS"],
        "rejected",
        decision="reject",
        reason="跨境电商数据来自海关，本委不持有明细",
        legal_basis="《政务数据共享条例》第十五条",
        declaration=DECLARATION,
    )
    r.act("drc-requester", lines["SWW-KJDS"], "escalate", "escalated", reason="申请协调")
    r.act(
        "leader",
        lines["SWW-KJDS"],
        "leader-decision",
        "approved",
        decision="approve",
        note="商务委协调海关数据后提供",
        legal_basis="《政务数据共享条例》第十五条",
        meeting_reference="2026年第12次调度会",
    )

    # Statistics, HR; the platform's L4 lines need two stewards, here one on each replica.
    for who, code in (
        ("stats-steward", "TJ-FWYSR"),
        ("stats-steward", "TJ-FWYLR"),
        ("hrss-steward", "RS-YLBX"),
        ("hrss-steward", "RS-SYBX"),
    ):
        r.decide(who, lines[code], "approved", decision="approve", declaration=DECLARATION)
    l4 = {**DECLARATION, "sensitivity": "L4"}
    stewards = ("platform-steward", "platform-steward2")
    for code, (one, other) in zip(("PT-CZRK", "PT-HJRK"), (stewards, stewards[::-1]), strict=True):
        first = r.decide(one, lines[code], "pending_owner", decision="approve", declaration=l4)
        assert first["awaiting_second_approval"] is True
        # The other replica knows who approved first: the same steward cannot be the second.
        again = r.call(
            1 - r.last_writer,
            one,
            "POST",
            f"/v1/lines/{lines[code]}/decisions",
            json={"decision": "approve", "declaration": l4},
        )
        assert again.status_code == 409, again.text
        r.decide(other, lines[code], "approved", decision="approve", declaration=l4)

    # The two lines the law refused go to coordination; the leader settles them.
    for code in ("SW-YNSE", "SW-NSRSBH"):
        r.act("drc-requester", lines[code], "escalate", "escalated", reason="经济运行监测需要")
    r.act(
        "leader",
        lines["SW-YNSE"],
        "leader-decision",
        "awaiting_countersignature",
        decision="approve_with_conditions",
        note="按行业汇总后提供，不含企业明细",
        legal_basis="《政务数据共享条例》第十五条",
        meeting_reference="2026年第12次调度会",
        conditions={**CONDITIONS, "aggregation_level": "industry"},
    )
    r.act(
        "platform-steward2",
        lines["SW-YNSE"],
        "countersignature",
        "approved",
        decision="countersign",
    )
    r.act(
        "leader",
        lines["SW-NSRSBH"],
        "leader-decision",
        "rejected_final",
        decision="rejected_final",
        note="纳税人识别号属保密信息",
    )

    # Both replicas end with the same request, board, grants and audit chain head.
    finals = []
    for on in (0, 1):
        request = r.call(on, "drc-requester", "GET", f"/v1/requests/{r.request_id}").json()
        board = r.call(on, "drc-requester", "GET", "/v1/scenarios/econ/readiness").json()
        grants = r.call(on, "drc-requester", "GET", "/v1/grants", params={"limit": 200}).json()
        finals.append((request, board, grants))
    assert finals[0] == finals[1]
    request, board, grants = finals[0]
    assert board["coverage"] == "93/95 ready"
    assert grants["next_cursor"] is None
    assert {g["line_id"] for g in grants["items"]} == {
        line["id"] for line in request["lines"] if line["state"] in READY
    }
    unshared = [who for who, on in r.token_issuer.items() if 1 - on not in r.token_used_on[who]]
    assert unshared == [], "tokens never used on the replica that did not issue them"
    assert set(r.token_issuer.values()) == {0, 1}

    heads = []
    for on in (0, 1):
        verified = r.call(on, "admin", "GET", "/v1/audit/verify")
        assert verified.status_code == 200, verified.text
        body = verified.json()
        assert body["ok"] is True, body
        assert body["count"] == body["head_seq"]
        heads.append((body["head_seq"], body["head_hash"]))
    assert heads[0] == heads[1]
