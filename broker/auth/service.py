"""Accounts: who may act for which department, and client authentication."""

import uuid
from datetime import datetime, timedelta

from anyio import CapacityLimiter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.auth.hashing import hash_secret, new_secret, verify_secret
from broker.auth.models import Account, AccountKind, Role
from broker.auth.schemas import AccountCreate
from broker.config import Settings
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind
from core.errors import Conflict, FieldError, InvalidInput, NotFound, OAuthError
from core.time import utcnow


def _check_roles(roles: list[Role], department: Department) -> None:
    """Platform administration is the platform's job: only its accounts may hold that role."""
    if Role.platform_admin in roles and department.kind != DepartmentKind.platform:
        raise InvalidInput(
            f"platform_admin can only be given to accounts of a platform department; "
            f"'{department.code}' is a {department.kind.value}.",
            errors=[
                FieldError("body.roles", "Remove platform_admin or pick a platform department.")
            ],
        )


async def find_by_name(*, session: AsyncSession, name: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.name == name))


async def get_by_name(*, session: AsyncSession, name: str) -> Account:
    account = await find_by_name(session=session, name=name)
    if account is None:
        raise NotFound(f"No account is named '{name}'.")
    return account


async def list_accounts(
    *, session: AsyncSession, after_name: str | None, limit: int, department_code: str | None
) -> list[Account]:
    query = select(Account).order_by(Account.name).limit(limit)
    if after_name is not None:
        query = query.where(Account.name > after_name)
    if department_code is not None:
        department = await departments.get_by_code(session=session, code=department_code)
        query = query.where(Account.department_id == department.id)
    return list((await session.scalars(query)).all())


async def create(
    *, session: AsyncSession, data: AccountCreate, limiter: CapacityLimiter | None = None
) -> tuple[Account, str | None]:
    """Create a person or client account; a client gets a secret, returned once."""
    if await find_by_name(session=session, name=data.name) is not None:
        raise Conflict(
            f"An account named '{data.name}' already exists.",
            errors=[FieldError("body.name", "Choose another name.", "duplicate")],
        )
    department = await departments.find_by_code(session=session, code=data.department_code)
    if department is None:
        raise InvalidInput(
            f"The department '{data.department_code}' does not exist.",
            errors=[FieldError("body.department_code", "Use the code of a registered department.")],
        )
    roles = sorted(set(data.roles))
    _check_roles(roles, department)
    secret = new_secret() if data.kind == AccountKind.client else None
    account = Account(
        name=data.name,
        display_name=data.display_name,
        kind=data.kind,
        department=department,
        roles=[r.value for r in roles],
        secret_hash=await hash_secret(secret, limiter=limiter) if secret else None,
    )
    session.add(account)
    await session.flush()
    return account, secret


def is_active_admin(account: Account) -> bool:
    return not account.disabled and Role.platform_admin.value in account.roles


async def lock_active_admins(*, session: AsyncSession) -> list[Account]:
    """Every active platform admin, locked in id order until the transaction ends.

    Two admins disabling each other at once each saw the other still active and both went
    ahead. Under these locks the second waits for the first and then, PostgreSQL re-reading the
    changed rows, no longer counts the account the first one disabled. (SQLite serialises
    writers anyway.)
    """
    platform = select(Department.id).where(Department.kind == DepartmentKind.platform)
    query = (
        select(Account)
        .where(Account.department_id.in_(platform), Account.disabled.is_(False))
        .order_by(Account.id)
        .with_for_update(of=Account)
        .execution_options(populate_existing=True)
    )
    return [a for a in (await session.scalars(query)).unique() if is_active_admin(a)]


async def _keep_an_active_admin(*, session: AsyncSession, account: Account) -> None:
    """Refuse the change that would leave no active platform admin (409).

    With none left nobody can create accounts or undo the change over the API, and bootstrap
    refuses a database that has accounts; recovery would need `bootstrap --recover` on the
    server. Called before the change is applied to `account`.
    """
    admins = await lock_active_admins(session=session)
    if any(a.id == account.id for a in admins) and len(admins) == 1:
        raise Conflict(
            f"'{account.name}' is the last active platform admin; make another account "
            "platform_admin first, so that someone can still administer the platform."
        )


