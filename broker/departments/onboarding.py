"""Onboarding a district in bulk: its departments from one CSV or workbook, all or nothing.

A district starts with a list of its units made in Excel; creating them one by one over HTTP is
where onboarding stalled (issue 16). The list is read by the one tabular reader
(`catalog.tabular`), so title rows, blank rows, footer notes, GBK and UTF-16 text, XLS and XLSX
all work, and every problem is named by the row the sheet shows.

Rules of a department list:
- a row per department: 部门编码/code, 部门名称/name, 部门类型/kind, and optionally 上级部门/parent
  (the parent's code or name, in the file or already registered; blank: no parent);
- nothing is written unless every row is right; each problem names its row and its fix;
- a department already registered exactly as the row says is unchanged (re-running a list is
  harmless); a changed name or parent is updated; a changed kind is refused, because the kind
  decides which roles its accounts may hold (platform_admin, contractor): change it on purpose
  with PATCH /v1/departments/{code};
- departments the list leaves out are left alone: a list adds and corrects, it never deletes.

`read_listing` is the part shared with account lists (`broker.accounts.onboarding`).
"""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit import service as audit
from broker.audit.service import Actor, AuditObject
from broker.departments import service as audited
from catalog import tabular
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind
from catalog.departments.schemas import DepartmentCreate, DepartmentUpdate
from core.errors import FieldError, InvalidInput

# ---------------------------------------------------------------- reading a list


@dataclass(frozen=True)
class ListColumn:
    """A column of a list: its key, and every header it goes by (Chinese and English)."""

    key: str
    headers: tuple[str, ...]
    required: bool = False

    @property
    def label(self) -> str:
        return f"{self.headers[0]} ({self.key})"


@dataclass
class ListRow:
    number: int  # as the sheet shows it
    values: dict[str, str]  # column key -> the cell's text, stripped; only columns the file has


@dataclass
class Listing:
    """The rows of a department or account list, and what a dry run should point out."""

    rows: list[ListRow]
    headers: dict[str, str]  # column key -> the header as the file writes it
    warnings: list[str] = field(default_factory=list)

    def header(self, key: str) -> str:
        return self.headers.get(key, key)


def fold(text: str) -> str:
    """Full-width letters, digits and punctuation as half-width, outer spaces dropped: how codes
    and names are read (ｔａｘ is tax)."""
    return unicodedata.normalize("NFKC", text).strip()


def word(text: str) -> str:
    """A vocabulary word as it is compared: folded, lower case, without any space."""
    return re.sub(r"\s+", "", fold(text)).lower()


def _row_number(problem: FieldError) -> int:
    found = re.match(r"row (\d+)", problem.location)
    return int(found[1]) if found else 0


def problems_found(noun: str, problems: list[FieldError]) -> InvalidInput:
    """The refusal of a whole list: every problem in row order, each naming its row and fix."""
    count = len(problems)
    return InvalidInput(
        f"The {noun} list has {count} problem{'s' if count != 1 else ''}; nothing was imported. "
        "Fix the rows named and import the whole file again.",
        errors=sorted(problems, key=_row_number),
    )


def read_listing(
    data: bytes,
    *,
    filename: str | None,
    columns: Sequence[ListColumn],
    noun: str,
    location: str = "file",
) -> Listing:
    """The rows of a list under its headers (any of each column's names, Chinese or English).

    Refuses (InvalidInput) a file without the required columns or without rows; unknown columns
    (序号, 备注, ...) are ignored and reported as warnings.
    """
    by_header = {tabular.normalize_header(h): c for c in columns for h in (*c.headers, c.key)}

    def is_header(cells: list[str]) -> bool:
        return len({by_header[c].key for c in cells if c in by_header}) >= 2

    table = tabular.read_table(data, is_header=is_header, filename=filename, location=location)
    where = f"row {table.header_row}"
    positions: dict[str, int] = {}
    headers: dict[str, str] = {}
    problems: list[FieldError] = []
    warnings = list(table.skipped)
    for position, text in enumerate(table.header):
        column = by_header.get(tabular.normalize_header(text))
        if column is None:
            if text:
                warnings.append(
                    f"{where}, column {position + 1}: '{text}' is not a column of a {noun} list; "
                    "ignored"
                )
            continue
        if column.key in positions:
            problems.append(
                FieldError(
                    where,
                    f"'{text}' and '{headers[column.key]}' are both {column.label}; keep one "
                    "of the two columns.",
                    "duplicate",
                )
            )
            continue
        positions[column.key] = position
        headers[column.key] = re.sub(r"[\s*＊]+", "", text)
    for column in columns:
        if column.required and column.key not in positions:
            problems.append(
                FieldError(
                    where,
                    f"The column {column.label} is missing; add it, headed "
                    f"{' or '.join(column.headers[:3])} (or {column.key}).",
                    "missing",
                )
            )
    if problems:
        raise InvalidInput(
            f"The {noun} list's header row is not one this import reads.", errors=problems
        )
    rows = []
    for row in table.rows:
        values = {key: tabular.cell_text(row.cells[p]).strip() for key, p in positions.items()}
        if any(values.values()):
            rows.append(ListRow(row.number, values))
    if not rows:
        raise InvalidInput(
            f"The {noun} list has a header but no rows.",
            errors=[FieldError(f"row {table.header_row + 1}", f"Add a row per {noun}.")],
        )
    return Listing(rows=rows, headers=headers, warnings=warnings)


