"""The routing policy (DESIGN.md §4): where a submitted line goes and why, from its facts alone.

Pure functions of a line, its dataset and the settings (and of a caller, for who countersigns):
no database, no clock reading, no audit. `transitions` applies what they decide.
"""

from dataclasses import dataclass
from datetime import datetime

from broker.auth.models import Role
from broker.auth.principal import Principal
from broker.config import Settings
from broker.requests.models import LineKind, LineState, RequestLine
from catalog.datasets.freshness import CYCLE_LENGTH
from catalog.vocab import DataGrade, Sensitivity, ShareMethod, ShareType, UpdateCycle

S = LineState


@dataclass(frozen=True)
class Route:
    """Where a submitted line goes, the reason stored on it, and whether the owner's reply clock
    starts (it does whenever the line waits for a department)."""

    state: LineState
    reason: str
    starts_clock: bool
    refusal_basis: str | None = None


def sensitivity(line: RequestLine) -> Sensitivity:
    """An item's own level, else its dataset's; a whole dataset is as sensitive as its most
    sensitive item."""
    dataset = line.dataset
    assert dataset is not None
    if line.item is not None:
        return line.item.sensitivity or dataset.sensitivity
    levels = [i.sensitivity or dataset.sensitivity for i in dataset.items] or [dataset.sensitivity]
    return max(levels, key=lambda s: s.level)


def needs_two_approvers(line: RequestLine) -> bool:
    """Four-eyes: L4 data or `important`-grade datasets need two different stewards."""
    if line.dataset is None:
        return False
    return sensitivity(line) == Sensitivity.L4 or line.dataset.data_grade == DataGrade.important


def needs_countersignature(line: RequestLine) -> bool:
    """Issue 14: the data that needs four-eyes from its owner (L4 or `important`-grade) also
    needs a platform steward's countersignature when the leader settles it."""
    return needs_two_approvers(line)


def countersigns(principal: Principal) -> bool:
    """Who countersigns a leader's decision: a steward of the platform department. A platform
    admin runs the service and judges no data; a bureau's steward speaks for its bureau only."""
    return principal.department_is_platform and Role.steward in principal.roles


def in_platform_only(line: RequestLine) -> bool:
    """The catalog offers the line's dataset for in-platform use only (共享方式: 平台内使用 and
    nothing else)."""
    dataset = line.dataset
    return dataset is not None and set(dataset.share_methods) == {ShareMethod.in_platform}


def freshness_warning(line: RequestLine) -> str | None:
    """Where the dataset is updated less often or published later than the line needs."""
    need, dataset = line.freshness_need, line.dataset
    if not need or dataset is None:
        return None
    wanted = UpdateCycle(need["update_cycle"])
    have, want = CYCLE_LENGTH[dataset.update_cycle], CYCLE_LENGTH[wanted]
    problems = []
    if want is not None and (have is None or have > want):
        problems.append(f"updated {dataset.update_cycle.value}, not {wanted.value}")
    if dataset.publication_lag_days > need["within_days"]:
        problems.append(
            f"published {dataset.publication_lag_days} days after period end, "
            f"not within {need['within_days']}"
        )
    return "; ".join(problems) or None


def route(*, line: RequestLine, owner_name: str, settings: Settings) -> Route:
    """A need goes to the department believed to hold it; data the catalog marks 不予共享 is
    refused on its legal basis; unconditional, low-sensitivity data with a copy at the platform
    is approved at once; everything else waits for the owner, with every reason named."""
    if line.kind == LineKind.need:
        return Route(
            S.pending_registration,
            f"Not in the catalog: {owner_name} to register it or say who holds it.",
            starts_clock=True,
        )
    dataset = line.dataset
    assert dataset is not None
    level = sensitivity(line)
    threshold = Sensitivity(settings.auto_approve_max_sensitivity)
    if dataset.share_type == ShareType.none:
        return Route(
            S.rejected,
            f"不予共享 (not shared): {dataset.legal_basis}",
            starts_clock=False,
            refusal_basis=dataset.legal_basis,
        )
    if (
        dataset.share_type == ShareType.unconditional
        and dataset.aggregated
        and level.level <= threshold.level
    ):
        return Route(
            S.auto_approved,
            f"Unconditional, a copy is at the platform, sensitivity {level.value} "
            f"<= {threshold.value}: approved on submit.",
            starts_clock=False,
        )
    why = []
    if dataset.share_type == ShareType.conditional:
        why.append(f"conditional sharing ({dataset.share_condition})")
    if not dataset.aggregated:
        why.append("no copy at the platform")
    if level.level > threshold.level:
        why.append(f"sensitivity {level.value} above {threshold.value}")
    if needs_two_approvers(line):
        why.append("two stewards must approve")
    return Route(S.pending_owner, f"To {owner_name}: " + "; ".join(why) + ".", starts_clock=True)


def is_overdue(line: RequestLine, now: datetime) -> bool:
    """A line still waiting for its owner after the reply clock ran out."""
    return (
        line.state in (S.pending_owner, S.pending_registration)
        and line.due_at is not None
        and line.due_at < now
    )
