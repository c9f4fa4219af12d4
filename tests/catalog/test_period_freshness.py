"""Freshness follows the period the data covers, its update cycle and its publication lag."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from broker import migrations
from broker.config import Settings
from broker.delivery import service as delivery
from broker.demo.samples import last_month
from catalog.datasets import service as datasets
from catalog.datasets.freshness import SHANGHAI, deadlines, freshness_at, next_period_end
from catalog.datasets.models import Dataset
from catalog.vocab import Freshness, UpdateCycle
from core.time import utcnow
from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities
from support.workflow import DECLARATION


def d(text: str) -> date:
    return date.fromisoformat(text)


def at(text: str) -> datetime:
    """A moment on the wall clocks of the district (Asia/Shanghai); a date is its midnight."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("cycle", "end", "expected"),
    [
        ("daily", "2026-02-16", "2026-02-17"),  # 除夕 → 春节: calendar days, no holidays
        ("realtime", "2028-02-28", "2028-02-29"),
        ("weekly", "2026-02-15", "2026-02-22"),
        ("dekad", "2026-02-10", "2026-02-20"),
        ("dekad", "2026-02-20", "2026-02-28"),
        ("dekad", "2028-02-20", "2028-02-29"),
        ("dekad", "2026-02-28", "2026-03-10"),
        ("dekad", "2026-12-31", "2027-01-10"),
        ("dekad", "2026-02-05", "2026-02-20"),  # a partial first dekad: the next is the second
        ("monthly", "2026-01-31", "2026-02-28"),
        ("monthly", "2028-01-31", "2028-02-29"),
        ("monthly", "2026-02-28", "2026-03-31"),
        ("monthly", "2026-12-31", "2027-01-31"),
        ("monthly", "2026-03-15", "2026-04-30"),  # half of March: April is next, not March
        ("quarterly", "2026-03-31", "2026-06-30"),
        ("quarterly", "2026-06-30", "2026-09-30"),
        ("quarterly", "2026-09-30", "2026-12-31"),
        ("quarterly", "2026-12-31", "2027-03-31"),
        ("quarterly", "2026-02-17", "2026-06-30"),
        ("semiannual", "2026-06-30", "2026-12-31"),
        ("semiannual", "2026-12-31", "2027-06-30"),
        ("semiannual", "2026-03-31", "2026-12-31"),
        ("annual", "2025-12-31", "2026-12-31"),
        ("annual", "2028-02-29", "2029-12-31"),
        ("irregular", "2026-03-31", None),
    ],
)
def test_the_next_period_is_the_calendar_period_after(
    cycle: str, end: str, expected: str | None
) -> None:
    following = next_period_end(d(end), UpdateCycle(cycle))
    assert following == (d(expected) if expected else None)


