"""Onboarding a district's people and systems in bulk: an account list, all or nothing.

Rules of an account list (read like a department list, `broker.departments.onboarding`):
- a row per account: 账号/name, 类型/kind (person, or system for a department system that signs
  in with client credentials), 部门/department (its code, full name or a short name only one
  department's name holds), 角色/roles (one or more, separated by 、 , ; or spaces, in English or
  as 需求方/数据专员/平台管理员/领导/审计员/开发人员), and optionally 显示名/display name (default:
  the account name);
- the departments must be registered first (`broker departments import`);
- nothing is written unless every row is right; each problem names its row and its fix;
- an account already registered as the row says is unchanged; changed roles or display name are
  updated (audited as one by one); a changed kind or department is refused, because the
  department is the account's security boundary and a kind change would give or take a
  secret: create a new account and disable the old one instead; disabled accounts stay disabled;
- the list may not leave the platform without an active platform admin;
- a new system account gets a client secret, returned once in the plan and never stored: the
  CLI writes them to a file only its caller can read, the HTTP answer carries them once.
"""

import re
import unicodedata
from dataclasses import dataclass, field

from anyio import CapacityLimiter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts import service as accounts
from broker.accounts.schemas import AccountCreate
from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.auth.models import Account, AccountKind, Role
from broker.departments.onboarding import (
    ImportPlan,
    ListColumn,
    Listing,
    ListRow,
    fold,
    problems_found,
    read_listing,
    word,
)
from catalog.departments import service as departments
from catalog.departments.models import Department
from core.errors import FieldError

ACCOUNT_COLUMNS = (
    ListColumn("name", ("账号", "账号名", "用户名", "登录名", "client_id", "account"), True),
    ListColumn("kind", ("类型", "账号类型", "type"), True),
    ListColumn("department", ("部门", "所属部门", "部门编码", "单位", "department_code"), True),
    ListColumn("roles", ("角色", "权限", "role"), True),
    ListColumn("display_name", ("显示名", "显示名称", "姓名", "名称", "displayname")),
)
KIND_WORDS: dict[str, AccountKind] = {
    spelled: kind
    for kind, words in (
        (AccountKind.person, ("person", "人员", "个人", "用户", "人")),
        (AccountKind.client, ("system", "client", "系统", "系统账号", "客户端", "应用", "接口")),
    )
    for spelled in words
}
ROLE_WORDS: dict[str, Role] = {
    spelled: role
    for role, words in (
        (Role.requester, ("需求方", "申请人", "数据需求方", "使用方")),
        (Role.steward, ("数据专员", "数据管理员", "数据管理专员")),
        (Role.platform_admin, ("平台管理员", "platformadmin", "platform-admin")),
        (Role.leader, ("领导", "分管领导", "协调领导")),
        (Role.auditor, ("审计员", "审计", "安全审计员")),
        (Role.contractor, ("开发人员", "外包人员", "承建商", "开发公司人员")),
    )
    for spelled in (role.value, *words)
}
ROLE_SEPARATORS = re.compile(r"[、,;/|\s]+")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass
class AccountImportPlan(ImportPlan):
    """An account import's plan, with the secrets of the system accounts it created."""

    new_clients: list[str] = field(default_factory=list)  # created (or would be, in a dry run)
    client_secrets: dict[str, str] = field(default_factory=dict)  # shown once; never in a dry run


@dataclass
class _Wanted:
    row: int
    name: str
    display_name: str | None  # None: not given
    kind: AccountKind
    department: Department
    roles: list[Role]


def read_accounts(data: bytes, *, filename: str | None, location: str = "file") -> Listing:
    """An account list's rows; checking them is `import_accounts`."""
    return read_listing(
        data, filename=filename, columns=ACCOUNT_COLUMNS, noun="account", location=location
    )


def named_roles(text: str) -> tuple[list[Role], list[str]]:
    """The roles a cell names, and the words it holds that name none."""
    roles: list[Role] = []
    unknown: list[str] = []
    for named in ROLE_SEPARATORS.split(unicodedata.normalize("NFKC", text)):
        if not named:
            continue
        role = ROLE_WORDS.get(named.lower())
        if role is None:
            unknown.append(named)
        elif role not in roles:
            roles.append(role)
    return roles, unknown


