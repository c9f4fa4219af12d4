"""Working-day clocks across the 2026 Spring Festival and National Day, make-up days included."""

from datetime import datetime

import pytest

from broker.requests.clock import SHANGHAI, ClockBasis, add_working_days, working_days_between


def at(day: str, hour: int = 15) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("routed", "days", "due", "why"),
    [
        (
            "2026-02-13",
            10,
            "2026-03-05",
            "Spring Festival 2/15-23 off; Sat 2/14, 2/28 work",
        ),
        ("2026-02-13", 1, "2026-02-14", "the make-up Saturday before the holiday counts"),
        ("2026-02-14", 1, "2026-02-24", "nine holiday days are skipped"),
        ("2026-09-28", 10, "2026-10-16", "National Day 10/1-10/7 off; Sat 10/10 works"),
        ("2026-09-18", 1, "2026-09-20", "Sunday 9/20 is a make-up workday"),
        ("2026-09-30", 1, "2026-10-08", "the first working day after the golden week"),
        ("2026-11-27", 2, "2026-12-01", "an ordinary weekend"),
    ],
)
def test_due_date_follows_the_statutory_calendar(
    routed: str, days: int, due: str, why: str
) -> None:
    end, basis = add_working_days(at(routed), days)
    assert end.date().isoformat() == due, why
    assert (end.hour, end.minute) == (23, 59), "due at the end of the working day, Shanghai time"
    assert basis == ClockBasis.statutory


def test_routing_late_in_the_day_counts_from_the_shanghai_date() -> None:
    utc_evening = datetime.fromisoformat("2026-09-29T17:30:00+00:00")  # 01:30 on 9/30 in Shanghai
    end, _ = add_working_days(utc_evening, 1)
    assert end.date().isoformat() == "2026-10-08"


def test_years_beyond_the_calendar_skip_weekends_only_and_say_so() -> None:
    # 2040 is far past any published holiday notice, so the clock falls back to weekends.
    end, basis = add_working_days(at("2040-06-01"), 10)
    assert basis == ClockBasis.weekends_only
    assert end.date().isoformat() == "2040-06-15"


def test_working_days_between_skips_holidays_for_a_paused_clock() -> None:
    assert working_days_between(at("2026-09-28"), at("2026-10-16")) == 10
    assert working_days_between(at("2026-10-01"), at("2026-10-07")) == 0
    assert working_days_between(at("2026-10-16"), at("2026-10-01")) == 0
