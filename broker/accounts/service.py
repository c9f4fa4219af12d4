"""Accounts: who may act for which department, client authentication, and the first admin.

Every change an actor makes is recorded here, in the change's transaction.
"""

import uuid
from datetime import datetime, timedelta

from anyio import CapacityLimiter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts.schemas import AccountCreate
from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject, Outcome
from broker.auth import keys, tokens
from broker.auth.hashing import hash_secret, new_secret, verify_secret
from broker.auth.models import Account, AccountKind, Role, SigningKey
from broker.config import Settings
from broker.departments import service as audited_departments
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind
from catalog.departments.schemas import DepartmentCreate
from core.errors import Conflict, FieldError, InvalidInput, NotFound, OAuthError
from core.time import utcnow


def role_problem(roles: list[Role], department: Department) -> tuple[str, str] | None:
    """What is wrong with giving `roles` to an account of `department`, and the fix; None if
    nothing is.

    Platform administration is the platform's job: only its accounts may hold that role.
    An enterprise's people (开发公司) are contractors and nothing else, and only they are: a
    contractor works under the grants of the scenario it was added to and can never request,
    decide or be granted anything itself (issue 14).
    """
    if Role.platform_admin in roles and department.kind != DepartmentKind.platform:
        return (
            f"platform_admin can only be given to accounts of a platform department; "
            f"'{department.code}' is a {department.kind.value}.",
            "Remove platform_admin or pick a platform department.",
        )
    enterprise = department.kind == DepartmentKind.enterprise
    if enterprise and set(roles) != {Role.contractor}:
        return (
            f"'{department.code}' is an enterprise; its accounts hold the contractor role only.",
            "Give exactly ['contractor'].",
        )
    if Role.contractor in roles and not enterprise:
        return (
            f"contractor can only be given to accounts of an enterprise department; "
            f"'{department.code}' is a {department.kind.value}.",
            "Remove contractor or pick an enterprise department.",
        )
    return None


def _check_roles(roles: list[Role], department: Department) -> None:
    problem = role_problem(roles, department)
    if problem is not None:
        detail, fix = problem
        raise InvalidInput(detail, errors=[FieldError("body.roles", fix)])


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


def auditable(account: Account) -> dict[str, object]:
    """What the audit log keeps of an account (never its secret)."""
    return {
        "kind": account.kind.value,
        "department": account.department_code,
        "roles": sorted(account.roles),
        "disabled": account.disabled,
    }


async def create(
    *, session: AsyncSession, data: AccountCreate, limiter: CapacityLimiter | None = None
) -> tuple[Account, str | None]:
    """Build a person or client account; a client gets a secret, returned once.

    Records nothing: an actor's act is `register`; test fixtures and benchmarks seed with this.
    """
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


async def register(
    *,
    session: AsyncSession,
    actor: Actor,
    data: AccountCreate,
    limiter: CapacityLimiter | None = None,
) -> tuple[Account, str | None]:
    """Create an account for a department and record it; a client's secret is returned once."""
    account, secret = await create(session=session, data=data, limiter=limiter)
    await audit.record(
        session,
        actor,
        "account.created",
        AuditObject("account", account.name),
        details={"after": auditable(account)},
    )
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


async def set_roles(
    *, session: AsyncSession, actor: Actor, account: Account, roles: list[Role]
) -> Account:
    """Give an account exactly `roles`; platform_admin stays on the platform's accounts."""
    before = auditable(account)
    chosen = sorted(set(roles))
    _check_roles(chosen, account.department)
    if Role.platform_admin not in chosen:
        await _keep_an_active_admin(session=session, account=account)
    account.roles = [r.value for r in chosen]
    await session.flush()
    await audit.record(
        session,
        actor,
        "account.roles_changed",
        AuditObject("account", account.name),
        details=audit.changes(before, auditable(account)),
    )
    return account


