"""Delivering the district's indicator datasets: one accepted release of a period, owner's or
platform copy, and moving a grant's delivery clock."""

import uuid
from datetime import date
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update

from broker.demo import samples
from broker.grants.models import Grant
from support.workflow import District


async def deliver(
    d: District,
    steward: str,
    dataset_code: str,
    period: tuple[date, date] | None = None,
    *,
    copy: str = "owner",
) -> dict[str, Any]:
    """An accepted release of every item of `dataset_code` for `period` (default: the latest
    complete period of the dataset's cycle), into the owner's copy or the platform's."""
    dataset = await d.as_(steward, "GET", f"/v1/datasets/{dataset_code}")
    assert dataset.status_code == 200, dataset.text
    spec = dataset.json()
    sample = samples.indicator_file(
        dataset_code,
        [(item["code"], item["data_type"]) for item in spec["items"]],
        period or samples.latest_full_period(spec["update_cycle"], samples.district_today()),
    )
    uploaded = await d.as_(
        steward,
        "POST",
        f"/v1/datasets/{dataset_code}/releases",
        files={"file": (sample.filename, sample.content, "text/csv")},
        data={
            "period_start": sample.period_start.isoformat(),
            "period_end": sample.period_end.isoformat(),
            "copy": copy,
        },
    )
    assert uploaded.status_code == 201, uploaded.text
    release: dict[str, Any] = uploaded.json()
    assert release["status"] == "accepted", release
    return release


async def move_delivery_clock(app: FastAPI, grant_id: str, due: Any) -> None:
    """Set a grant's delivery due time, as if it had been issued long enough ago."""
    async with app.state.session_factory() as session:
        await session.execute(
            update(Grant)
            .where(Grant.id == uuid.UUID(grant_id))
            .values(delivery_due_at=due, version=Grant.version + 1)
        )
        await session.commit()