# ---------------------------------------------------------------- department lists

DEPARTMENT_COLUMNS = (
    ListColumn(
        "code", ("部门编码", "单位编码", "部门代码", "编码", "代码", "department_code"), True
    ),
    ListColumn("name", ("部门名称", "单位名称", "名称", "部门全称"), True),
    ListColumn("kind", ("部门类型", "单位类型", "类型", "type"), True),
    ListColumn("parent", ("上级部门", "上级单位", "上级部门编码", "上级", "parent_code")),
)
KIND_WORDS: dict[str, DepartmentKind] = {
    spelled: kind
    for kind, words in (
        (DepartmentKind.platform, ("platform", "平台", "平台部门", "平台单位")),
        (DepartmentKind.bureau, ("bureau", "委办局", "委办", "局", "部门", "职能部门")),
        (DepartmentKind.street, ("street", "街镇", "街道", "镇", "乡镇", "街道办事处")),
        (DepartmentKind.enterprise, ("enterprise", "企业", "公司", "开发公司")),
    )
    for spelled in words
}
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


@dataclass
class ImportPlan:
    """What an import did, or would do in a dry run, by code or name."""

    rows: int
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)  # -> the fields changed
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Wanted:
    """A department as its row describes it."""

    row: int
    code: str
    name: str
    kind: DepartmentKind
    parent_text: str | None  # None: the file has no parent column
    parent: str | None = None  # the parent's code, once resolved


def read_departments(data: bytes, *, filename: str | None, location: str = "file") -> Listing:
    """A department list's rows; checking them against the district is `import_departments`."""
    return read_listing(
        data, filename=filename, columns=DEPARTMENT_COLUMNS, noun="department", location=location
    )


def _parse(row: ListRow, listing: Listing, problems: list[FieldError]) -> _Wanted | None:
    where = f"row {row.number}"
    before = len(problems)
    code = fold(row.values.get("code", ""))
    name = row.values.get("name", "").strip()
    kind_text = row.values.get("kind", "")
    if not code:
        problems.append(FieldError(where, f"{listing.header('code')} is empty; give a code."))
    elif not CODE.match(code):
        problems.append(
            FieldError(
                where,
                f"{listing.header('code')} '{code}' is not a code: use at most 32 letters, digits, "
                "_ . -, starting with a letter or digit (e.g. tax, 31010401).",
            )
        )
    if not name:
        problems.append(FieldError(where, f"{listing.header('name')} is empty; give the name."))
    elif len(name) > 200:
        problems.append(
            FieldError(where, f"{listing.header('name')} is over 200 characters; shorten it.")
        )
    kind = KIND_WORDS.get(word(kind_text))
    if kind is None:
        problems.append(
            FieldError(
                where,
                f"{listing.header('kind')} '{kind_text}' is not a kind of department; write "
                "platform, bureau, street or enterprise (平台、委办局、街镇、企业).",
            )
        )
    if len(problems) > before or kind is None:
        return None
    parent = row.values["parent"].strip() if "parent" in row.values else None
    return _Wanted(row.number, code, name, kind, parent)


def _cycle(code: str, parents: dict[str, str | None]) -> list[str] | None:
    """The loop `code` sits on when every department takes the parent the file gives it."""
    path = [code]
    current = parents.get(code)
    while current is not None:
        if current == code:
            return [*path, code]
        if current in path:
            return None  # a loop above this department, reported on its own rows
        path.append(current)
        current = parents.get(current)
    return None


