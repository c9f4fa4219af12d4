"""Release storage behind an fsspec URL, as replicas sharing an object store would use it."""

import asyncio
import os
import time
import uuid
from pathlib import Path

import fsspec
import httpx
import polars as pl
import pytest

from broker.app import create_app
from broker.config import Settings
from broker.delivery.storage import ReleaseStore
from support.delivery_data import POPULATION, as_csv, people
from support.identities import Identities

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


def _last_written(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_a_long_upload_still_being_written_survives_the_sweep(tmp_path: Path) -> None:
    store = ReleaseStore(str(tmp_path / "releases"))
    abandoned, arriving = store.staging_file(".csv"), store.staging_file(".csv")
    abandoned.write_text("half a file")
    arriving.write_text("the first chunks")
    _last_written(abandoned, 7200)
    _last_written(arriving, 7200)  # begun two hours ago...
    with arriving.open("a") as sink:  # ...and written to just now
        sink.write("the next chunk")

    assert store.sweep_staging(older_than=600) == 1
    assert not abandoned.exists()
    assert arriving.exists()


async def test_a_running_app_sweeps_abandoned_staging_files_without_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            storage_root=str(tmp_path / "releases"),
            staging_sweep_interval_seconds=0.05,
            staging_max_age_seconds=600,
        )
    )
    store: ReleaseStore = app.state.release_store
    async with app.router.lifespan_context(app):
        abandoned, arriving = store.staging_file(".csv"), store.staging_file(".csv")
        abandoned.write_text("what a killed upload left")
        arriving.write_text("an upload in progress")
        _last_written(abandoned, 601)
        for _ in range(400):
            if not abandoned.exists():
                break
            await asyncio.sleep(0.05)
        assert not abandoned.exists(), "the abandoned file outlived several sweep intervals"
        assert arriving.exists()

    after_shutdown = store.staging_file(".csv")
    after_shutdown.write_text("left after the app stopped")
    _last_written(after_shutdown, 601)
    await asyncio.sleep(0.3)
    assert after_shutdown.exists(), "the sweep kept running after shutdown"
