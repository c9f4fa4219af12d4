"""The demo district: its departments, its catalog sheets and the economic-indicators play.

The sheets here are also the test suite's fixtures, so the case the tests pin is the one a
newcomer runs.
"""

import csv
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).parent / "data"
ECONOMIC_INDICATORS_SHEET = DATA / "economic_indicators_95.csv"
PLATFORM_BASE_SHEET = DATA / "platform_base_data.csv"
DISTRICT_SHEET = DATA / "district.csv"


class DistrictDepartment(NamedTuple):
    code: str
    name: str
    kind: str


def district() -> list[DistrictDepartment]:
    """The platform first, then the bureaus holding the 95 items (14 departments in all)."""
    with DISTRICT_SHEET.open(encoding="utf-8", newline="") as handle:
        return [
            DistrictDepartment(row["code"], row["name"], row["kind"])
            for row in csv.DictReader(handle)
        ]


def bureaus() -> list[DistrictDepartment]:
    return [d for d in district() if d.kind != "platform"]