def _parents_first(wanted: dict[str, _Wanted]) -> list[_Wanted]:
    ordered: list[_Wanted] = []
    placed: set[str] = set()

    def place(entry: _Wanted) -> None:
        if entry.code in placed:
            return
        placed.add(entry.code)
        if entry.parent in wanted:
            place(wanted[entry.parent])
        ordered.append(entry)

    for entry in wanted.values():
        place(entry)
    return ordered


def _changes(entry: _Wanted, department: Department) -> dict[str, object]:
    changes: dict[str, object] = {}
    if entry.name != department.name:
        changes["name"] = entry.name
    if entry.parent_text is not None and entry.parent != department.parent_code:
        changes["parent_code"] = entry.parent
    return changes


async def import_departments(
    *, session: AsyncSession, actor: Actor, listing: Listing, source: str | None, dry_run: bool
) -> ImportPlan:
    """Register and correct the departments of a list, or nothing: the rules in this module's
    docstring. A dry run checks everything and writes and records nothing."""
    registered = {d.code: d for d in await departments.all_departments(session=session)}
    problems: list[FieldError] = []
    wanted: dict[str, _Wanted] = {}
    for row in listing.rows:
        entry = _parse(row, listing, problems)
        if entry is None:
            continue
        if entry.code in wanted:
            problems.append(
                FieldError(
                    f"row {row.number}",
                    f"{listing.header('code')} '{entry.code}' is also on row "
                    f"{wanted[entry.code].row}; keep one row per department.",
                    "duplicate",
                )
            )
            continue
        wanted[entry.code] = entry
        department = registered.get(entry.code)
        if department is not None and department.kind != entry.kind:
            problems.append(
                FieldError(
                    f"row {row.number}",
                    f"'{entry.code}' is registered as a {department.kind.value}, not a "
                    f"{entry.kind.value}; an import does not change kinds (they decide which roles "
                    "the department's accounts may hold). Write "
                    f"{department.kind.value} here, or change it with PATCH "
                    f"/v1/departments/{entry.code} first.",
                    "conflict",
                )
            )

    directory = departments.Directory(
        departments.Named(d.code, d.name) for d in registered.values()
    )
    for entry in wanted.values():
        directory.add(departments.Named(entry.code, entry.name))
    for entry in wanted.values():
        if not entry.parent_text:
            continue
        found = directory.lookup(entry.parent_text)
        if isinstance(found, departments.Named):
            entry.parent = found.code
            continue
        problems.append(
            FieldError(
                f"row {entry.row}",
                f"{listing.header('parent')} '{entry.parent_text}' names no department in this "
                f"file or registered{departments.did_you_mean(found)}; give the parent's code or "
                "full name, add its row, or leave the cell blank.",
                "unknown_reference",
            )
        )

    parents: dict[str, str | None] = {code: d.parent_code for code, d in registered.items()}
    parents |= {
        code: entry.parent if entry.parent_text is not None else parents.get(code)
        for code, entry in wanted.items()
    }
    for entry in wanted.values():
        loop = _cycle(entry.code, parents)
        if loop is not None:
            problems.append(
                FieldError(
                    f"row {entry.row}",
                    f"{listing.header('parent')} makes '{entry.code}' its own ancestor "
                    f"({' → '.join(loop)}); give one of them another parent.",
                )
            )
    if problems:
        raise problems_found("department", problems)

    plan = ImportPlan(rows=len(listing.rows), warnings=list(listing.warnings))
    for entry in _parents_first(wanted):
        department = registered.get(entry.code)
        if department is None:
            plan.created.append(entry.code)
            if not dry_run:
                await audited.create(
                    session=session,
                    actor=actor,
                    data=DepartmentCreate(
                        code=entry.code, name=entry.name, kind=entry.kind, parent_code=entry.parent
                    ),
                )
            continue
        changes = _changes(entry, department)
        if not changes:
            plan.unchanged.append(entry.code)
            continue
        plan.updated[entry.code] = sorted(k.removesuffix("_code") for k in changes)
        if not dry_run:
            await audited.update(
                session=session,
                actor=actor,
                department=department,
                data=DepartmentUpdate.model_validate(changes),
                expected_version=department.version,
            )
    if not dry_run:
        await audit.record(
            session,
            actor,
            "departments.imported",
            AuditObject("department_list", source),
            details={
                "rows": plan.rows,
                "created": plan.created,
                "updated": sorted(plan.updated),
                "unchanged": len(plan.unchanged),
            },
        )
    return plan
