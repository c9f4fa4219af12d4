"""Platform copies, declared corrections and series of periods for grantees (issue 15): the
police's population register is aggregated at the platform (已归集), so both the police and the
platform deliver it; Development and Reform's grant downloads whichever copy holds a period."""

import io
import uuid
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from broker.delivery.models import Release
from support.delivery_data import POPULATION, as_csv, month, people, person
from support.identities import Identities
from support.sharing import Sharing

CODE = POPULATION["code"]


class Series(Sharing):
    platform_steward: dict[str, str]

    async def upload(
        self, rows: int, period: dict[str, str], headers: dict[str, str] | None = None, **form: str
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/datasets/{CODE}/releases",
            files={"file": ("人口.csv", as_csv(people(rows)), "text/csv")},
            data={**period, **form},
            headers=headers or self.steward,
        )

    async def published(
        self, rows: int, period: dict[str, str], headers: dict[str, str] | None = None, **form: str
    ) -> dict[str, Any]:
        response = await self.upload(rows, period, headers, **form)
        assert response.status_code == 201, response.text
        release: dict[str, Any] = response.json()
        return release

    async def fetch(self, grant_id: str, **params: str) -> httpx.Response:
        return await self.client.get(
            f"/v1/grants/{grant_id}/data", params=params, headers=self.requester
        )

    async def claims(self, response: httpx.Response) -> dict[str, Any]:
        receipt = await self.client.get(
            f"/v1/receipts/{response.headers['x-receipt-id']}", headers=self.requester
        )
        assert receipt.status_code == 200, receipt.text
        claims: dict[str, Any] = receipt.json()["claims"]
        return claims

    async def release_rows(self) -> int:
        async with self.app.state.session_factory() as session:
            return int(await session.scalar(select(func.count()).select_from(Release)) or 0)


async def _series(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities, *, aggregated: bool
) -> Series:
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    created = await client.post(
        "/v1/datasets", json={**POPULATION, "aggregated": aggregated}, headers=steward
    )
    assert created.status_code == 201, created.text
    series = Series(app, client, identities, steward, requester)
    series.platform_steward = await identities.headers(
        "platform-steward", department="platform", department_kind="platform", roles=("steward",)
    )
    await series.scenario()
    return series


@pytest.fixture
async def s(app: FastAPI, client: httpx.AsyncClient, identities: Identities) -> Series:
    return await _series(app, client, identities, aggregated=True)


def frame(response: httpx.Response) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(response.content), infer_schema_length=0)


async def test_a_twelve_month_series_downloads_with_its_period_columns(s: Series) -> None:
    for number in range(1, 13):
        await s.published(number, month(2025, number))
    grant = await s.grant()

    response = await s.fetch(grant["id"], **{"from": "2025-01", "to": "2025-12"})

    assert response.status_code == 200, response.text
    data = frame(response)
    assert data.height == sum(range(1, 13)) == int(response.headers["x-row-count"])
    assert data.columns[-2:] == ["period_start", "period_end"]
    per_period = data.group_by("period_start", "period_end", maintain_order=True).len()
    assert per_period.rows() == [
        (month(2025, n)["period_start"], month(2025, n)["period_end"], n) for n in range(1, 13)
    ]
    assert data["RK-ZZ"].null_count() == data.height  # the grant's masks hold in a series
    claims = await s.claims(response)
    assert [(r["period_start"], r["copy"]) for r in claims["data"]["releases"]] == [
        (month(2025, n)["period_start"], "owner") for n in range(1, 13)
    ]
    assert (claims["data"]["period_start"], claims["data"]["period_end"]) == (
        "2025-01-01",
        "2025-12-31",
    )
    assert claims["data"]["release_id"] == claims["data"]["releases"][-1]["id"]
    assert response.headers["x-release-id"].split(", ") == [
        r["id"] for r in claims["data"]["releases"]
    ]

    quarter = await s.fetch(grant["id"], **{"from": "2025-04-01", "to": "2025-06"})
    assert quarter.status_code == 200, quarter.text
    assert frame(quarter).height == 4 + 5 + 6


