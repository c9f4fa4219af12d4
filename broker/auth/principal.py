import uuid
from dataclasses import dataclass

from broker.auth.models import Role
from catalog.access import Viewer


@dataclass(frozen=True)
class Principal:
    """Who is calling: one department, some roles, from a verified token."""

    subject: str
    department_id: uuid.UUID
    department_code: str
    roles: frozenset[Role]
    issuer: str
    department_is_platform: bool = False
    client_id: str | None = None
    account_id: uuid.UUID | None = None

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_platform_admin(self) -> bool:
        return Role.platform_admin in self.roles


def viewer_of(principal: Principal) -> Viewer:
    """The principal as the catalog's rules see it."""
    return Viewer(
        department_id=principal.department_id,
        department_code=principal.department_code,
        is_platform=principal.department_is_platform or principal.is_platform_admin,
        is_platform_admin=principal.is_platform_admin,
        is_steward=Role.steward in principal.roles,
    )
