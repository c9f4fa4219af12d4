"""Releases validated against the declared schema, and data handed out only through grants."""

import asyncio
import base64
import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from broker.audit.models import AuditEvent
from broker.config import Settings
from broker.delivery.models import Release
from broker.demo.samples import last_month
from broker.grants.models import Grant
from catalog.datasets.freshness import SHANGHAI
from core.time import utcnow
from support.delivery_data import COLUMNS, ENCODERS, POPULATION, as_csv, as_xlsx, people, person
from support.identities import Identities
from support.processes import run_broker
from support.workflow import DECLARATION

PROBLEM = "application/problem+json"
# Last month, the period a monthly dataset is current with: freshness follows the period covered,
# so a fixed month would leave the dataset due, then stale, as the calendar moves on.
_START, _END = last_month(utcnow().astimezone(SHANGHAI).date())
PERIOD = {"period_start": _START.isoformat(), "period_end": _END.isoformat()}
MASKS = {"RK-SFZH": "partial", "RK-SJHM": "partial", "RK-XM": "hash", "RK-ZZ": "null"}


@dataclass
class Delivery:
    app: FastAPI
    client: httpx.AsyncClient
    identities: Identities
    steward: dict[str, str]
    requester: dict[str, str]

    async def upload(
        self,
        data: bytes,
        filename: str = "人口.csv",
        headers: dict[str, str] | None = None,
        **form: str,
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/datasets/{POPULATION['code']}/releases",
            files={"file": (filename, data, "application/octet-stream")},
            data={**PERIOD, **form},
            headers=headers or self.steward,
        )

    async def grant(self, conditions: dict[str, Any] | None = None) -> dict[str, Any]:
        """A grant of the whole population dataset to Development and Reform."""
        await self.client.post(
            "/v1/scenarios", json={"code": "econ", "name": "经济运行监测"}, headers=self.requester
        )
        created = await self.client.post(
            "/v1/requests",
            json={
                "scenario_code": "econ",
                "title": "人口数据需求",
                "purpose": "常住人口与经济运行关联分析",
                "usage_start": date.today().isoformat(),
                "usage_end": (date.today() + timedelta(days=180)).isoformat(),
                "lines": [{"dataset_code": POPULATION["code"]}],
            },
            headers=self.requester,
        )
        assert created.status_code == 201, created.text
        submitted = await self.client.post(
            f"/v1/requests/{created.json()['id']}/submit", headers=self.requester
        )
        line = submitted.json()["lines"][0]
        assert line["state"] == "pending_owner", line
        decided = await self.client.post(
            f"/v1/lines/{line['id']}/decisions",
            json={
                "decision": "approve_with_conditions",
                "declaration": DECLARATION,
                "conditions": conditions or {"masking": MASKS},
            },
            headers=self.steward,
        )
        assert decided.status_code == 200, decided.text
        accepted = await self.client.post(f"/v1/lines/{line['id']}/accept", headers=self.requester)
        assert accepted.status_code == 200, accepted.text
        grants = await self.client.get("/v1/grants", headers=self.requester)
        found: dict[str, Any] = next(
            g for g in grants.json()["items"] if g["line_id"] == line["id"]
        )
        return found

    async def download(self, grant_id: str, **params: str) -> httpx.Response:
        return await self.client.get(
            f"/v1/grants/{grant_id}/data", params=params, headers=self.requester
        )

    async def releases(self) -> int:
        async with self.app.state.session_factory() as session:
            return int(await session.scalar(select(func.count()).select_from(Release)) or 0)

    async def events(self, action: str) -> list[AuditEvent]:
        async with self.app.state.session_factory() as session:
            rows = await session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
            return list(rows.all())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """A small upload limit, so the 413 test needs only a few thousand rows."""
    return Settings(
        database_url=database_url,
        storage_root=str(tmp_path / "releases"),
        max_release_bytes=200_000,
    )


@pytest.fixture
async def d(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_client: httpx.AsyncClient,
    identities: Identities,
) -> Delivery:
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    requester = await identities.headers(
        "drc-requester", department="drc", department_kind="bureau", roles=("requester",)
    )
    created = await client.post("/v1/datasets", json=POPULATION, headers=steward)
    assert created.status_code == 201, created.text
    return Delivery(app, client, identities, steward, requester)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---------------------------------------------------------------- validation

