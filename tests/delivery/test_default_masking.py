"""Masked by default, from the catalog (issue 14): what an item declares leaves masked although no
approver wrote it; lifting a default takes a reason, and on L4 data both four-eyes approvers."""

import io
import json
import re
from datetime import date, timedelta
from typing import Any, cast

import httpx
import polars as pl
import pytest
from joserfc import jws
from joserfc.jwk import KeySet, KeySetSerialization

from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities
from support.workflow import DECLARATION

PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
HASH = re.compile(r"[0-9a-f]{32}")
REASON_A = "核验户籍人口需要逐人比对身份证号"
REASON_B = "经区数据安全复核，比对在平台内完成"
# What the police declare of their register: ID numbers hashed, phones partly hidden, the street,
# age, house code and date in clear; name and address say nothing (so L4 hashes them).
DECLARED = {
    "RK-SFZH": {"default_protection": "hash", "personal_info": "id_number"},
    "RK-SJHM": {"default_protection": "partial", "personal_info": "phone"},
    "RK-XM": {"personal_info": "name"},
    "RK-ZZ": {"personal_info": "address"},
    "RK-FWBM": {"default_protection": "none"},
    "RK-JD": {"default_protection": "none"},
    "RK-NL": {"default_protection": "none"},
    "RK-DJRQ": {"default_protection": "none"},
}


def register(**fields: Any) -> dict[str, Any]:
    items = [{**item, **DECLARED[item["code"]]} for item in POPULATION["items"]]
    return {**POPULATION, "items": items, **fields}


L4_REGISTER = register(sensitivity="L4")
L4 = {**DECLARATION, "sensitivity": "L4"}
L3 = {**DECLARATION, "sensitivity": "L3"}


class Police:
    """The police sub-bureau's stewards, Development and Reform's requester, one dataset line."""

    def __init__(self, client: httpx.AsyncClient, people: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.people = people
        self.line_id = ""
        self.request_id = ""
        self.receipt: dict[str, Any] = {}

    async def as_(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=self.people[who], **kwargs)

    async def publish(self, dataset: dict[str, Any]) -> None:
        created = await self.as_("a", "POST", "/v1/datasets", json=dataset)
        assert created.status_code == 201, created.text
        uploaded = await self.as_(
            "a",
            "POST",
            f"/v1/datasets/{dataset['code']}/releases",
            files={"file": ("人口.csv", as_csv(people(5)), "text/csv")},
            data=PERIOD,
        )
        assert uploaded.status_code == 201, uploaded.text

    async def submit(self) -> dict[str, Any]:
        await self.as_("requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "经济"})
        request = await self.as_(
            "requester",
            "POST",
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "人口数据需求",
                "purpose": "常住人口与经济运行关联分析",
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=180)).isoformat(),
                "lines": [{"dataset_code": POPULATION["code"]}],
            },
        )
        assert request.status_code == 201, request.text
        self.request_id = request.json()["id"]
        submitted = await self.as_("requester", "POST", f"/v1/requests/{self.request_id}/submit")
        assert submitted.status_code == 200, submitted.text
        line: dict[str, Any] = submitted.json()["lines"][0]
        self.line_id = line["id"]
        return line

    async def try_decide(
        self, who: str, declaration: dict[str, Any], **body: Any
    ) -> httpx.Response:
        return await self.as_(
            who,
            "POST",
            f"/v1/lines/{self.line_id}/decisions",
            json={"declaration": declaration, **body},
        )

    async def decide(self, who: str, declaration: dict[str, Any], **body: Any) -> dict[str, Any]:
        response = await self.try_decide(who, declaration, **body)
        assert response.status_code == 200, response.text
        decided: dict[str, Any] = response.json()
        return decided

    async def line_as_requester(self) -> dict[str, Any]:
        request = await self.as_("requester", "GET", f"/v1/requests/{self.request_id}")
        assert request.status_code == 200, request.text
        line: dict[str, Any] = request.json()["lines"][0]
        return line

    async def accept(self) -> None:
        accepted = await self.as_("requester", "POST", f"/v1/lines/{self.line_id}/accept")
        assert accepted.status_code == 200, accepted.text

    async def grant(self) -> dict[str, Any] | None:
        listed = await self.as_("requester", "GET", "/v1/grants", params={"limit": 200})
        assert listed.status_code == 200, listed.text
        return next((g for g in listed.json()["items"] if g["line_id"] == self.line_id), None)

    async def download(self) -> pl.DataFrame:
        grant = await self.grant()
        assert grant is not None, "no grant was issued"
        response = await self.as_(
            "requester", "GET", f"/v1/grants/{grant['id']}/data", params={"format": "csv"}
        )
        assert response.status_code == 200, response.text
        key_set = KeySet.import_key_set(
            cast(KeySetSerialization, (await self.client.get("/.well-known/jwks.json")).json())
        )
        signed = jws.deserialize_compact(response.headers["x-receipt"], key_set, ["ES256"])
        self.receipt = json.loads(signed.payload)
        return pl.read_csv(io.BytesIO(response.content), infer_schema=False)


