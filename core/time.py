"""Time as every layer uses it: UTC instants, and the calendar window dates must stay in."""

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AwareDatetime, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


# Dates the product computes with stay in 1900..2200: deadlines (last update plus cycles and lag,
# a grant's end) then never overflow Python's year 9999, and no district holds data from outside.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 12, 31, 23, 59, 59, tzinfo=UTC)
FIRST_DAY, LAST_DAY = EARLIEST.date(), LATEST.date()
CalendarDate = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
CalendarMoment = Annotated[AwareDatetime, Field(ge=EARLIEST, le=LATEST)]
