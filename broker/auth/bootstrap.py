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
from core.errors import Conflict


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
    return await _create_admin_client(
        session=session,
        actor=actor,
        name=name,
        department_code=department_code,
        department_name=department_name,
    )


async def _create_admin_client(
    *, session: AsyncSession, actor: Actor, name: str, department_code: str, department_name: str
) -> str:
    """The platform department (if needed) and a platform admin client in it; its secret."""
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


async def recover(
    *,
    session: AsyncSession,
    actor: Actor,
    name: str,
    department_code: str,
    department_name: str,
) -> str:
    """Give the platform an administrator again when it has no active one; the new secret.

    The API refuses to remove the last active platform admin, but SQL or a restored backup can
    still leave none, and then bootstrap refuses (accounts exist). This is the way back: local,
    so it needs database access, refused while an active admin exists, and recorded. It enables
    the client `name` (creating it if needed), gives it platform_admin and a new secret.
    """
    admins = await accounts.lock_active_admins(session=session)
    if admins:
        raise Conflict(
            f"An active platform admin exists ({', '.join(sorted(a.name for a in admins))}); "
            "recovery is only for a platform with none. Ask them instead."
        )
    account = await accounts.find_by_name(session=session, name=name)
    if account is None:
        secret = await _create_admin_client(
            session=session,
            actor=actor,
            name=name,
            department_code=department_code,
            department_name=department_name,
        )
        before: dict[str, object] | None = None
    else:
        if account.kind != AccountKind.client or account.department.kind != DepartmentKind.platform:
            raise Conflict(
                f"'{name}' is not a client of a platform department; name such a client, "
                "or a new name to create one."
            )
        before = {"roles": sorted(account.roles), "disabled": account.disabled}
        roles = sorted({*account.roles, Role.platform_admin.value})
        account.roles = roles
        account.disabled = False
        secret = await accounts.rotate_secret(session=session, account=account)
    await audit.record(
        session,
        actor,
        "account.recovered",
        AuditObject("account", name),
        details={
            "before": before,
            "after": {"roles": [Role.platform_admin.value] if before is None else roles},
        },
    )
    return secret
