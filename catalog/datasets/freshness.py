"""Freshness: when a dataset's next data is due, and when it turns stale.

The rule follows the period the data covers, not the moment it was uploaded: a 2023-Q1 file
uploaded today is old data and leaves a quarterly dataset stale.

Periods are calendar periods. The period after one ending on E ends on `next_period_end(E, cycle)`:

- daily, realtime: E + 1 day; weekly: E + 7 days;
- dekad (旬): the end of the dekad after E's, i.e. the 10th, the 20th or the month's last day;
- monthly: the last day of the month after E's month;
- quarterly: the last day of the quarter after E's quarter (31 Mar, 30 Jun, 30 Sep, 31 Dec);
- semiannual: the end of the half-year after E's (30 Jun or 31 Dec);
- annual: 31 Dec of the year after E's;
- irregular: no next period: never due.

A period end that is not a calendar boundary (a release for 1-15 March) counts as inside its
period: the next one is still the period after (April), as a partial period does not complete one.

The next period's data is due at 00:00 Asia/Shanghai on that period's end plus the publication
lag, and the dataset turns stale one period later. A monthly dataset with a 15-day lag whose latest
period is March is due on 15 May (April's data: 30 Apr + 15), stale on 15 June (May's missed too).
Calendar days throughout: the lag is the owner's own declaration and holidays do not move it.

A dataset with no period yet (registered from a catalog sheet, no release accepted) keeps the
nominal rule from its declared last update: due one nominal cycle plus the lag after it, stale one
further cycle later; never updated at all counts as stale.
"""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from catalog.vocab import Freshness, UpdateCycle

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Nominal length of one cycle, for datasets without a period and for comparing cycles. Months and
# years vary; a nominal length errs towards "due" a day or two early, never late.
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

# Calendar cycles counted in months, their blocks aligned to January.
MONTHS_PER_PERIOD: dict[UpdateCycle, int] = {
    UpdateCycle.monthly: 1,
    UpdateCycle.quarterly: 3,
    UpdateCycle.semiannual: 6,
    UpdateCycle.annual: 12,
}


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _end_of_block_after(day: date, months: int) -> date:
    """The last day of the `months`-long block (aligned to January) after the one holding `day`."""
    index = day.year * 12 + day.month - 1
    block_start = index - (day.month - 1) % months
    last = block_start + 2 * months - 1
    return _month_end(last // 12, last % 12 + 1)


def _end_of_dekad_after(day: date) -> date:
    if day.day <= 10:
        return day.replace(day=20)
    if day.day <= 20:
        return _month_end(day.year, day.month)
    following = day.replace(day=1) + timedelta(days=31)
    return following.replace(day=10)


def next_period_end(end: date, cycle: UpdateCycle) -> date | None:
    """The last day of the period after the one ending on (or holding) `end`; none if irregular."""
    if cycle in (UpdateCycle.daily, UpdateCycle.realtime):
        return end + timedelta(days=1)
    if cycle == UpdateCycle.weekly:
        return end + timedelta(days=7)
    if cycle == UpdateCycle.dekad:
        return _end_of_dekad_after(end)
    months = MONTHS_PER_PERIOD.get(cycle)
    return None if months is None else _end_of_block_after(end, months)


def _opening(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def period_deadlines(
    latest_period_end: date, cycle: UpdateCycle, lag_days: int
) -> tuple[datetime | None, datetime | None]:
    """Due when the next period's data should be out, stale when the one after should be."""
    lag = timedelta(days=lag_days)
    try:
        following = next_period_end(latest_period_end, cycle)
        after = None if following is None else next_period_end(following, cycle)
        if following is None or after is None:
            return None, None
        return _opening(following + lag), _opening(after + lag)
    except (OverflowError, ValueError):
        # Past the end of Python's calendar nothing can fall due (periods are bounded to
        # 1900..2200 on input; only a row written before that bound could get here).
        return None, None


def deadlines(
    last_updated: datetime | None,
    cycle: UpdateCycle,
    lag_days: int,
    *,
    latest_period_end: date | None = None,
) -> tuple[datetime | None, datetime | None]:
    """When the next update becomes due, and when the data turns stale.

    From the latest period covered when there is one (`period_deadlines`); otherwise one nominal
    cycle plus the publication lag after the last update, stale one further cycle later.
    Irregular data is never due. Never updated at all counts as stale (both at the epoch).
    """
    if latest_period_end is not None:
        return period_deadlines(latest_period_end, cycle, lag_days)
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