# cycle, lag, latest period end, due on, stale on (00:00 in Shanghai), today, freshness today
TABLE = [
    # the brief's example: March's data in, April's due on 15 May, stale once May's is missed too
    ("monthly", 15, "2026-03-31", "2026-05-15", "2026-06-15", "2026-05-14T23:59", "fresh"),
    ("monthly", 15, "2026-03-31", "2026-05-15", "2026-06-15", "2026-05-15T00:00", "due"),
    ("monthly", 15, "2026-03-31", "2026-05-15", "2026-06-15", "2026-06-14T23:59", "due"),
    ("monthly", 15, "2026-03-31", "2026-05-15", "2026-06-15", "2026-06-15T00:00", "stale"),
    # Spring Festival month (春节 17 Feb 2026): February's 28 days, no holiday shift
    ("monthly", 15, "2026-01-31", "2026-03-15", "2026-04-15", "2026-02-17T10:00", "fresh"),
    ("monthly", 15, "2026-01-31", "2026-03-15", "2026-04-15", "2026-03-15T08:00", "due"),
    ("monthly", 10, "2026-02-28", "2026-04-10", "2026-05-10", "2026-04-09T12:00", "fresh"),
    ("monthly", 10, "2026-02-28", "2026-04-10", "2026-05-10", "2026-05-10T00:00", "stale"),
    ("daily", 1, "2026-02-16", "2026-02-18", "2026-02-19", "2026-02-17T12:00", "fresh"),
    ("daily", 1, "2026-02-16", "2026-02-18", "2026-02-19", "2026-02-18T12:00", "due"),
    ("dekad", 5, "2026-02-10", "2026-02-25", "2026-03-05", "2026-03-04T23:00", "due"),
    # a leap February (2028)
    ("monthly", 0, "2028-01-31", "2028-02-29", "2028-03-31", "2028-02-28T23:59", "fresh"),
    ("monthly", 0, "2028-01-31", "2028-02-29", "2028-03-31", "2028-02-29T00:00", "due"),
    ("dekad", 3, "2028-02-20", "2028-03-03", "2028-03-13", "2028-03-13T00:00", "stale"),
    ("annual", 90, "2027-12-31", "2029-03-31", "2030-03-31", "2029-03-30T00:00", "fresh"),
    # quarter ends
    ("quarterly", 30, "2026-03-31", "2026-07-30", "2026-10-30", "2026-07-29T00:00", "fresh"),
    ("quarterly", 30, "2026-06-30", "2026-10-30", "2027-01-30", "2026-12-03T12:00", "due"),
    ("quarterly", 30, "2026-09-30", "2027-01-30", "2027-04-30", "2026-12-03T12:00", "fresh"),
    ("quarterly", 30, "2026-12-31", "2027-04-30", "2027-07-30", "2027-07-30T00:00", "stale"),
    # a 2023-Q1 file uploaded today is old data
    ("quarterly", 30, "2023-03-31", "2023-07-30", "2023-10-30", "2026-12-03T12:00", "stale"),
    # the year's end
    ("monthly", 15, "2026-12-31", "2027-02-15", "2027-03-15", "2027-01-15T00:00", "fresh"),
    ("annual", 90, "2025-12-31", "2027-03-31", "2028-03-30", "2027-03-31T00:00", "due"),
    ("semiannual", 60, "2026-06-30", "2027-03-01", "2027-08-29", "2027-03-01T00:00", "due"),
    ("semiannual", 60, "2026-12-31", "2027-08-29", "2028-02-29", "2028-02-29T00:00", "stale"),
    # weekly and irregular
    ("weekly", 2, "2026-02-15", "2026-02-24", "2026-03-03", "2026-02-23T23:59", "fresh"),
    ("weekly", 2, "2026-02-15", "2026-02-24", "2026-03-03", "2026-03-03T00:00", "stale"),
    ("irregular", 0, "2023-03-31", None, None, "2026-12-03T12:00", "fresh"),
]
IDS = [f"{c}+{lag}d-{end}@{today}" for c, lag, end, _, _, today, _ in TABLE]


@pytest.mark.parametrize(
    ("cycle", "lag", "latest", "due_on", "stale_on", "today", "expected"), TABLE, ids=IDS
)
def test_deadlines_follow_the_latest_period_cycle_and_lag(
    cycle: str,
    lag: int,
    latest: str,
    due_on: str | None,
    stale_on: str | None,
    today: str,
    expected: str,
) -> None:
    declared_update = at("2099-01-01")  # an upload's moment plays no part once there is a period
    due_at, stale_at = deadlines(
        declared_update, UpdateCycle(cycle), lag, latest_period_end=d(latest)
    )
    assert due_at == (at(due_on) if due_on else None)
    assert stale_at == (at(stale_on) if stale_on else None)
    assert freshness_at(at(today), due_at, stale_at) == Freshness(expected)


def test_due_at_is_midnight_in_shanghai_stored_in_utc() -> None:
    due_at, _ = deadlines(None, UpdateCycle.monthly, 15, latest_period_end=d("2026-03-31"))
    assert due_at == datetime(2026, 5, 14, 16, 0, tzinfo=UTC)
    assert due_at is not None
    assert due_at.tzinfo == UTC


def test_without_a_period_freshness_still_follows_the_declared_update() -> None:
    updated = at("2026-03-01")
    due_at, stale_at = deadlines(updated, UpdateCycle.monthly, 20)
    assert (due_at, stale_at) == (updated + timedelta(days=51), updated + timedelta(days=82))
    assert deadlines(None, UpdateCycle.monthly, 20)[0] == datetime.fromtimestamp(0, UTC)