def _parse(
    row: ListRow,
    listing: Listing,
    directory: departments.Directory,
    registered: dict[str, Department],
    problems: list[FieldError],
) -> _Wanted | None:
    where = f"row {row.number}"
    before = len(problems)

    def problem(message: str, kind: str = "invalid") -> None:
        problems.append(FieldError(where, message, kind))

    name = fold(row.values.get("name", ""))
    if not name:
        problem(f"{listing.header('name')} is empty; give the account's login or client id.")
    elif not NAME.match(name):
        problem(
            f"{listing.header('name')} '{name}' is not an account name: use at most 64 letters, "
            "digits, _ . @ -, starting with a letter or digit (e.g. tax-steward)."
        )
    display_name = row.values.get("display_name", "").strip() or None
    if display_name is not None and len(display_name) > 200:
        problem(f"{listing.header('display_name')} is over 200 characters; shorten it.")
    kind_text = row.values.get("kind", "")
    kind = KIND_WORDS.get(word(kind_text))
    if kind is None:
        problem(
            f"{listing.header('kind')} '{kind_text}' is not a kind of account; write person "
            "(人员: signs in through the identity provider) or system (系统: a department system "
            "with a client secret)."
        )
    department_text = row.values.get("department", "")
    department: Department | None = None
    if not department_text:
        problem(f"{listing.header('department')} is empty; give the department's code or name.")
    else:
        found = directory.lookup(department_text)
        if isinstance(found, departments.Named):
            department = registered[found.code]
        else:
            problem(
                f"{listing.header('department')} '{department_text}' names no registered "
                f"department{departments.did_you_mean(found)}; give its code or full name, or "
                "import the department list first.",
                "unknown_reference",
            )
    roles, unknown = named_roles(row.values.get("roles", ""))
    if unknown:
        problem(
            f"{listing.header('roles')}: {'、'.join(unknown)} "
            f"{'is not a role' if len(unknown) == 1 else 'are not roles'}; use requester "
            "(需求方), steward (数据专员), platform_admin (平台管理员), leader (领导), auditor "
            "(审计员) or contractor (开发人员), separated by 、."
        )
    elif not roles:
        problem(f"{listing.header('roles')} is empty; give at least one role.")
    elif department is not None:
        wrong = accounts.role_problem(roles, department)
        if wrong is not None:
            problem(f"{wrong[0]} {wrong[1]}")
    if len(problems) > before or kind is None or department is None:
        return None
    return _Wanted(row.number, name, display_name, kind, department, sorted(roles))


def _refusal(entry: _Wanted, account: Account) -> str | None:
    """Why a row may not change the registered account it names, if it may not."""
    if account.department_id != entry.department.id:
        return (
            f"'{entry.name}' belongs to '{account.department_code}', not "
            f"'{entry.department.code}'; an import does not move accounts between departments "
            "(the department is what the account may act for). Create a new account for "
            f"'{entry.department.code}' and disable this one (POST /v1/accounts/{entry.name}/"
            "disable), or fix the row."
        )
    if account.kind != entry.kind:
        shown = "system" if account.kind == AccountKind.client else "person"
        return (
            f"'{entry.name}' is registered as a {shown} account; an import does not change "
            "an account's kind (it would give or take a client secret). Create a new account "
            "under another name, or fix the row."
        )
    return None


