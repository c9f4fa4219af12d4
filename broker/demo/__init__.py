"""The demo district: its departments, its catalog sheets and the economic-indicators play.

The sheets here are also the test suite's fixtures, so the case the tests pin is the one a
newcomer runs. The same data directory holds what the tests and benches declare besides: the
population register (人口库) and a small catalog of four departments, so each is written once.
"""

import csv
import json
from pathlib import Path
from typing import Any, NamedTuple

DATA = Path(__file__).parent / "data"
ECONOMIC_INDICATORS_SHEET = DATA / "economic_indicators_95.csv"
PLATFORM_BASE_SHEET = DATA / "platform_base_data.csv"
DISTRICT_SHEET = DATA / "district.csv"
SAMPLE_CATALOG = DATA / "sample_catalog.json"
POPULATION_DATASET = DATA / "population.json"


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


class SampleCatalog(NamedTuple):
    departments: list[DistrictDepartment]
    datasets: list[dict[str, Any]]


def sample_catalog() -> SampleCatalog:
    """Four departments and 40 datasets (bodies of POST /v1/datasets): fresh, stale, draft,
    deprecated and not-shared ones, Chinese and English text, for catalog and search tests."""
    loaded = json.loads(SAMPLE_CATALOG.read_text(encoding="utf-8"))
    departments = [DistrictDepartment(**d) for d in loaded["departments"]]
    return SampleCatalog(departments, loaded["datasets"])


def population_dataset() -> dict[str, Any]:
    """A police sub-bureau's population register (实有人口基本信息, GA-RKJBXX) as the body of
    POST /v1/datasets: the dataset the delivery tests and benchmarks upload releases of."""
    dataset: dict[str, Any] = json.loads(POPULATION_DATASET.read_text(encoding="utf-8"))
    return dataset