async def set_roles(*, session: AsyncSession, account: Account, roles: list[Role]) -> Account:
    chosen = sorted(set(roles))
    _check_roles(chosen, account.department)
    if Role.platform_admin not in chosen:
        await _keep_an_active_admin(session=session, account=account)
    account.roles = [r.value for r in chosen]
    await session.flush()
    return account


async def set_disabled(*, session: AsyncSession, account: Account, disabled: bool) -> Account:
    """A disabled account's tokens stop working at once: every request re-checks the account.

    The last active platform admin cannot be disabled.
    """
    if disabled:
        await _keep_an_active_admin(session=session, account=account)
    account.disabled = disabled
    await session.flush()
    return account


async def rotate_secret(
    *, session: AsyncSession, account: Account, limiter: CapacityLimiter | None = None
) -> str:
    if account.kind != AccountKind.client:
        raise Conflict(
            f"'{account.name}' is a person; people sign in through the identity provider, "
            "only clients have secrets."
        )
    secret = new_secret()
    account.secret_hash = await hash_secret(secret, limiter=limiter)
    account.failed_attempts = 0
    account.locked_until = None
    await session.flush()
    return secret


# One answer for an unknown client, a wrong secret and a locked client, so that neither the
# answer nor its timing (every path hashes) tells an attacker which client ids exist.
REFUSAL = "Unknown client, wrong secret, or too many failed attempts; check and retry later."


def _refused() -> OAuthError:
    return OAuthError("invalid_client", REFUSAL, status=401)


async def _count_failure(
    *, session: AsyncSession, settings: Settings, account_id: uuid.UUID, now: datetime
) -> None:
    """One more wrong secret, counted by the database itself.

    An increment read and written back through the ORM lost counts and, through the account's
    version, refused parallel requests with 412; a single UPDATE counts every failure, on every
    replica, without touching the account's version (an administrator's edit is unaffected).
    """
    failures = await session.scalar(
        update(Account)
        .where(Account.id == account_id)
        .values(failed_attempts=Account.failed_attempts + 1)
        .returning(Account.failed_attempts)
        .execution_options(synchronize_session=False)
    )
    over = (failures or 0) - settings.auth_max_failures
    if over >= 0:
        delay = min(2 ** min(over, 30), settings.auth_max_lockout_seconds)
        await session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(locked_until=now + timedelta(seconds=delay))
            .execution_options(synchronize_session=False)
        )


async def authenticate_client(
    *,
    session: AsyncSession,
    settings: Settings,
    limiter: CapacityLimiter,
    client_id: str,
    client_secret: str,
) -> Account:
    """RFC 6749 §2.3.1 client authentication, with back-off after repeated wrong secrets.

    After `auth_max_failures` wrong secrets in a row the client is refused for a doubling delay,
    capped at `auth_max_lockout_seconds`, so guessing is slow but the real client is never locked
    out for good. Every wrong secret counts, also while locked, and the counter lives in the
    database so every replica enforces it. A refusal never says which of unknown, wrong or
    locked it was.
    """
    account = await find_by_name(session=session, name=client_id)
    stored = account.secret_hash if account is not None else None
    valid = await verify_secret(client_secret, stored, limiter=limiter)
    if account is None or stored is None:
        raise _refused()
    now = utcnow()
    if not valid:
        await _count_failure(session=session, settings=settings, account_id=account.id, now=now)
        raise _refused()
    if account.locked_until is not None and account.locked_until > now:
        raise _refused()
    if account.disabled:
        raise OAuthError("invalid_client", "This client is disabled.", status=401)
    await session.execute(
        update(Account)
        .where(
            Account.id == account.id,
            (Account.failed_attempts != 0) | Account.locked_until.is_not(None),
        )
        .values(failed_attempts=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return account