@pytest.fixture
async def police(client: httpx.AsyncClient, identities: Identities) -> Police:
    staff = {
        who: await identities.headers(
            f"police-{who}", department="police", department_kind="bureau", roles=("steward",)
        )
        for who in ("a", "b")
    }
    staff["requester"] = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    staff["auditor"] = await identities.headers("auditor", roles=("auditor",))
    return Police(client, staff)


CLEAR_IDS = {p["RK-SFZH"] for p in people(5)}


def phones_partly_hidden(data: pl.DataFrame) -> bool:
    return data["RK-SJHM"].to_list() == [
        f"{p['RK-SJHM'][:3]}****{p['RK-SJHM'][-4:]}" for p in people(5)
    ]


async def test_l4_items_arrive_masked_although_neither_approver_wrote_masking(
    police: Police,
) -> None:
    await police.publish(L4_REGISTER)
    item = (await police.as_("a", "GET", f"/v1/datasets/{POPULATION['code']}")).json()["items"]
    shown = {i["code"]: (i["default_protection"], i["effective_protection"]) for i in item}
    assert shown["RK-SFZH"] == ("hash", "hash")
    assert shown["RK-XM"] == (None, "hash"), "an L4 item declaring nothing is hashed"
    assert shown["RK-JD"] == ("none", "none")

    await police.submit()
    first = await police.decide("a", L4, decision="approve")
    assert first["state"] == "pending_owner"
    second = await police.decide("b", L4, decision="approve")
    assert second["state"] == "approved"

    grant = await police.grant()
    assert grant is not None
    assert grant["conditions"]["masking"] == {
        "RK-SFZH": "hash",
        "RK-XM": "hash",
        "RK-SJHM": "partial",
        "RK-ZZ": "hash",
    }
    data = await police.download()
    assert not CLEAR_IDS & set(data["RK-SFZH"].to_list()), "ID numbers must not arrive in clear"
    assert all(HASH.fullmatch(v) for v in data["RK-SFZH"].to_list())
    assert all(HASH.fullmatch(v) for v in data["RK-XM"].to_list())
    assert phones_partly_hidden(data)
    assert data["RK-JD"].to_list() == [p["RK-JD"] for p in people(5)], "declared none: clear"
    terms = police.receipt["grant"]["terms"]
    assert (terms["masking"], terms["lift_masking"]) == (grant["conditions"]["masking"], {})


async def test_a_lift_by_the_first_approver_alone_does_not_unmask(police: Police) -> None:
    await police.publish(L4_REGISTER)
    await police.submit()
    lifted = await police.decide(
        "a",
        L4,
        decision="approve_with_conditions",
        conditions={"lift_masking": {"RK-SFZH": REASON_A}},
    )
    assert lifted["proposed_terms"]["conditions"]["lift_masking"] == {"RK-SFZH": REASON_A}
    plain = await police.decide("b", L4, decision="approve")
    assert plain["state"] == "approved", "a plain approval is no looser than a lift"

    grant = await police.grant()
    assert grant is not None
    assert grant["conditions"]["lift_masking"] == {}
    assert grant["conditions"]["masking"]["RK-SFZH"] == "hash"
    data = await police.download()
    assert all(HASH.fullmatch(v) for v in data["RK-SFZH"].to_list())