def test_a_period_past_the_calendar_is_never_due_rather_than_a_crash() -> None:
    assert deadlines(None, UpdateCycle.monthly, 10, latest_period_end=d("9999-12-31")) == (
        None,
        None,
    )


# ---------------------------------------------------------------- through the API


@dataclass
class Owner:
    app: FastAPI
    client: httpx.AsyncClient
    steward: dict[str, str]
    requester: dict[str, str]

    async def register(self, **fields: Any) -> None:
        created = await self.client.post(
            "/v1/datasets", json={**POPULATION, **fields}, headers=self.steward
        )
        assert created.status_code == 201, created.text

    async def upload(self, start: date, end: date, rows: int = 3, **form: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/datasets/{POPULATION['code']}/releases",
            files={"file": ("人口.csv", as_csv(people(rows)), "text/csv")},
            data={"period_start": start.isoformat(), "period_end": end.isoformat(), **form},
            headers=self.steward,
        )
        assert response.status_code == 201, response.text
        release: dict[str, Any] = response.json()
        return release

    async def dataset(self) -> dict[str, Any]:
        response = await self.client.get(f"/v1/datasets/{POPULATION['code']}", headers=self.steward)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def grant(self) -> str:
        """A grant of the population dataset to Development and Reform, as in delivery tests."""
        await self.client.post(
            "/v1/scenarios", json={"code": "econ", "name": "经济运行监测"}, headers=self.requester
        )
        today = date.today()
        created = await self.client.post(
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "人口数据需求",
                "purpose": "常住人口与经济运行关联分析",
                "usage_start": today.isoformat(),
                "usage_end": (today + timedelta(days=180)).isoformat(),
                "lines": [{"dataset_code": POPULATION["code"]}],
            },
            headers=self.requester,
        )
        assert created.status_code == 201, created.text
        submitted = await self.client.post(
            f"/v1/requests/{created.json()['id']}/submit", headers=self.requester
        )
        line = submitted.json()["lines"][0]
        decided = await self.client.post(
            f"/v1/lines/{line['id']}/decisions",
            json={"decision": "approve", "declaration": DECLARATION},
            headers=self.steward,
        )
        assert decided.status_code == 200, decided.text
        grants = await self.client.get("/v1/grants", headers=self.requester)
        return str(next(g["id"] for g in grants.json()["items"] if g["line_id"] == line["id"]))