BAD_CELLS = [
    ("data_type", "RK-NL", "二十"),
    ("data_type", "RK-DJRQ", "2026-13-40"),
    ("not_null", "RK-XM", ""),
    ("enum", "RK-JD", "南湖街道"),
    ("pattern", "RK-SJHM", "12345"),
    ("minimum", "RK-NL", "-1"),
    ("maximum", "RK-NL", "151"),
]


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "parquet"])
@pytest.mark.parametrize(("check", "column", "value"), BAD_CELLS)
async def test_each_failed_check_is_reported_with_its_row(
    d: Delivery, file_format: str, check: str, column: str, value: str
) -> None:
    rows = people(5)
    rows[2][column] = value
    response = await d.upload(ENCODERS[file_format](rows), filename=f"人口.{file_format}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "validation-failed"
    checks = problem["report"]["checks"]
    assert [(c["column"], c["check"], c["failure_count"]) for c in checks] == [(column, check, 1)]
    assert checks[0]["examples"][0]["row"] == 3
    stored = await d.client.get(
        f"/v1/datasets/{POPULATION['code']}/releases/{problem['release_id']}", headers=d.steward
    )
    assert stored.json()["status"] == "rejected"
    assert stored.json()["report"]["checks"] == checks


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "parquet"])
async def test_duplicate_keys_and_wrong_columns_are_reported(d: Delivery, file_format: str) -> None:
    rows = people(4)
    rows[3]["RK-SFZH"] = rows[1]["RK-SFZH"]
    for row in rows:
        del row["RK-FWBM"]
        row["备注"] = "x"
    response = await d.upload(ENCODERS[file_format](rows), filename=f"人口.{file_format}")
    assert response.status_code == 422, response.text
    found = {(c["column"], c["check"]): c for c in response.json()["report"]["checks"]}
    assert set(found) == {
        ("RK-SFZH", "unique_key"),
        ("RK-FWBM", "missing_column"),
        ("备注", "extra_column"),
    }
    assert [e["row"] for e in found["RK-SFZH", "unique_key"]["examples"]] == [2, 4]


async def test_every_failure_is_collected_in_one_report(d: Delivery) -> None:
    rows = people(50)
    for n in (4, 9, 30):
        rows[n]["RK-NL"] = "abc"
    rows[7]["RK-JD"] = "南湖街道"
    rows[8]["RK-SJHM"] = "999"
    response = await d.upload(as_csv(rows))
    checks = {(c["column"], c["check"]): c for c in response.json()["report"]["checks"]}
    assert checks["RK-NL", "data_type"]["failure_count"] == 3
    assert [e["row"] for e in checks["RK-NL", "data_type"]["examples"]] == [5, 10, 31]
    assert {("RK-JD", "enum"), ("RK-SJHM", "pattern")} <= set(checks)


async def test_a_rejected_release_is_never_delivered(d: Delivery) -> None:
    grant = await d.grant()
    bad = people(3)
    bad[0]["RK-NL"] = "x"
    assert (await d.upload(as_csv(bad))).status_code == 422
    download = await d.download(grant["id"])
    assert download.status_code == 404
    assert "no accepted release" in download.json()["detail"]


async def test_a_valid_release_is_stored_by_digest_and_freshens_the_dataset(
    d: Delivery, settings: Any
) -> None:
    before = (await d.client.get(f"/v1/datasets/{POPULATION['code']}", headers=d.steward)).json()
    assert before["freshness"] == "stale"
    response = await d.upload(as_csv(people(20), headers="names", encoding="gbk"))
    assert response.status_code == 201, response.text
    release = response.json()
    assert release["status"] == "accepted"
    assert release["row_count"] == 20
    assert response.headers["location"].endswith(release["id"])
    files = stored_files(Path(settings.storage_root))
    assert [f.name for f in files] == [f"{release['sha256']}.parquet"]
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == release["sha256"]
    assert pl.read_parquet(files[0]).columns == COLUMNS
    after = (await d.client.get(f"/v1/datasets/{POPULATION['code']}", headers=d.steward)).json()
    assert after["freshness"] == "fresh"
    assert after["last_updated_at"] is not None
    listed = await d.client.get(f"/v1/datasets/{POPULATION['code']}/releases", headers=d.steward)
    assert [r["id"] for r in listed.json()["items"]] == [release["id"]]
    published = await d.events("release.published")
    assert published[-1].details["rows"] == 20


async def test_jsonl_and_xlsx_with_chinese_headers_are_accepted(d: Delivery) -> None:
    jsonl = await d.upload(ENCODERS["jsonl"](people(3)), filename="人口.jsonl")
    assert jsonl.status_code == 201, jsonl.text
    named = [{("姓名" if k == "RK-XM" else k): v for k, v in row.items()} for row in people(3)]
    xlsx = await d.upload(as_xlsx(named), filename="人口.xlsx", correction_of=jsonl.json()["id"])
    assert xlsx.status_code == 201, xlsx.text