async def test_a_lift_by_the_second_approver_alone_waits_naming_the_difference(
    police: Police,
) -> None:
    await police.publish(L4_REGISTER)
    await police.submit()
    await police.decide("a", L4, decision="approve")
    second = await police.decide(
        "b",
        L4,
        decision="approve_with_conditions",
        conditions={"lift_masking": {"RK-SFZH": REASON_B}},
    )
    assert (second["state"], second["awaiting_second_approval"]) == ("pending_owner", True)
    differences = second["proposed_terms"]["differences"]
    assert len(differences) == 1
    assert differences[0].startswith("lift_masking:")
    assert "RK-SFZH" in differences[0]
    assert await police.grant() is None, "one approver's lift grants nothing"


async def test_a_lift_by_both_approvers_unmasks_and_the_grant_records_it(police: Police) -> None:
    await police.publish(L4_REGISTER)
    await police.submit()
    await police.decide(
        "a",
        L4,
        decision="approve_with_conditions",
        conditions={"lift_masking": {"RK-SFZH": REASON_A}},
    )
    agreed = await police.decide(
        "b",
        L4,
        decision="approve_with_conditions",
        conditions={"lift_masking": {"RK-SFZH": f"  {REASON_B}  "}},
    )
    assert agreed["state"] == "approved_with_conditions"

    line = await police.line_as_requester()
    masked = {m["column"]: m for m in line["masked_columns"]}
    assert masked["RK-SFZH"] == {
        "column": "RK-SFZH",
        "method": None,
        "source": "conditions",
        "default": "hash",
        "lift_reason": REASON_A,
    }
    assert (masked["RK-XM"]["method"], masked["RK-XM"]["source"]) == ("hash", "default")

    await police.accept()
    grant = await police.grant()
    assert grant is not None
    assert grant["conditions"]["lift_masking"] == {"RK-SFZH": REASON_A}
    assert "RK-SFZH" not in grant["conditions"]["masking"]
    data = await police.download()
    assert set(data["RK-SFZH"].to_list()) == CLEAR_IDS, "lifted by both: in clear"
    assert all(HASH.fullmatch(v) for v in data["RK-XM"].to_list()), "other defaults still apply"
    terms = police.receipt["grant"]["terms"]
    assert terms["lift_masking"] == {"RK-SFZH": REASON_A}, "the signed receipt says so"
    assert "RK-SFZH" not in terms["masking"]
    assert terms["masking"]["RK-XM"] == "hash"

    history = await police.as_(
        "auditor",
        "GET",
        "/v1/audit/events",
        params={"object_id": police.line_id, "action": "line.approve_with_conditions"},
    )
    assert history.status_code == 200, history.text
    reasons = [
        terms["lift_masking"]["RK-SFZH"]
        for event in history.json()["items"]
        for key in ("conditions", "approver_conditions")
        if (terms := event["details"].get(key))
    ]
    assert {REASON_A, REASON_B} <= set(reasons), "both approvers' reasons are on record"


@pytest.mark.parametrize("reason", ["", "   "])
async def test_lifting_a_default_without_a_reason_is_refused(police: Police, reason: str) -> None:
    await police.publish(L4_REGISTER)
    await police.submit()
    refused = await police.try_decide(
        "a",
        L4,
        decision="approve_with_conditions",
        conditions={"lift_masking": {"RK-SFZH": reason}},
    )
    assert refused.status_code == 422, refused.text
    assert any("lift_masking" in e["location"] for e in refused.json()["errors"])
    assert (await police.line_as_requester())["awaiting_second_approval"] is False