@pytest.fixture
async def owner(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Owner:
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    return Owner(app, client, steward, requester)


def period_start(end: date, cycle: str) -> date:
    months = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}.get(cycle)
    if months is not None:
        first = end.year * 12 + end.month - months
        return date(first // 12, first % 12 + 1, 1)
    return end - timedelta(days={"weekly": 6, "dekad": 9}.get(cycle, 0))


@pytest.mark.parametrize(
    ("cycle", "lag", "latest", "due_on", "stale_on", "today", "expected"), TABLE, ids=IDS
)
async def test_an_upload_sets_the_deadlines_its_period_calls_for(
    owner: Owner,
    cycle: str,
    lag: int,
    latest: str,
    due_on: str | None,
    stale_on: str | None,
    today: str,
    expected: str,
) -> None:
    """The table again, through an upload, the database and the freshness report of that day."""
    await owner.register(update_cycle=cycle, publication_lag_days=lag)
    await owner.upload(period_start(d(latest), cycle), d(latest))
    body = await owner.dataset()
    assert body["latest_period_end"] == latest
    assert (moment(body["due_at"]) if body["due_at"] else None) == (at(due_on) if due_on else None)
    async with owner.app.state.session_factory() as session:
        behind = await datasets.falling_behind(session=session, now=at(today))
        report = delivery.freshness_report(behind, at(today))
    listed = [x for group in report.departments for x in group.datasets]
    if expected == "fresh":
        assert listed == []
    else:
        assert [(x.code, x.freshness.value, x.latest_period_end) for x in listed] == [
            (POPULATION["code"], expected, d(latest))
        ]
        assert listed[0].stale_at == (at(stale_on) if stale_on else None)


def last_quarter_end(today: date) -> date:
    first_month = (today.month - 1) // 3 * 3 + 1
    return date(today.year, first_month, 1) - timedelta(days=1)


async def test_only_a_current_period_makes_a_dataset_fresh_and_latest_is_the_latest_period(
    owner: Owner,
) -> None:
    await owner.register(update_cycle="quarterly", publication_lag_days=30)
    assert (await owner.dataset())["freshness"] == "stale"

    old = await owner.upload(d("2023-01-01"), d("2023-03-31"), rows=3)
    after_old = await owner.dataset()
    assert after_old["freshness"] == "stale", "a 2023-Q1 file uploaded today is old data"
    assert after_old["latest_period_end"] == "2023-03-31"
    assert after_old["last_updated_at"] is not None, "the upload is still recorded"
    report = await owner.client.get("/v1/freshness", headers=owner.requester)
    police = next(g for g in report.json()["departments"] if g["department_code"] == "police")
    assert [(x["freshness"], x["latest_period_end"]) for x in police["datasets"]] == [
        ("stale", "2023-03-31")
    ]

    today = utcnow().astimezone(SHANGHAI).date()
    current_end = last_quarter_end(today)
    current = await owner.upload(period_start(current_end, "quarterly"), current_end, rows=7)
    fresh = await owner.dataset()
    assert fresh["freshness"] == "fresh"
    assert fresh["latest_period_end"] == current_end.isoformat()
    next_end = next_period_end(current_end, UpdateCycle.quarterly)
    assert next_end is not None
    assert moment(fresh["due_at"]) == at((next_end + timedelta(days=30)).isoformat())

    late = await owner.upload(d("2023-04-01"), d("2023-06-30"), rows=5)
    still = await owner.dataset()
    assert still["latest_period_end"] == current_end.isoformat(), "never moved back"
    assert still["freshness"] == "fresh"
    assert still["due_at"] == fresh["due_at"]
    assert still["last_updated_at"] > fresh["last_updated_at"]

    grant_id = await owner.grant()
    latest = await owner.client.get(f"/v1/grants/{grant_id}/data", headers=owner.requester)
    assert latest.status_code == 200, latest.text
    assert int(latest.headers["x-row-count"]) == 7, "the latest period, not the latest upload"
    assert current_end.isoformat() in latest.headers["content-disposition"]
    chosen = await owner.client.get(
        f"/v1/grants/{grant_id}/data", params={"release": late["id"]}, headers=owner.requester
    )
    assert int(chosen.headers["x-row-count"]) == 5
    assert {old["id"], current["id"], late["id"]} == {
        r["id"]
        for r in (
            await owner.client.get(
                f"/v1/datasets/{POPULATION['code']}/releases", headers=owner.steward
            )
        ).json()["items"]
    }


async def test_a_correction_of_the_same_period_serves_the_later_one(owner: Owner) -> None:
    await owner.register()
    start, end = last_month(utcnow().astimezone(SHANGHAI).date())
    first = await owner.upload(start, end, rows=3)
    await owner.upload(start, end, rows=6, correction_of=first["id"])
    grant_id = await owner.grant()
    latest = await owner.client.get(f"/v1/grants/{grant_id}/data", headers=owner.requester)
    assert int(latest.headers["x-row-count"]) == 6


# ---------------------------------------------------------------- migration


async def test_migration_takes_the_latest_period_from_accepted_releases(
    owner: Owner, settings: Settings
) -> None:
    """0010 backfills latest_period_end and the deadlines; its downgrade restores the old rule."""
    await owner.register(update_cycle="quarterly", publication_lag_days=30)
    await owner.upload(d("2026-07-01"), d("2026-09-30"))
    await owner.upload(d("2023-01-01"), d("2023-03-31"))
    await owner.app.state.engine.dispose()

    await asyncio.to_thread(migrations.downgrade, settings, "0009")
    async with owner.app.state.session_factory() as session:
        row = (
            await session.execute(
                select(Dataset.last_updated_at, Dataset.due_at).where(
                    Dataset.code == POPULATION["code"]
                )
            )
        ).one()
    assert row.last_updated_at is not None
    assert row.due_at == row.last_updated_at + timedelta(days=92 + 30), "the upload rule"
    await owner.app.state.engine.dispose()

    await asyncio.to_thread(migrations.upgrade, settings)
    body = await owner.dataset()
    assert body["latest_period_end"] == "2026-09-30"
    assert moment(body["due_at"]) == at("2027-01-30")