# ---------------------------------------------------------------- bad input


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * 50_000_000)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "form", "location"),
    [
        (b"", "x.csv", {}, "body.file"),
        (b"\xff\xfe\xff\xfe\x81", "x.csv", {}, "body.file"),
        (b"RK-SFZH\n", "x.csv", {}, "body.file"),
        (zip_bomb(), "x.xlsx", {}, "body.file"),
        (b"not parquet at all", "x.parquet", {}, "body.file"),
        (b"{not json\n", "x.jsonl", {}, "body.file"),
        (b"a,b\n1,2\n", "x.doc", {}, "body.format"),
        (b"a,b\n1,2\n", "x.csv", {"period_end": "2026-09-01"}, "body.period_end"),
        (b"a,b\n1,2\n", "x.csv", {"period_start": "soon"}, "body.period_start"),
    ],
    ids=[
        "empty",
        "undecodable",
        "header-only",
        "zip-bomb",
        "bad-parquet",
        "bad-jsonl",
        "unknown-format",
        "period-reversed",
        "period-unparsable",
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_stored(
    d: Delivery, settings: Any, data: bytes, filename: str, form: dict[str, Any], location: str
) -> None:
    response = await d.upload(data, filename=filename, **form)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert any(e["location"] == location for e in response.json()["errors"]), response.json()
    assert await d.releases() == 0
    assert stored_files(Path(settings.storage_root)) == []


async def test_another_departments_steward_cannot_deliver(d: Delivery, settings: Any) -> None:
    stranger = await d.identities.headers(
        "tax-steward", department="tax", department_kind="bureau", roles=("steward",)
    )
    response = await d.upload(as_csv(people(3)), headers=stranger)
    assert response.status_code == 403
    assert await d.releases() == 0
    assert stored_files(Path(settings.storage_root)) == []
    listing = await d.client.get(f"/v1/datasets/{POPULATION['code']}/releases", headers=stranger)
    assert listing.status_code == 403


async def test_an_oversized_upload_is_413_and_nothing_is_stored(d: Delivery, settings: Any) -> None:
    response = await d.upload(as_csv(people(3000)))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert await d.releases() == 0
    assert stored_files(Path(settings.storage_root)) == []


# ---------------------------------------------------------------- downloads


async def test_the_grantee_downloads_masked_columns_in_every_format(d: Delivery) -> None:
    await d.upload(as_csv(people(30)))
    grant = await d.grant()
    csv_download = await d.download(grant["id"], format="csv")
    assert csv_download.status_code == 200, csv_download.text
    frame = pl.read_csv(csv_download.content, infer_schema=False)
    assert frame.columns == COLUMNS
    first = frame.row(0, named=True)
    original = person(1)
    assert first["RK-SFZH"] == original["RK-SFZH"][:3] + "*" * 11 + original["RK-SFZH"][-4:]
    assert first["RK-SJHM"] == "138****0001"
    assert first["RK-ZZ"] is None
    assert len(first["RK-XM"]) == 32
    assert first["RK-XM"] != original["RK-XM"]
    assert first["RK-FWBM"] == original["RK-FWBM"]
    assert int(csv_download.headers["x-row-count"]) == 30
    digest = base64.b64encode(hashlib.sha256(csv_download.content).digest()).decode()
    assert csv_download.headers["repr-digest"] == f"sha-256=:{digest}:"

    again = pl.read_csv((await d.download(grant["id"])).content, infer_schema=False)
    assert again["RK-XM"].to_list() == frame["RK-XM"].to_list(), "stable within a grant"

    jsonl = pl.read_ndjson((await d.download(grant["id"], format="jsonl")).content)
    parquet = pl.read_parquet((await d.download(grant["id"], format="parquet")).content)
    assert jsonl.height == parquet.height == 30
    assert parquet["RK-NL"].dtype == pl.Int64
    assert parquet["RK-SJHM"].to_list() == frame["RK-SJHM"].to_list()

    downloads = await d.events("data.downloaded")
    assert len(downloads) == 4
    assert downloads[0].details["rows"] == 30
    assert downloads[0].details["bytes"] == len(csv_download.content)
    assert downloads[0].details["release"] == csv_download.headers["x-release-id"]


async def test_hashes_differ_between_grants_of_the_same_data(d: Delivery) -> None:
    await d.upload(as_csv(people(5)))
    first = await d.grant()
    second = await d.grant()
    one = pl.read_csv((await d.download(first["id"])).content)["RK-XM"].to_list()
    two = pl.read_csv((await d.download(second["id"])).content)["RK-XM"].to_list()
    assert set(one).isdisjoint(two)


async def test_columns_row_filter_and_aggregation_are_applied(d: Delivery) -> None:
    await d.upload(as_csv(people(30)))
    subset = await d.grant(
        {
            "columns": ["RK-SFZH", "RK-NL"],
            "masking": {"RK-SFZH": "partial"},
            "row_filter": [{"column": "RK-NL", "op": "ge", "value": 40}],
        }
    )
    frame = pl.read_csv((await d.download(subset["id"])).content)
    assert frame.columns == ["RK-SFZH", "RK-NL"]
    assert frame.height == sum(int(p["RK-NL"]) >= 40 for p in people(30))
    assert frame["RK-NL"].min() == 40

    aggregated = await d.grant({"columns": ["RK-JD", "RK-NL"], "aggregation_level": "RK-JD"})
    totals = pl.read_csv((await d.download(aggregated["id"])).content)
    assert totals.columns == ["RK-JD", "row_count", "RK-NL"]
    assert totals["row_count"].sum() == 30
    declared = await d.grant({"columns": ["RK-NL"], "aggregation_level": "district"})
    as_delivered = pl.read_csv((await d.download(declared["id"])).content)
    assert as_delivered.height == 30, "a level word is the releases' own granularity"
    assert totals.filter(pl.col("RK-JD") == "东湖街道")["RK-NL"].item() == sum(
        int(p["RK-NL"]) for p in people(30) if p["RK-JD"] == "东湖街道"
    )


async def _expire(app: FastAPI, grant_id: str) -> None:
    async with app.state.session_factory() as session:
        await session.execute(
            update(Grant)
            .where(Grant.id == uuid.UUID(grant_id))
            .values(valid_until=utcnow() - timedelta(minutes=1))
        )
        await session.commit()


@pytest.mark.parametrize("end", ["revoke", "suspend", "expire"])
async def test_downloads_under_ended_grants_are_403_and_audited_as_denied(
    d: Delivery, end: str
) -> None:
    await d.upload(as_csv(people(5)))
    grant = await d.grant()
    assert (await d.download(grant["id"])).status_code == 200
    if end == "expire":
        await _expire(d.app, grant["id"])
    else:
        ended = await d.client.post(
            f"/v1/grants/{grant['id']}/{end}", json={"reason": "用途已结束"}, headers=d.steward
        )
        assert ended.status_code == 200, ended.text
    refused = await d.download(grant["id"])
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    state = {"revoke": "revoked", "suspend": "suspended", "expire": "expired"}[end]
    assert refused.json()["grant_status"] == state
    denied = await d.events("access.denied")
    assert denied[-1].object_id == f"GET /v1/grants/{grant['id']}/data"
    assert state in denied[-1].details["reason"]
    assert len(await d.events("data.downloaded")) == 1


async def test_only_the_grantee_department_downloads(d: Delivery) -> None:
    await d.upload(as_csv(people(5)))
    grant = await d.grant()
    owner = await d.client.get(f"/v1/grants/{grant['id']}/data", headers=d.steward)
    assert owner.status_code == 403
    outsider = await d.identities.headers(
        "tax-requester", department="tax", department_kind="bureau", roles=("requester",)
    )
    unseen = await d.client.get(f"/v1/grants/{grant['id']}/data", headers=outsider)
    assert unseen.status_code == 404


async def test_a_chosen_release_is_served_and_others_are_not_found(d: Delivery) -> None:
    before_start, before_end = last_month(_START)
    first = (
        await d.upload(
            as_csv(people(3)),
            period_start=before_start.isoformat(),
            period_end=before_end.isoformat(),
        )
    ).json()
    await d.upload(as_csv(people(7)))
    grant = await d.grant()
    latest = await d.download(grant["id"])
    assert int(latest.headers["x-row-count"]) == 7
    chosen = await d.download(grant["id"], release=first["id"])
    assert int(chosen.headers["x-row-count"]) == 3
    missing = await d.download(grant["id"], release=str(uuid.uuid4()))
    assert missing.status_code == 404
    garbage = await d.download(grant["id"], release="yesterday")
    assert garbage.status_code == 422


async def test_freshness_lists_due_and_stale_datasets_by_department(d: Delivery) -> None:
    report = await d.client.get("/v1/freshness", headers=d.requester)
    assert report.status_code == 200
    police = next(g for g in report.json()["departments"] if g["department_code"] == "police")
    assert police["stale"] == 1
    assert [x["code"] for x in police["datasets"]] == [POPULATION["code"]]
    await d.upload(as_csv(people(3)))
    after = await d.client.get(
        "/v1/freshness", params={"department": "police"}, headers=d.requester
    )
    assert after.json()["departments"] == []


async def test_broker_freshness_prints_what_is_due_or_stale(d: Delivery, database_url: str) -> None:
    printed = await asyncio.to_thread(run_broker, database_url, "freshness")
    assert "police police: 0 due, 1 stale" in printed
    assert (
        f"stale  {POPULATION['code']}  实有人口基本信息  (monthly, last updated never)" in printed
    )
    await d.upload(as_csv(people(3)))
    after = await asyncio.to_thread(run_broker, database_url, "freshness", "--json")
    assert json.loads(after)["departments"] == []