@pytest.mark.parametrize(
    ("conditions", "location", "words"),
    [
        ({"lift_masking": {"RK-JD": "需要街道名称"}}, "lift_masking.RK-JD", "nothing to lift"),
        (
            {"masking": {"RK-SFZH": "partial"}, "lift_masking": {"RK-SFZH": "保留前后几位"}},
            "lift_masking.RK-SFZH",
            "both masked and lifted",
        ),
        ({"lift_masking": {"RK-NONE": "不存在的列"}}, "body.conditions", "RK-NONE"),
    ],
)
async def test_a_lift_that_cannot_apply_is_refused_naming_the_column(
    police: Police, conditions: dict[str, Any], location: str, words: str
) -> None:
    await police.publish(L4_REGISTER)
    await police.submit()
    refused = await police.try_decide(
        "a", L4, decision="approve_with_conditions", conditions=conditions
    )
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [e["location"].removeprefix("body.conditions.") for e in errors] == [
        location.removeprefix("body.conditions.")
    ]
    assert words in refused.json()["detail"] + errors[0]["message"]


async def test_the_requester_sees_what_arrives_masked_before_accepting(police: Police) -> None:
    await police.publish(register(sensitivity="L3"))
    line = await police.submit()
    assert [(m["column"], m["method"], m["source"]) for m in line["masked_columns"]] == [
        ("RK-SFZH", "hash", "default"),
        ("RK-SJHM", "partial", "default"),
    ], "before any decision the line already shows the catalog's defaults"

    columns = ["RK-SFZH", "RK-XM", "RK-SJHM", "RK-JD"]
    decided = await police.decide(
        "a",
        L3,
        decision="approve_with_conditions",
        conditions={"columns": columns, "masking": {"RK-XM": "partial", "RK-SFZH": "partial"}},
    )
    assert decided["state"] == "approved_with_conditions"
    shown = await police.line_as_requester()
    assert shown["masked_columns"] == [
        {
            "column": "RK-SFZH",
            "method": "hash",
            "source": "default",
            "default": "hash",
            "lift_reason": None,
        },
        {
            "column": "RK-XM",
            "method": "partial",
            "source": "conditions",
            "default": None,
            "lift_reason": None,
        },
        {
            "column": "RK-SJHM",
            "method": "partial",
            "source": "default",
            "default": "partial",
            "lift_reason": None,
        },
    ]
    await police.accept()
    grant = await police.grant()
    assert grant is not None
    assert grant["conditions"]["masking"] == {
        m["column"]: m["method"] for m in shown["masked_columns"]
    }, "the grant holds what the line showed"


async def test_a_declared_partial_default_masks_a_single_approvers_grant(police: Police) -> None:
    await police.publish(register(sensitivity="L3"))
    await police.submit()
    approved = await police.decide("a", L3, decision="approve")
    assert approved["state"] == "approved", "L3, general grade: one steward decides"
    data = await police.download()
    assert phones_partly_hidden(data)
    assert all(HASH.fullmatch(v) for v in data["RK-SFZH"].to_list())
    assert data["RK-XM"].to_list() == [p["RK-XM"] for p in people(5)], "L3, nothing declared"


async def test_a_single_approver_may_lift_a_default_below_l4(police: Police) -> None:
    await police.publish(register(sensitivity="L3"))
    await police.submit()
    await police.decide(
        "a",
        L3,
        decision="approve_with_conditions",
        conditions={"lift_masking": {"RK-SJHM": "需要电话回访"}},
    )
    await police.accept()
    data = await police.download()
    assert data["RK-SJHM"].to_list() == [p["RK-SJHM"] for p in people(5)]
    assert all(HASH.fullmatch(v) for v in data["RK-SFZH"].to_list()), "not lifted: still hashed"


async def test_an_auto_approved_line_gets_the_declared_defaults(police: Police) -> None:
    await police.publish(
        register(
            sensitivity="L2",
            share_type="unconditional",
            share_condition=None,
            aggregated=True,
        )
    )
    line = await police.submit()
    assert line["state"] == "auto_approved", line["route_reason"]
    data = await police.download()
    assert phones_partly_hidden(data)
    assert all(HASH.fullmatch(v) for v in data["RK-SFZH"].to_list())
