"""Catalog sheets as the broker imports them: the catalog's all-or-nothing import, audited.

`catalog.sheets.service` checks and applies a 目录 sheet and never imports the broker; the
record of an import is made here, in the import's transaction.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from catalog.access import Viewer
from catalog.sheets import service as sheets


async def import_sheet(
    *,
    session: AsyncSession,
    actor: Actor,
    viewer: Viewer,
    sheet: sheets.CheckedSheet,
    source: str | None,
    dry_run: bool,
) -> sheets.ImportPlan:
    """Create or update every dataset a checked sheet describes, or nothing, and record it.

    Checking (`catalog.sheets.service.check_sheet`) is the caller's, since it can take seconds
    and is best run outside any transaction; a dry run writes and records nothing.
    """
    plan = await sheets.apply_sheet(session=session, viewer=viewer, sheet=sheet, dry_run=dry_run)
    if not dry_run:
        await audit.record(
            session,
            actor,
            "catalog.imported",
            AuditObject("catalog", source),
            details={
                "rows": plan.rows,
                "created": plan.created,
                "updated": sorted(plan.updated),
                "unchanged": len(plan.unchanged),
                "warnings": len(plan.warnings),
            },
        )
    return plan
