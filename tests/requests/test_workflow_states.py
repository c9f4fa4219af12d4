"""Random sequences of allowed and forbidden actions never break the state machine.

The model below is written from DESIGN.md §4, not from the service code: for each action, who may
take it and which state it moves a line from and to. Hypothesis drives the real HTTP API with
random actions by random people; after every step the line must have moved exactly as the model
allows (or not at all when refused), and a grant must exist exactly for approved lines.
"""

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from broker.app import create_app
from broker.config import Settings
from support.identities import Identities
from support.workflow import DECLARATION, District, bundle, district

GRANTED = {"approved", "auto_approved"}
BEFORE_GRANT = {
    "pending_owner",
    "pending_registration",
    "needs_info",
    "approved_with_conditions",
    "rejected",
    "escalated",
    "awaiting_countersignature",
}
# action: (role needed, {from state: allowed next states})
MODEL: dict[str, tuple[str, dict[str, set[str]]]] = {
    "approve": ("steward", {"pending_owner": {"approved", "pending_owner"}}),
    "approve_with_conditions": (
        "steward",
        {"pending_owner": {"approved_with_conditions", "pending_owner"}},
    ),
    "needs_info": ("steward", {"pending_owner": {"needs_info"}}),
    "reject": ("steward", {"pending_owner": {"rejected"}}),
    "answer": ("requester", {"needs_info": {"pending_owner"}}),
    "accept": ("requester", {"approved_with_conditions": {"approved"}}),
    "decline": ("requester", {"approved_with_conditions": {"withdrawn"}}),
    "withdraw": ("requester", {s: {"withdrawn"} for s in BEFORE_GRANT}),
    "escalate": ("requester", {"rejected": {"escalated"}}),
    # L4 and important-grade data wait for a platform steward's countersignature
    "leader_approve": ("leader", {"escalated": {"approved", "awaiting_countersignature"}}),
    "leader_reject": ("leader", {"escalated": {"rejected_final"}}),
    "countersign": ("platform-steward", {"awaiting_countersignature": {"approved"}}),
    "refuse_countersignature": (
        "platform-steward",
        {"awaiting_countersignature": {"rejected_final"}},
    ),
}
# A platform steward decides its own department's lines and countersigns the leader's.
ROLES_OF = {
    "tax-steward": {"steward"},
    "tax-steward2": {"steward"},
    "platform-steward": {"steward", "platform-steward"},
    "platform-steward2": {"steward", "platform-steward"},
    "commerce-steward": {"steward"},
    "drc-requester": {"requester"},
    "leader": {"leader"},
}
CODES = ["SW-SSSR", "SW-ZZS", "PT-CZRK", "SW-YNSE", "TJ-GDP"]


def call_for(action: str, line_id: str) -> tuple[str, dict[str, Any] | None]:
    owner: dict[str, dict[str, Any]] = {
        "approve": {"decision": "approve", "declaration": DECLARATION},
        "approve_with_conditions": {
            "decision": "approve_with_conditions",
            "declaration": DECLARATION,
            "conditions": {"purpose": "监测"},
        },
        "needs_info": {"decision": "needs_info", "question": "口径？"},
        "reject": {
            "decision": "reject",
            "reason": "不予提供",
            "legal_basis": "《政务数据共享条例》第十五条",
            "declaration": DECLARATION,
        },
    }
    if action in owner:
        return f"/v1/lines/{line_id}/decisions", owner[action]
    if action == "answer":
        return f"/v1/lines/{line_id}/answer", {"answer": "现价口径"}
    if action in ("accept", "decline", "withdraw"):
        return f"/v1/lines/{line_id}/{action}", None
    if action == "escalate":
        return f"/v1/lines/{line_id}/escalate", {"reason": "申请协调"}
    if action == "countersign":
        return f"/v1/lines/{line_id}/countersignature", {"decision": "countersign"}
    if action == "refuse_countersignature":
        return f"/v1/lines/{line_id}/countersignature", {"decision": "refuse", "note": "不予会签"}
    decision = "approve" if action == "leader_approve" else "rejected_final"
    override = {
        "legal_basis": "《政务数据共享条例》第十五条",
        "meeting_reference": "2026年第12次调度会",
    }
    return f"/v1/lines/{line_id}/leader-decision", {
        "decision": decision,
        "note": "协调结论",
        **override,
    }


def seed(database_url: str) -> dict[str, dict[str, str]]:
    async def run() -> dict[str, dict[str, str]]:
        app = create_app(Settings(database_url=database_url))
        identities = Identities(app)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        admin_headers = await identities.headers("admin")
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://t", headers=admin_headers
            ) as admin,
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            d = await district(admin, client, identities)
            await bundle(d, ["TJ-GDP"])  # creates the scenario once
        await app.state.engine.dispose()
        return d.people

    return asyncio.run(run())


def test_random_action_sequences_never_break_the_state_machine(database_url: str) -> None:
    people = seed(database_url)

    class LineMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.app = create_app(Settings(database_url=database_url))
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            self.http = httpx.AsyncClient(transport=transport, base_url="http://t")
            self.lines: dict[str, str] = {}
            self.request_id = ""

        def run(self, coroutine: Any) -> Any:
            return self.loop.run_until_complete(coroutine)

        def teardown(self) -> None:
            self.run(self.http.aclose())
            self.run(self.app.state.engine.dispose())
            self.loop.close()

        def as_(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
            response: httpx.Response = self.run(
                self.http.request(method, path, json=body, headers=people[who])
            )
            return response

        def states(self) -> dict[str, dict[str, Any]]:
            body = self.as_("drc-requester", "GET", f"/v1/requests/{self.request_id}").json()
            return {line["id"]: line for line in body["lines"]}

        @initialize()
        def submit_a_request(self) -> None:
            d = District(
                admin=self.http, client=self.http, identities=Identities(self.app), people=people
            )
            draft = self.run(bundle(d, CODES))
            self.request_id = draft["id"]
            submitted = self.as_("drc-requester", "POST", f"/v1/requests/{draft['id']}/submit")
            assert submitted.status_code == 200, submitted.text
            self.lines = {line["item_code"]: line["id"] for line in submitted.json()["lines"]}

        @rule(
            code=st.sampled_from(CODES),
            action=st.sampled_from(sorted(MODEL)),
            fitting=st.sampled_from([True, True, True, False]),
            pick=st.integers(min_value=0, max_value=20),
        )
        def act(self, code: str, action: str, fitting: bool, pick: int) -> None:
            """Mostly someone with the right role (so transitions happen), sometimes anyone."""
            candidates = sorted(
                w for w, roles in ROLES_OF.items() if MODEL[action][0] in roles or not fitting
            )
            who = candidates[pick % len(candidates)]
            line_id = self.lines[code]
            before = self.states()[line_id]["state"]
            path, body = call_for(action, line_id)
            response = self.as_(who, "POST", path, body)
            after = self.states()[line_id]["state"]
            assert response.status_code < 500, response.text
            role, transitions = MODEL[action]
            if response.status_code == 200:
                assert role in ROLES_OF[who], f"{who} did {action}"
                assert after in transitions.get(before, set()), f"{action}: {before} -> {after}"
            else:
                assert response.status_code in (403, 404, 409, 422), response.text
                assert after == before, f"refused {action} still moved {before} -> {after}"

        @invariant()
        def grants_exist_exactly_for_approved_lines(self) -> None:
            if not self.request_id:
                return
            for line in self.states().values():
                assert (line["grant_id"] is not None) == (line["state"] in GRANTED), line

    LineMachine.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    LineMachine.TestCase().runTest()