async def set_display_name(
    *, session: AsyncSession, actor: Actor, account: Account, display_name: str
) -> Account:
    """Correct how an account is shown; its name, which tokens and records carry, never changes."""
    before = {"display_name": account.display_name}
    account.display_name = display_name
    await session.flush()
    await audit.record(
        session,
        actor,
        "account.display_name_changed",
        AuditObject("account", account.name),
        details=audit.changes(before, {"display_name": display_name}),
    )
    return account


async def set_disabled(
    *, session: AsyncSession, actor: Actor, account: Account, disabled: bool
) -> Account:
    """A disabled account's tokens stop working at once: every request re-checks the account.

    The last active platform admin cannot be disabled.
    """
    if disabled:
        await _keep_an_active_admin(session=session, account=account)
    account.disabled = disabled
    await session.flush()
    action = "account.disabled" if disabled else "account.enabled"
    await audit.record(session, actor, action, AuditObject("account", account.name))
    return account


async def rotate_secret(
    *,
    session: AsyncSession,
    actor: Actor,
    account: Account,
    limiter: CapacityLimiter | None = None,
) -> str:
    """A client's new secret, shown once; the old one stops working and the lockout resets."""
    secret = await _replace_secret(session=session, account=account, limiter=limiter)
    await audit.record(
        session, actor, "account.secret_rotated", AuditObject("account", account.name)
    )
    return secret


async def _replace_secret(
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
    actor: Actor,
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
    locked it was; each is recorded as `token.refused`, and the caller must commit the count and
    the record although the request fails.
    """
    try:
        return await _authenticate(
            session=session,
            settings=settings,
            limiter=limiter,
            client_id=client_id,
            client_secret=client_secret,
        )
    except OAuthError as refusal:
        await audit.record(
            session,
            actor,
            "token.refused",
            AuditObject("account", client_id[:200]),
            Outcome.denied,
            {"reason": refusal.detail},
        )
        raise


async def _authenticate(
    *,
    session: AsyncSession,
    settings: Settings,
    limiter: CapacityLimiter,
    client_id: str,
    client_secret: str,
) -> Account:
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


async def issue_token(
    *, session: AsyncSession, actor: Actor, settings: Settings, account: Account, grant_type: str
) -> tuple[str, int]:
    """An access token for `account` and its lifetime in seconds; every issue is recorded."""
    token, ttl = await tokens.mint(session=session, settings=settings, account=account)
    await audit.record(
        session,
        actor,
        "token.issued",
        AuditObject("account", account.name),
        details={"expires_in": ttl, "grant_type": grant_type},
    )
    return token, ttl


async def rotate_signing_key(*, session: AsyncSession, actor: Actor) -> SigningKey:
    """Add a new signing key (it signs from now on) and record it."""
    row = await keys.rotate(session=session)
    await audit.record(session, actor, "key.rotated", AuditObject("signing_key", row.kid))
    return row


async def retire_signing_key(*, session: AsyncSession, actor: Actor, kid: str) -> SigningKey:
    """Stop trusting a key on every replica, and record it."""
    row = await keys.retire(session=session, kid=kid)
    await audit.record(session, actor, "key.retired", AuditObject("signing_key", row.kid))
    return row


# ---------------------------------------------------------------- the first administrator


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
        department = await audited_departments.create(
            session=session,
            actor=actor,
            data=DepartmentCreate(
                code=department_code, name=department_name, kind=DepartmentKind.platform
            ),
        )
    _account, secret = await register(
        session=session,
        actor=actor,
        data=AccountCreate(
            name=name,
            display_name="Platform administrator",
            kind=AccountKind.client,
            department_code=department.code,
            roles=[Role.platform_admin],
        ),
    )
    assert secret is not None
    return secret


async def recover_admin(
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
    admins = await lock_active_admins(session=session)
    if admins:
        raise Conflict(
            f"An active platform admin exists ({', '.join(sorted(a.name for a in admins))}); "
            "recovery is only for a platform with none. Ask them instead."
        )
    account = await find_by_name(session=session, name=name)
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
        secret = await _replace_secret(session=session, account=account)
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
