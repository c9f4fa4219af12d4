"""Freshness is computed from the last update, the update cycle and the publication lag."""

from datetime import UTC, datetime, timedelta

from catalog.vocab import Freshness, UpdateCycle

# Nominal length of one cycle. Months and years vary; a nominal length keeps the rule simple and
# the same on every database, and errs towards "due" a day or two early, never late.
CYCLE_LENGTH: dict[UpdateCycle, timedelta | None] = {
    UpdateCycle.realtime: timedelta(days=1),
    UpdateCycle.daily: timedelta(days=1),
    UpdateCycle.weekly: timedelta(days=7),
    UpdateCycle.dekad: timedelta(days=10),
    UpdateCycle.monthly: timedelta(days=31),
    UpdateCycle.quarterly: timedelta(days=92),
    UpdateCycle.semiannual: timedelta(days=183),
    UpdateCycle.annual: timedelta(days=366),
    UpdateCycle.irregular: None,
}


def deadlines(
    last_updated: datetime | None, cycle: UpdateCycle, lag_days: int
) -> tuple[datetime | None, datetime | None]:
    """When the next update becomes due, and when the data turns stale.

    Due one cycle plus the publication lag after the last update (the next period's data should
    be out by then); stale one further cycle later (a whole period missed). Irregular data is
    never due. Never updated at all counts as stale (both deadlines at the epoch).
    """
    length = CYCLE_LENGTH[cycle]
    if last_updated is None:
        epoch = datetime.fromtimestamp(0, UTC)
        return epoch, epoch
    if length is None:
        return None, None
    try:
        due = last_updated + length + timedelta(days=lag_days)
        return due, due + length
    except OverflowError:
        # Only a date stored before input was bounded to 1900..2200 gets here: past the
        # calendar's end nothing can fall due.
        return None, None


def freshness_at(now: datetime, due_at: datetime | None, stale_at: datetime | None) -> Freshness:
    if due_at is None or now < due_at:
        return Freshness.fresh
    if stale_at is None or now < stale_at:
        return Freshness.due
    return Freshness.stale
