"""Delivering the district's indicator datasets: one accepted release of a recent period, and
reading back what a line's grant is."""

import uuid
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update

from broker.grants.models import Grant
from support.delivery_data import as_csv
from support.workflow import District


def last_full_month(today: date | None = None) -> tuple[date, date]:
    end = (today or date.today()).replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


async def deliver(
    d: District, steward: str, dataset_code: str, period: tuple[date, date] | None = None
) -> dict[str, Any]:
    """An accepted release of every item of `dataset_code` for `period` (default: last month)."""
    dataset = await d.as_(steward, "GET", f"/v1/datasets/{dataset_code}")
    assert dataset.status_code == 200, dataset.text
    row = {item["code"]: "12.5" for item in dataset.json()["items"]}
    start, end = period or last_full_month()
    uploaded = await d.as_(
        steward,
        "POST",
        f"/v1/datasets/{dataset_code}/releases",
        files={"file": (f"{dataset_code}.csv", as_csv([row]), "text/csv")},
        data={"period_start": start.isoformat(), "period_end": end.isoformat()},
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
