"""Who is looking at the catalog, as far as catalog rules need to know."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Viewer:
    department_id: uuid.UUID
    department_code: str
    is_platform: bool  # a member of a platform department: sees drafts everywhere
    is_platform_admin: bool  # may curate any department's catalog entries
    is_steward: bool  # may maintain the own department's catalog entries

    def may_see_drafts_of(self, owner_department_id: uuid.UUID) -> bool:
        return self.is_platform or self.department_id == owner_department_id

    def may_edit(self, owner_department_id: uuid.UUID) -> bool:
        return self.is_platform_admin or (
            self.is_steward and self.department_id == owner_department_id
        )