async def test_one_release_gains_period_columns_on_request(s: Series) -> None:
    await s.published(3, month(2025, 6))
    grant = await s.grant()

    plain = frame(await s.fetch(grant["id"]))
    with_periods = frame(await s.fetch(grant["id"], periods="true"))

    assert "period_start" not in plain.columns
    assert with_periods.select("period_start", "period_end").unique().rows() == [
        ("2025-06-01", "2025-06-30")
    ]
    assert with_periods.height == plain.height == 3


async def test_the_grantee_lists_its_releases_without_rejected_files(s: Series) -> None:
    for number in range(1, 6):
        await s.published(number, month(2025, number))
    bad = [{**person(1), "RK-NL": "not a number"}]
    rejected = await s.client.post(
        f"/v1/datasets/{CODE}/releases",
        files={"file": ("人口.csv", as_csv(bad), "text/csv")},
        data=month(2025, 6),
        headers=s.steward,
    )
    assert rejected.status_code == 422, rejected.text
    grant = await s.grant()

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await s.client.get(
            f"/v1/grants/{grant['id']}/releases", params=params, headers=s.requester
        )
        assert page.status_code == 200, page.text
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert [(r["period_start"], r["row_count"], r["copy"]) for r in seen] == [
        (month(2025, n)["period_start"], n, "owner") for n in range(1, 6)
    ]
    assert rejected.json()["release_id"] not in {r["id"] for r in seen}
    assert set(seen[0]) == {
        "id",
        "copy",
        "period_start",
        "period_end",
        "row_count",
        "sha256",
        "created_at",
    }
    stranger = await s.identities.headers(
        "tax-requester", department="tax", department_kind="bureau", roles=("requester",)
    )
    refused = await s.client.get(f"/v1/grants/{grant['id']}/releases", headers=stranger)
    assert refused.status_code in (403, 404)


async def test_the_platform_copy_is_served_until_the_owner_delivers_the_period(s: Series) -> None:
    await s.published(2, month(2025, 1))
    platform = await s.published(4, month(2025, 2), s.platform_steward, copy="platform")
    assert platform["copy"] == "platform"
    grant = await s.grant()

    served = await s.fetch(grant["id"])
    assert served.status_code == 200, served.text
    assert served.headers["x-release-copy"] == "platform"
    assert served.headers["x-release-id"] == platform["id"]
    assert frame(served).height == 4
    assert (await s.claims(served))["data"]["copy"] == "platform"

    owners = await s.published(6, month(2025, 2))
    preferred = await s.fetch(grant["id"])
    assert preferred.headers["x-release-copy"] == "owner"
    assert preferred.headers["x-release-id"] == owners["id"]
    assert frame(preferred).height == 6
    assert (await s.claims(preferred))["data"]["copy"] == "owner"

    both = await s.fetch(grant["id"], **{"from": "2025-01", "to": "2025-02"})
    assert both.headers["x-release-copy"] == "owner, owner"
    assert frame(both).height == 2 + 6
    listed = await s.client.get(f"/v1/grants/{grant['id']}/releases", headers=s.requester)
    assert sorted((r["period_start"], r["copy"]) for r in listed.json()["items"]) == [
        ("2025-01-01", "owner"),
        ("2025-02-01", "owner"),
        ("2025-02-01", "platform"),
    ]


async def test_an_owners_release_can_refresh_the_platform_copy(s: Series) -> None:
    owners = await s.published(3, month(2025, 3), refresh_platform_copy="true")

    listed = await s.client.get(f"/v1/datasets/{CODE}/releases", headers=s.steward)
    copies = {r["copy"]: r for r in listed.json()["items"]}
    assert set(copies) == {"owner", "platform"}
    assert copies["platform"]["sha256"] == owners["sha256"]
    assert copies["platform"]["period_end"] == owners["period_end"] == "2025-03-31"
    events = await s.events("release.platform_copy_refreshed")
    assert [(e.object_id, e.details["from_release"]) for e in events] == [
        (copies["platform"]["id"], owners["id"])
    ]


