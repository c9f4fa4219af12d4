"""The routing policy decides from a line's facts alone: no database, no application."""

from typing import Any

import broker.models  # noqa: F401  (every mapper configured, as the application has them)
from broker.config import Settings
from broker.requests import policy
from broker.requests.models import LineKind, LineState, RequestLine
from catalog.datasets.models import DataItem, Dataset
from catalog.vocab import DataGrade, Sensitivity, ShareType, UpdateCycle

SETTINGS = Settings(auto_approve_max_sensitivity="L2")


def _dataset(**facts: Any) -> Dataset:
    defaults: dict[str, Any] = {
        "code": "TJ-JJ",
        "title": "经济运行指标",
        "share_type": ShareType.unconditional,
        "share_condition": None,
        "legal_basis": None,
        "aggregated": True,
        "sensitivity": Sensitivity.L1,
        "data_grade": DataGrade.general,
        "update_cycle": UpdateCycle.monthly,
        "publication_lag_days": 15,
        "items": [],
    }
    return Dataset(**{**defaults, **facts})


def _line(dataset: Dataset, **facts: Any) -> RequestLine:
    return RequestLine(kind=LineKind.dataset, dataset=dataset, state=LineState.draft, **facts)


def test_unconditional_low_sensitivity_data_at_the_platform_is_approved_on_submit() -> None:
    decided = policy.route(line=_line(_dataset()), owner_name="统计局", settings=SETTINGS)
    assert decided.state == LineState.auto_approved
    assert not decided.starts_clock
    assert "approved on submit" in decided.reason


def test_data_not_shared_is_refused_on_its_legal_basis() -> None:
    dataset = _dataset(share_type=ShareType.none, legal_basis="《统计法》第九条")
    decided = policy.route(line=_line(dataset), owner_name="统计局", settings=SETTINGS)
    assert decided.state == LineState.rejected
    assert decided.reason == "不予共享 (not shared): 《统计法》第九条"
    assert not decided.starts_clock


def test_every_reason_to_ask_the_owner_is_named() -> None:
    dataset = _dataset(
        share_type=ShareType.conditional,
        share_condition="仅用于经济运行分析",
        aggregated=False,
        sensitivity=Sensitivity.L4,
    )
    decided = policy.route(line=_line(dataset), owner_name="税务局", settings=SETTINGS)
    assert decided.state == LineState.pending_owner
    assert decided.starts_clock
    assert decided.reason == (
        "To 税务局: conditional sharing (仅用于经济运行分析); no copy at the platform; "
        "sensitivity L4 above L2; two stewards must approve."
    )


def test_the_threshold_comes_from_the_settings() -> None:
    line = _line(_dataset(sensitivity=Sensitivity.L3))
    strict = policy.route(line=line, owner_name="统计局", settings=SETTINGS)
    lenient = policy.route(
        line=line, owner_name="统计局", settings=Settings(auto_approve_max_sensitivity="L3")
    )
    assert strict.state == LineState.pending_owner
    assert lenient.state == LineState.auto_approved


def test_a_dataset_is_as_sensitive_as_its_most_sensitive_item() -> None:
    dataset = _dataset(
        items=[
            DataItem(code="TJ-GDP", name="地区生产总值", sensitivity=None),
            DataItem(code="TJ-QY", name="企业名录", sensitivity=Sensitivity.L4),
        ]
    )
    whole = _line(dataset)
    one_item = RequestLine(
        kind=LineKind.item, dataset=dataset, item=dataset.items[0], state=LineState.draft
    )
    assert policy.sensitivity(whole) == Sensitivity.L4
    assert policy.needs_two_approvers(whole)
    assert policy.sensitivity(one_item) == Sensitivity.L1
    assert not policy.needs_two_approvers(one_item)


def test_important_data_needs_two_approvers_whatever_its_sensitivity() -> None:
    assert policy.needs_two_approvers(_line(_dataset(data_grade=DataGrade.important)))


def test_a_need_goes_to_the_department_believed_to_hold_it() -> None:
    need = RequestLine(kind=LineKind.need, need="企业用电量", state=LineState.draft)
    decided = policy.route(line=need, owner_name="发改委", settings=SETTINGS)
    assert decided.state == LineState.pending_registration
    assert decided.starts_clock
    assert decided.reason == "Not in the catalog: 发改委 to register it or say who holds it."


def test_a_slower_or_later_dataset_than_the_line_needs_is_flagged() -> None:
    dataset = _dataset(update_cycle=UpdateCycle.quarterly, publication_lag_days=30)
    line = _line(dataset, freshness_need={"update_cycle": "monthly", "within_days": 20})
    assert policy.freshness_warning(line) == (
        "updated quarterly, not monthly; published 30 days after period end, not within 20"
    )
    fresh_enough = _line(_dataset(), freshness_need={"update_cycle": "monthly", "within_days": 20})
    assert policy.freshness_warning(fresh_enough) is None