async def import_accounts(
    *,
    session: AsyncSession,
    actor: Actor,
    listing: Listing,
    source: str | None,
    dry_run: bool,
    limiter: CapacityLimiter | None = None,
) -> AccountImportPlan:
    """Create and correct the accounts of a list, or nothing: the rules in this module's
    docstring. A dry run checks everything and writes, records and returns no secret."""
    registered = {d.code: d for d in await departments.all_departments(session=session)}
    directory = departments.Directory(
        departments.Named(d.code, d.name) for d in registered.values()
    )
    problems: list[FieldError] = []
    wanted: dict[str, _Wanted] = {}
    for row in listing.rows:
        entry = _parse(row, listing, directory, registered, problems)
        if entry is None:
            continue
        if entry.name in wanted:
            problems.append(
                FieldError(
                    f"row {row.number}",
                    f"{listing.header('name')} '{entry.name}' is also on row "
                    f"{wanted[entry.name].row}; keep one row per account.",
                    "duplicate",
                )
            )
            continue
        wanted[entry.name] = entry
    existing = {
        a.name: a
        for a in (
            await session.scalars(select(Account).where(Account.name.in_(list(wanted))))
        ).all()
    }
    for entry in wanted.values():
        account = existing.get(entry.name)
        refusal = _refusal(entry, account) if account is not None else None
        if refusal is not None:
            problems.append(FieldError(f"row {entry.row}", refusal, "conflict"))
    problems += await _admins_left(session=session, wanted=wanted, existing=existing)
    if problems:
        raise problems_found("account", problems)

    plan = AccountImportPlan(rows=len(listing.rows), warnings=list(listing.warnings))
    for entry in wanted.values():  # creations first: a new admin counts before an old one goes
        if entry.name in existing:
            continue
        plan.created.append(entry.name)
        if entry.kind == AccountKind.client:
            plan.new_clients.append(entry.name)
        if dry_run:
            continue
        _account, secret = await accounts.register(
            session=session,
            actor=actor,
            data=AccountCreate(
                name=entry.name,
                display_name=entry.display_name or entry.name,
                kind=entry.kind,
                department_code=entry.department.code,
                roles=entry.roles,
            ),
            limiter=limiter,
        )
        if secret is not None:
            plan.client_secrets[entry.name] = secret
    for entry in wanted.values():
        account = existing.get(entry.name)
        if account is None:
            continue
        if account.disabled:
            plan.warnings.append(
                f"row {entry.row}: '{entry.name}' is disabled; an import does not enable it "
                f"(POST /v1/accounts/{entry.name}/enable does)"
            )
        changed = []
        if sorted(account.roles) != [r.value for r in entry.roles]:
            changed.append("roles")
        if entry.display_name is not None and entry.display_name != account.display_name:
            changed.append("display_name")
        if not changed:
            plan.unchanged.append(entry.name)
            continue
        plan.updated[entry.name] = changed
        if dry_run:
            continue
        if "roles" in changed:
            await accounts.set_roles(
                session=session, actor=actor, account=account, roles=entry.roles
            )
        if entry.display_name is not None and "display_name" in changed:
            await accounts.set_display_name(
                session=session, actor=actor, account=account, display_name=entry.display_name
            )
    if not dry_run:
        await audit.record(
            session,
            actor,
            "accounts.imported",
            AuditObject("account_list", source),
            details={
                "rows": plan.rows,
                "created": plan.created,
                "updated": sorted(plan.updated),
                "unchanged": len(plan.unchanged),
            },
        )
    return plan


async def _admins_left(
    *, session: AsyncSession, wanted: dict[str, _Wanted], existing: dict[str, Account]
) -> list[FieldError]:
    """Refuse a list that would leave the platform without an active platform admin: with none,
    nobody could create accounts or undo the import over the API."""
    active = (await session.scalars(select(Account).where(Account.disabled.is_(False)))).all()
    admins = {a.name for a in active if accounts.is_active_admin(a)}
    losing = [
        entry
        for entry in wanted.values()
        if entry.name in admins and Role.platform_admin not in entry.roles
    ]
    gaining = [
        entry
        for entry in wanted.values()
        if entry.name not in existing and Role.platform_admin in entry.roles
    ]
    if not losing or gaining or admins - {entry.name for entry in losing}:
        return []
    return [
        FieldError(
            f"row {entry.row}",
            f"This takes platform_admin from '{entry.name}', and the list leaves no active "
            "platform admin; keep platform_admin on one of them or add a new one.",
            "conflict",
        )
        for entry in losing
    ]
