"""Release storage behind an fsspec URL, as replicas sharing an object store would use it."""

import os
import time
import uuid
from pathlib import Path

import fsspec
import httpx
import polars as pl
import pytest

from broker.config import Settings
from broker.delivery.storage import ReleaseStore
from conftest import Identities
from delivery_data import POPULATION, as_csv, people

ROOT = f"memory://broker-test-{uuid.uuid4().hex}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, storage_root=ROOT)


async def test_releases_round_trip_through_an_fsspec_store(
    client: httpx.AsyncClient, identities: Identities
) -> None:
    steward = await identities.headers(
        "police-steward", department="police", department_kind="bureau", roles=("steward",)
    )
    assert (await client.post("/v1/datasets", json=POPULATION, headers=steward)).status_code == 201
    uploaded = await client.post(
        f"/v1/datasets/{POPULATION['code']}/releases",
        files={"file": ("人口.csv", as_csv(people(12)), "text/csv")},
        data={"period_start": "2026-10-01", "period_end": "2026-10-31"},
        headers=steward,
    )
    assert uploaded.status_code == 201, uploaded.text
    sha = uploaded.json()["sha256"]
    memory = fsspec.filesystem("memory")
    stored = memory.find(ROOT.removeprefix("memory://"))
    assert [p.rsplit("/", 1)[-1] for p in stored] == [f"{sha}.parquet"]

    store = ReleaseStore(ROOT)
    local, temporary = store.local_path(ReleaseStore.key_for(sha))
    try:
        assert temporary
        assert pl.read_parquet(local).height == 12
    finally:
        local.unlink()


def test_staging_files_left_by_a_crash_are_swept_once_old(tmp_path: Path) -> None:
    store = ReleaseStore(str(tmp_path / "releases"))
    old, fresh = store.staging_file(".csv"), store.staging_file(".csv")
    old.write_text("half a file")
    fresh.write_text("an upload in progress")
    an_hour_ago = time.time() - 3700
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert store.sweep_staging() == 1
    assert not old.exists()
    assert fresh.exists()
