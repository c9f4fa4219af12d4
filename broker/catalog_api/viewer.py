from typing import Annotated

from fastapi import Depends

from broker.auth.dependencies import Authenticated
from broker.auth.models import Role
from broker.auth.principal import Principal
from catalog.access import Viewer


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(
        department_id=principal.department_id,
        department_code=principal.department_code,
        is_platform=principal.department_is_platform or principal.is_platform_admin,
        is_platform_admin=principal.is_platform_admin,
        is_steward=Role.steward in principal.roles,
    )


async def current_viewer(principal: Authenticated) -> Viewer:
    return viewer_of(principal)


CatalogViewer = Annotated[Viewer, Depends(current_viewer)]
