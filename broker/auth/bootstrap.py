from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth import service as accounts
from broker.auth.models import Account, AccountKind, Role
from broker.auth.schemas import AccountCreate
from catalog.departments import service as departments
from catalog.departments.models import DepartmentKind
from catalog.departments.schemas import DepartmentCreate
from catalog.errors import Conflict


async def bootstrap(
    *, session: AsyncSession, actor: Actor, name: str, department_code: str, department_name: str
) -> str:
    """Create the platform department (if needed) and the first platform admin client.

    The only way to obtain a platform admin without one; refused once any exists, so it cannot be
    used to mint a second, unrecorded administrator later.
    """
    existing = (await session.scalars(select(Account))).all()
    if any(Role.platform_admin.value in a.roles for a in existing):
        raise Conflict("A platform admin already exists; ask them to create further accounts.")
    department = await departments.find_by_code(session=session, code=department_code)
    if department is None:
        department = await departments.create(
            session=session,
            data=DepartmentCreate(
                code=department_code, name=department_name, kind=DepartmentKind.platform
            ),
        )
        await audit.record(
            session,
            actor,
            "department.created",
            AuditObject("department", department.code),
            details={"after": {"name": department.name, "kind": department.kind.value}},
        )
    account, secret = await accounts.create(
        session=session,
        data=AccountCreate(
            name=name,
            display_name="Platform administrator",
            kind=AccountKind.client,
            department_code=department.code,
            roles=[Role.platform_admin],
        ),
    )
    assert secret is not None
    await audit.record(
        session,
        actor,
        "account.created",
        AuditObject("account", account.name),
        details={"after": {"department": department.code, "roles": account.roles}},
    )
    return secret
