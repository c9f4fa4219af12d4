"""Four-eyes approval: a grant only on terms both stewards agreed to, never looser than either's."""

import io
from datetime import date, timedelta
from typing import Any

import httpx
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.grants.schemas import Conditions
from broker.grants.terms import combine, loosenings
from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities
from support.workflow import DECLARATION

L4 = {**DECLARATION, "sensitivity": "L4"}
# Names declared clear by default, so the approvers' own partial mask is what arrives; the
# undeclared ID numbers are hashed by default, as every L4 item is (tests/delivery/
# test_default_masking.py).
SENSITIVE_POPULATION = {
    **POPULATION,
    "sensitivity": "L4",
    "items": [
        {**item, "default_protection": "none"} if item["code"] == "RK-XM" else item
        for item in POPULATION["items"]
    ],
}
PERIOD = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
STRICT = {
    "columns": ["RK-SFZH", "RK-XM", "RK-JD"],
    "masking": {"RK-SFZH": "hash", "RK-XM": "partial"},
}


class Bureau:
    """The police sub-bureau's three stewards, Development and Reform's requester, one line."""

    def __init__(self, client: httpx.AsyncClient, people: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.people = people
        self.line_id = ""

    async def as_(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=self.people[who], **kwargs)

    async def decide(self, who: str, **body: Any) -> dict[str, Any]:
        response = await self.as_(
            who, "POST", f"/v1/lines/{self.line_id}/decisions", json={"declaration": L4, **body}
        )
        assert response.status_code == 200, response.text
        decided: dict[str, Any] = response.json()
        return decided

    async def grant(self) -> dict[str, Any] | None:
        listed = await self.as_("requester", "GET", "/v1/grants", params={"limit": 200})
        assert listed.status_code == 200, listed.text
        return next((g for g in listed.json()["items"] if g["line_id"] == self.line_id), None)


@pytest.fixture
async def b(client: httpx.AsyncClient, identities: Identities) -> Bureau:
    staff = {
        who: await identities.headers(
            f"police-{who}", department="police", department_kind="bureau", roles=("steward",)
        )
        for who in ("a", "b", "c")
    }
    staff["requester"] = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    b = Bureau(client, staff)
    created = await b.as_("a", "POST", "/v1/datasets", json=SENSITIVE_POPULATION)
    assert created.status_code == 201, created.text
    uploaded = await b.as_(
        "a",
        "POST",
        f"/v1/datasets/{POPULATION['code']}/releases",
        files={"file": ("人口.csv", as_csv(people(5)), "text/csv")},
        data=PERIOD,
    )
    assert uploaded.status_code == 201, uploaded.text
    await b.as_("requester", "POST", "/v1/scenarios", json={"code": "econ", "name": "经济运行"})
    request = await b.as_(
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
    submitted = await b.as_("requester", "POST", f"/v1/requests/{request.json()['id']}/submit")
    line = submitted.json()["lines"][0]
    assert line["state"] == "pending_owner", line
    b.line_id = line["id"]
    return b


async def _download(b: Bureau, grant_id: str) -> pl.DataFrame:
    response = await b.as_(
        "requester", "GET", f"/v1/grants/{grant_id}/data", params={"format": "csv"}
    )
    assert response.status_code == 200, response.text
    return pl.read_csv(io.BytesIO(response.content), infer_schema=False)


async def test_a_plain_second_approval_does_not_drop_the_first_stewards_terms(b: Bureau) -> None:
    first = await b.decide("a", decision="approve_with_conditions", conditions=STRICT)
    assert (first["state"], first["awaiting_second_approval"]) == ("pending_owner", True)
    shown = first["proposed_terms"]
    assert shown["conditions"]["masking"] == STRICT["masking"]
    request = await b.as_("requester", "GET", f"/v1/requests/{first['request_id']}")
    assert (
        request.json()["lines"][0]["proposed_terms"]["conditions"]["columns"] == STRICT["columns"]
    )

    looser = await b.decide("b", decision="approve")
    assert looser["state"] == "pending_owner"
    assert await b.grant() is None, "only one steward agreed to hand out every column in clear"
    differences = looser["proposed_terms"]["differences"]
    assert [d.split(":")[0] for d in differences] == ["columns", "masking"]
    assert "RK-SFZH: clear instead of hash" in differences[1]
    assert (
        looser["proposed_terms"]["supersedes_by"] == shown["by"] != looser["proposed_terms"]["by"]
    )
    again = await b.as_(
        "b",
        "POST",
        f"/v1/lines/{b.line_id}/decisions",
        json={"decision": "approve", "declaration": L4},
    )
    assert again.status_code == 409

    agreed = await b.decide("a", decision="approve_with_conditions", conditions=STRICT)
    assert agreed["state"] == "approved_with_conditions"
    assert agreed["conditions"]["columns"] == STRICT["columns"]
    accepted = await b.as_("requester", "POST", f"/v1/lines/{b.line_id}/accept")
    assert accepted.status_code == 200, accepted.text
    grant = await b.grant()
    assert grant is not None
    assert grant["columns"] == STRICT["columns"]
    data = await _download(b, grant["id"])
    assert data.columns == STRICT["columns"]
    clear_ids = {p["RK-SFZH"] for p in people(5)}
    assert not clear_ids & set(data["RK-SFZH"].to_list()), "ID numbers must arrive hashed"
    assert all("*" in name for name in data["RK-XM"].to_list())


async def test_a_stricter_second_approval_takes_effect_as_proposed(b: Bureau) -> None:
    end = (date.today() + timedelta(days=30)).isoformat()
    await b.decide(
        "a", decision="approve_with_conditions", conditions={**STRICT, "valid_until": end}
    )
    stricter = {
        "columns": ["RK-SFZH", "RK-JD"],
        "masking": {"RK-SFZH": "null", "RK-XM": "hash"},
        "valid_until": (date.today() + timedelta(days=10)).isoformat(),
        "in_platform_only": False,
        "no_reshare": True,
    }
    second = await b.decide("b", decision="approve_with_conditions", conditions=stricter)
    assert second["state"] == "approved_with_conditions"
    effective = second["conditions"]
    assert effective["columns"] == ["RK-SFZH", "RK-JD"]
    assert effective["masking"] == {"RK-SFZH": "null", "RK-XM": "hash"}
    assert (effective["valid_until"], effective["no_reshare"]) == (stricter["valid_until"], True)
    await b.as_("requester", "POST", f"/v1/lines/{b.line_id}/accept")
    grant = await b.grant()
    assert grant is not None
    assert grant["valid_until"].startswith(stricter["valid_until"])
    data = await _download(b, grant["id"])
    assert data.columns == ["RK-SFZH", "RK-JD"]
    assert data["RK-SFZH"].null_count() == data.height


async def test_a_third_steward_may_agree_to_looser_terms_the_first_did_not_accept(
    b: Bureau,
) -> None:
    await b.decide("a", decision="approve_with_conditions", conditions=STRICT)
    await b.decide("b", decision="approve")
    third = await b.decide("c", decision="approve")
    assert third["state"] == "approved"
    grant = await b.grant()
    assert grant is not None
    assert len(grant["columns"]) == len(POPULATION["items"])


async def test_a_plain_approval_is_looser_than_conditions_in_a_single_steward_line() -> None:
    assert loosenings(Conditions(), Conditions.model_validate(STRICT)) != []
    assert loosenings(Conditions.model_validate(STRICT), Conditions()) == []


def test_a_lift_of_default_masking_is_looser_unless_the_other_lifted_it_too() -> None:
    lifted = Conditions(lift_masking={"RK-SFZH": "逐人比对"})
    assert loosenings(lifted, Conditions()) == [
        "lift_masking: lifts the default masking of RK-SFZH, which the other approval keeps"
    ]
    assert loosenings(Conditions(), lifted) == []
    assert loosenings(Conditions(lift_masking={"RK-SFZH": "另一理由"}), lifted) == []
    alone = combine(lifted, Conditions())
    assert alone is not None
    assert alone.lift_masking == {}, "a lift by one approver alone never unmasks"
    both = combine(lifted, Conditions(lift_masking={"RK-SFZH": "另一理由"}))
    assert both is not None
    assert both.lift_masking == {"RK-SFZH": "逐人比对"}


# ---------------------------------------------------------------- the rule as a property

COLUMNS = ["A", "B", "C", "D"]
terms = st.builds(
    Conditions,
    columns=st.none() | st.lists(st.sampled_from(COLUMNS), min_size=1, unique=True),
    masking=st.dictionaries(st.sampled_from(COLUMNS), st.sampled_from(["hash", "partial", "null"])),
    lift_masking=st.dictionaries(st.sampled_from(COLUMNS), st.sampled_from(["核验", "比对"])),
    row_filter=st.lists(
        st.fixed_dictionaries(
            {
                "column": st.sampled_from(COLUMNS),
                "op": st.sampled_from(["eq", "gt"]),
                "value": st.integers(0, 3),
            }
        ),
        max_size=3,
    ),
    aggregation_level=st.none() | st.sampled_from(["A", "district"]),
    purpose=st.none() | st.sampled_from(["监测", "研判"]),
    valid_until=st.none() | st.dates(date(2027, 1, 1), date(2027, 1, 10)),
    no_reshare=st.booleans(),
    in_platform_only=st.booleans(),
)


@given(terms, terms)
def test_combined_terms_are_never_looser_than_either_approvers(
    a: Conditions, b: Conditions
) -> None:
    combined = combine(a, b)
    if combined is None:
        assert loosenings(a, b), "only terms that conflict cannot combine"
        assert loosenings(b, a), "only terms that conflict cannot combine"
        return
    assert loosenings(combined, a) == []
    assert loosenings(combined, b) == []


@given(terms, terms)
def test_an_approval_no_looser_than_the_proposal_takes_effect_unchanged(
    a: Conditions, b: Conditions
) -> None:
    if loosenings(b, a):
        return
    combined = combine(a, b)
    assert combined is not None
    assert loosenings(b, combined) == []
    assert loosenings(combined, b) == []