@pytest.mark.parametrize("who", ["platform_steward", "steward"])
async def test_a_platform_copy_needs_the_platform_and_an_aggregated_dataset(
    app: FastAPI, client: httpx.AsyncClient, identities: Identities, who: str
) -> None:
    s = await _series(app, client, identities, aggregated=False)

    refused = await s.upload(3, month(2025, 1), getattr(s, who), copy="platform")

    assert refused.status_code == 403, refused.text
    assert (
        "aggregated" in refused.json()["detail"]
        or "platform department" in (refused.json()["detail"])
    )
    refresh = await s.upload(3, month(2025, 1), refresh_platform_copy="true")
    assert refresh.status_code == 403, refresh.text
    assert "not 已归集" in refresh.json()["detail"]
    assert await s.release_rows() == 0


async def test_the_owners_steward_cannot_upload_the_platform_copy(s: Series) -> None:
    refused = await s.upload(3, month(2025, 1), copy="platform")

    assert refused.status_code == 403, refused.text
    assert "platform department's stewards" in refused.json()["detail"]
    assert await s.release_rows() == 0


async def test_an_overlapping_period_is_refused_without_a_release(s: Series) -> None:
    first = await s.published(3, month(2025, 1))

    overlapping = await s.upload(5, {"period_start": "2025-01-15", "period_end": "2025-02-14"})

    assert overlapping.status_code == 409, overlapping.text
    assert overlapping.json()["release_id"] == first["id"]
    assert first["id"] in overlapping.json()["detail"]
    assert await s.release_rows() == 1
    # the other copy keeps its own periods
    await s.published(5, month(2025, 1), s.platform_steward, copy="platform")


async def test_a_declared_correction_supersedes_the_release_and_is_served(s: Series) -> None:
    wrong = await s.published(3, month(2025, 1))
    grant = await s.grant()

    corrected = await s.published(7, month(2025, 1), correction_of=wrong["id"])

    assert corrected["supersedes_id"] == wrong["id"]
    events = await s.events("release.corrected")
    assert [(e.object_id, e.details["corrected_by"]) for e in events] == [
        (wrong["id"], corrected["id"])
    ]
    latest = await s.fetch(grant["id"])
    assert latest.headers["x-release-id"] == corrected["id"]
    assert frame(latest).height == 7
    listed = await s.client.get(f"/v1/grants/{grant['id']}/releases", headers=s.requester)
    assert [r["id"] for r in listed.json()["items"]] == [corrected["id"]]
    old = await s.fetch(grant["id"], release=wrong["id"])
    assert old.status_code == 404
    assert old.json()["release_id"] == corrected["id"]
    again = await s.upload(4, month(2025, 1), correction_of=wrong["id"])
    assert again.status_code == 409, again.text
    assert again.json()["release_id"] == corrected["id"]


async def test_a_correction_must_name_an_overlapping_release_of_its_copy(s: Series) -> None:
    january = await s.published(3, month(2025, 1))

    elsewhere = await s.upload(4, month(2025, 2), correction_of=january["id"])
    unknown = await s.upload(4, month(2025, 1), correction_of=str(uuid.uuid4()))

    for refused in (elsewhere, unknown):
        assert refused.status_code == 422, refused.text
        assert [e["location"] for e in refused.json()["errors"]] == ["body.correction_of"]
    assert await s.release_rows() == 1


async def test_a_range_must_run_forward_and_hold_a_release(s: Series) -> None:
    await s.published(3, month(2025, 1))
    grant = await s.grant()

    backwards = await s.fetch(grant["id"], **{"from": "2025-12", "to": "2025-01"})
    empty = await s.fetch(grant["id"], **{"from": "2024-01", "to": "2024-12"})
    garbled = await s.fetch(grant["id"], **{"from": "2025-13"})

    assert backwards.status_code == 422, backwards.text
    assert [e["location"] for e in backwards.json()["errors"]] == ["query.from"]
    assert empty.status_code == 404, empty.text
    assert garbled.status_code == 422
    assert len(await s.events("data.downloaded")) == 0
