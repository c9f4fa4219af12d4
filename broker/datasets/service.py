"""Datasets as the broker changes them: the catalog's rules, each change audited.

`catalog.datasets.service` holds the rules and never imports the broker; the audit event of
each change is recorded here, in the change's transaction.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.datasets.representation import auditable
from catalog.access import Viewer
from catalog.datasets import service as datasets
from catalog.datasets.models import Dataset
from catalog.datasets.schemas import DataItemIn, DatasetCreate, DatasetUpdate


async def create(
    *, session: AsyncSession, actor: Actor, viewer: Viewer, data: DatasetCreate
) -> Dataset:
    """Describe a new dataset in the catalog and record it."""
    dataset = await datasets.create(session=session, viewer=viewer, data=data)
    await audit.record(
        session,
        actor,
        "dataset.created",
        AuditObject("dataset", dataset.code),
        details={"after": auditable(dataset)},
    )
    return dataset


async def update(
    *,
    session: AsyncSession,
    actor: Actor,
    viewer: Viewer,
    dataset: Dataset,
    data: DatasetUpdate,
    expected_version: int,
) -> Dataset:
    """Change a dataset's description at the version its editor last saw, and record it."""
    before = auditable(dataset)
    dataset = await datasets.update(
        session=session,
        viewer=viewer,
        dataset=dataset,
        data=data,
        expected_version=expected_version,
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        "dataset.updated",
        AuditObject("dataset", dataset.code),
        details=audit.changes(before, auditable(dataset)),
    )
    return dataset


async def replace_items(
    *,
    session: AsyncSession,
    actor: Actor,
    dataset: Dataset,
    items: list[DataItemIn],
    expected_version: int,
) -> Dataset:
    """Make the dataset's items exactly `items` at the version its editor last saw; record it."""
    before = auditable(dataset)
    dataset = await datasets.replace_items(
        session=session, dataset=dataset, items=items, expected_version=expected_version
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        "dataset.items_replaced",
        AuditObject("dataset", dataset.code),
        details=audit.changes(before, auditable(dataset)),
    )
    return dataset
