"""Working-day clocks on the Chinese statutory calendar (Asia/Shanghai).

Every clock the broker counts in working days uses these: the owner's reply clock
(broker/requests/clock.py, 国发〔2016〕51号 art. 14) and the delivery clock after approval
(broker/grants). Working days follow the State Council's yearly holiday notice, make-up workdays
(调休) included, as published in the chinese-calendar package; for years it does not know yet,
only weekends are skipped and the clock says so (`clock_basis: weekends_only`).
"""

import enum
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


class ClockBasis(enum.StrEnum):
    statutory = "statutory"
    weekends_only = "weekends_only"


def _is_workday(day: date) -> tuple[bool, ClockBasis]:
    try:
        return bool(chinese_calendar.is_workday(day)), ClockBasis.statutory
    # chinese-calendar raises this for years whose holiday notice it does not have yet
    except NotImplementedError:
        return day.weekday() < 5, ClockBasis.weekends_only


def add_working_days(start: datetime, days: int) -> tuple[datetime, ClockBasis]:
    """The end of the `days`-th working day after `start`'s day, in Shanghai time.

    A request routed on Friday afternoon with 10 working days is due at the end of the tenth
    working day after that Friday; the day of routing itself never counts.
    """
    day = start.astimezone(SHANGHAI).date()
    basis = ClockBasis.statutory
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        workday, day_basis = _is_workday(day)
        if day_basis == ClockBasis.weekends_only:
            basis = ClockBasis.weekends_only
        if workday:
            counted += 1
    end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=SHANGHAI)
    return end_of_day, basis


def working_days_between(start: datetime, end: datetime) -> int:
    """Working days after `start`'s day up to and including `end`'s day (0 if end <= start)."""
    first = start.astimezone(SHANGHAI).date()
    last = end.astimezone(SHANGHAI).date()
    count = 0
    day = first
    while day < last:
        day += timedelta(days=1)
        if _is_workday(day)[0]:
            count += 1
    return count
