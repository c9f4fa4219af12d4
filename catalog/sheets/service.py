"""Sheet import (all or nothing, upsert by codes) and export in the same layout.

A sheet is read as offices make it (see `catalog.sheets.layout` for the headers and
`catalog.vocab.ALIASES` for the words): what is read generously (a department's short name, a
dataset code in the 指南's 前段码/后段码 form, items without codes, 敏感级别 that differs between
items) is said in the plan's warnings, so a dry run shows it before anything is written.
"""

import difflib
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.access import Viewer
from catalog.datasets import service as datasets
from catalog.datasets.models import Dataset
from catalog.datasets.schemas import DatasetCreate, DatasetFields, DatasetUpdate
from catalog.departments.models import Department
from catalog.sheets.io import Sheet, SheetRow, SheetWarning, read_sheet
from catalog.sheets.layout import COLUMNS, FALSE_WORDS, LIST_SEPARATORS, TRUE_WORDS
from catalog.vocab import (
    Aggregation,
    BaseKind,
    Category,
    DataGrade,
    DatasetStatus,
    DataType,
    OpenType,
    PersonalInfo,
    Protection,
    Sensitivity,
    ShareMethod,
    ShareType,
    UpdateCycle,
    label,
    parse,
    words,
)
from core.errors import DomainError, FieldError, Forbidden, InvalidInput

ITEM_FIELD_COLUMN = {
    "code": "item_code",
    "name": "item_name",
    "description": "item_description",
    "data_type": "data_type",
    "unit": "unit",
    "nullable": "nullable",
    "is_key": "is_key",
    "enum": "enum",
    "pattern": "pattern",
    "minimum": "minimum",
    "maximum": "maximum",
    "sensitivity": "item_sensitivity",
    "default_protection": "default_protection",
    "personal_info": "personal_info",
    "aggregation": "aggregation",
}
VOCABULARY: dict[str, type[Any]] = {
    "category": Category,
    "base_kind": BaseKind,
    "share_type": ShareType,
    "open_type": OpenType,
    "update_cycle": UpdateCycle,
    "data_grade": DataGrade,
    "sensitivity": Sensitivity,
    "status": DatasetStatus,
}
ITEM_VOCABULARY: dict[str, type[Any]] = {
    "data_type": DataType,
    "item_sensitivity": Sensitivity,
    "default_protection": Protection,
    "personal_info": PersonalInfo,
    "aggregation": Aggregation,
}
# 资源分类 written as the 指南's path (部门信息资源/区统计局/...): its first step is the category.
CATEGORY_PATH = re.compile(r"[/>＞》\\|-]")
# Excel counts days from 1899-12-30 (its 1900 leap-year bug included). Only five-digit serials
# (1927-05-18 to 2173-10-14) are read as dates: a bare year such as 2024 is refused, not 1905.
EXCEL_EPOCH = date(1899, 12, 30)
DATE_FORMS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


@dataclass(frozen=True)
class Owner:
    """A department a sheet row may name, as far as checking the sheet needs it."""

    id: uuid.UUID
    code: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


@dataclass(frozen=True)
class Owners:
    """The departments a sheet may name as owner: by code (any case), by full name, or by a short
    name that only one department's name holds (统计局 for 区统计局; 发改委 for
    区发展和改革委员会: its characters in order)."""

    departments: tuple[Owner, ...]

    def exact(self, text: str) -> Owner | None:
        wanted = words(text)
        for owner in self.departments:
            if wanted.lower() == owner.code.lower() or wanted == words(owner.name):
                return owner
        return None

    def by_short_name(self, text: str) -> list[Owner]:
        wanted = words(text)
        if len(wanted) < 2:
            return []
        holding = [o for o in self.departments if wanted in words(o.name)]
        if holding:
            return holding
        return [o for o in self.departments if _in_order(wanted, words(o.name))]

    def near(self, text: str) -> list[Owner]:
        names = {words(o.name): o for o in self.departments} | {
            o.code.lower(): o for o in self.departments
        }
        wanted = words(text).lower()
        close = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.4)
        best = [c for c in close if _likeness(wanted, c) == _likeness(wanted, close[0])]
        return list(dict.fromkeys(names[c] for c in best))


def _likeness(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _in_order(short: str, name: str) -> bool:
    """Whether `short` is `name` abbreviated: its characters all in `name`, in order."""
    rest = iter(name)
    return all(char in rest for char in short)


@dataclass(frozen=True)
class CheckedDataset:
    """One dataset of a checked sheet. The spec travels as JSON: a large sheet is checked in a
    worker process, and millions of objects unpickled at once would stall the caller."""

    code: str
    first_row: int
    spec_json: bytes

    def spec(self) -> DatasetCreate:
        return DatasetCreate.model_validate_json(self.spec_json)


@dataclass
class CheckedSheet:
    """A sheet whose every row passed the checks, and what was read past or read generously."""

    rows: int
    datasets: list[CheckedDataset]
    warnings: list[SheetWarning] = field(default_factory=list)


@dataclass
class ImportPlan:
    rows: int
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[SheetWarning] = field(default_factory=list)


class _Findings:
    """The errors and warnings of one sheet, each named by its row and the column as the sheet
    heads it."""

    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet
        self.items: list[FieldError] = []
        self.warnings: list[SheetWarning] = list(sheet.warnings)
        self._warned: set[tuple[str, str]] = set()

    def where(self, row: int, key: str | None) -> str:
        return f"row {row}" + (f", {self.sheet.header(key)}" if key else "")

    def add(self, row: int, key: str | None, message: str) -> None:
        self.items.append(FieldError(self.where(row, key), message))

    def warn(self, row: int, key: str | None, message: str, *, once: str | None = None) -> None:
        """A warning; with `once`, only the first of its kind (e.g. one per short name)."""
        if once is not None:
            if (key or "", once) in self._warned:
                return
            self._warned.add((key or "", once))
        self.warnings.append(SheetWarning(self.where(row, key), message))


def _clean(raw: str) -> str:
    """A code, number or word as typed: full-width forms folded (NFKC), spaces dropped."""
    return words(raw)


def _boolean(raw: str, row: int, key: str, found: _Findings) -> bool | None:
    if not raw:
        return None
    word = _clean(raw).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    found.add(row, key, f"'{raw}' is not 是 or 否 (TRUE/FALSE, 1/0 and √/× also do).")
    return None


def _vocab(key: str, raw: str, row: int, found: _Findings) -> Any:
    if not raw:
        return None
    kind = VOCABULARY.get(key) or ITEM_VOCABULARY[key]
    location = found.where(row, key)
    try:
        return parse(kind, raw, location=location)
    except InvalidInput as exc:
        steps = [s for s in CATEGORY_PATH.split(_clean(raw)) if s]
        if kind is Category and len(steps) > 1:
            try:
                return parse(kind, steps[0], location=location)
            except InvalidInput:
                pass
        found.items.extend(_unknown(raw, exc))
        return None


def _unknown(raw: str, exc: InvalidInput) -> list[FieldError]:
    """The vocabulary's errors, saying which value was not known."""
    return [
        FieldError(e.location, f"'{raw.strip()}' is not known here. {e.message}", e.type)
        for e in exc.errors
    ]


def _number(raw: str, row: int, key: str, found: _Findings) -> float | None:
    if not raw:
        return None
    try:
        return float(_clean(raw).replace(",", ""))
    except ValueError:
        found.add(row, key, f"'{raw}' is not a number.")
        return None


def _date(raw: str, row: int, key: str, found: _Findings) -> date | None:
    """A date as sheets hold it: an Excel date cell (read as yyyy-mm-dd), its serial number when
    the cell lost its format, yyyy-mm-dd, yyyy/mm/dd, yyyy.mm.dd, yyyymmdd or yyyy年m月d日."""
    if not raw:
        return None
    text = _clean(raw) if "年" in raw else unicodedata.normalize("NFKC", raw).strip()
    serial = re.fullmatch(r"(\d{5})(?:\.0+)?", text)
    if serial:
        return EXCEL_EPOCH + timedelta(days=int(serial.group(1)))
    for form in DATE_FORMS:
        match = form.match(text)
        if match:
            try:
                return date(*(int(part) for part in match.groups()))
            except ValueError:
                break
    found.add(
        row, key, f"'{raw}' is not a date; write it as 2024-01-31, 2024/1/31 or 2024年1月31日."
    )
    return None


def dataset_code(raw: str) -> tuple[str, str | None]:
    """The dataset code a sheet gives, and the 信息资源分类码 when it is in the 指南's form.

    《政务信息资源目录编制指南》 codes a resource as 前段码/后段码 (the 分类码 of 类, 项, 目 and
    细目, then the resource's 顺序码), e.g. `330106/0001`. A code here holds no `/`, so such a code
    is stored as 前段码-后段码 (`330106-0001`) and its 前段码 kept as the class code.
    """
    code = _clean(raw)
    front, slash, back = code.partition("/")
    if slash and front and back:
        return f"{front}-{back}", front
    return code, None


def _owner(first: SheetRow, owners: Owners, found: _Findings) -> Owner | None:
    """The department a dataset's first row names, by 提供单位代码 or 提供单位."""
    v, n = first.values, first.number
    by_code = owners.exact(v["owner_code"]) if v.get("owner_code") else None
    name = v.get("owner", "")
    if not name:
        if by_code is None:
            key = "owner_code" if v.get("owner_code") else "owner"
            found.add(n, key, _unknown_department(v.get("owner_code", ""), owners))
        return by_code
    if by_code is not None and words(name) in (words(by_code.name), by_code.code):
        return by_code
    by_name = _owner_by_name(name, n, owners, found)
    if by_code is not None and by_name is not None and by_code != by_name:
        found.add(
            n,
            "owner_code",
            f"'{v['owner_code']}' is {by_code}, but {found.sheet.header('owner')} names "
            f"{by_name}; make the two agree.",
        )
        return None
    if v.get("owner_code") and by_code is None and by_name is not None:
        found.warn(
            n,
            "owner_code",
            f"'{v['owner_code']}' is no department code here; used {by_name} from "
            f"{found.sheet.header('owner')}.",
            once=v["owner_code"],
        )
    return by_name or by_code


def _owner_by_name(text: str, row: int, owners: Owners, found: _Findings) -> Owner | None:
    exact = owners.exact(text)
    if exact is not None:
        return exact
    candidates = owners.by_short_name(text)
    if len(candidates) == 1:
        found.warn(row, "owner", f"resolved {text} as {candidates[0]}.", once=text)
        return candidates[0]
    if candidates:
        found.add(
            row,
            "owner",
            f"'{text}' could be any of {', '.join(map(str, candidates))}; "
            "write the department's full name or code.",
        )
        return None
    found.add(row, "owner", _unknown_department(text, owners))
    return None


def _unknown_department(text: str, owners: Owners) -> str:
    message = f"'{text}' is no registered department (code or name)"
    near = owners.near(text) if text else []
    if near:
        return message + f"; did you mean {' or '.join(map(str, near))}?"
    return message + "; register it first (POST /v1/departments) or correct the name."


def _dataset_fields(
    first: SheetRow, owners: Owners, found: _Findings
) -> tuple[dict[str, Any], Owner | None]:
    v = first.values
    n = first.number
    owner = _owner(first, owners, found)
    lag_raw = _clean(v.get("publication_lag_days", "")).removesuffix("天")
    lag = 0
    if lag_raw:
        if lag_raw.isdigit():
            lag = int(lag_raw)
        else:
            found.add(
                n,
                "publication_lag_days",
                f"'{v['publication_lag_days']}' is not a whole number of days.",
            )
    methods = []
    for part in re.split(LIST_SEPARATORS, v.get("share_methods", "")):
        if part.strip():
            method = _vocab_part(ShareMethod, part, n, "share_methods", found)
            if method is not None and method not in methods:
                methods.append(method)
    code, class_code = dataset_code(v.get("code", ""))
    fields: dict[str, Any] = {
        "code": code,
        "title": v.get("title", ""),
        "description": v.get("description", ""),
        "owner_department_code": owner.code if owner else None,
        "class_code": class_code,
        "share_condition": v.get("share_condition") or None,
        "legal_basis": v.get("legal_basis") or None,
        "publication_lag_days": lag,
        "share_methods": methods,
        "aggregated": _boolean(v.get("aggregated", ""), n, "aggregated", found) or False,
        "temporal_start": _date(v.get("temporal_start", ""), n, "temporal_start", found),
        "temporal_end": _date(v.get("temporal_end", ""), n, "temporal_end", found),
        "spatial_coverage": v.get("spatial_coverage") or None,
    }
    for key in VOCABULARY:
        value = _vocab(key, v.get(key, ""), n, found)
        if value is not None:
            fields[key] = value
    fields.setdefault("status", DatasetStatus.published)
    if fields.get("share_type") == ShareType.none:
        fields.setdefault("open_type", OpenType.not_open)
    return fields, owner


def _vocab_part(kind: type[Any], raw: str, row: int, key: str, found: _Findings) -> Any:
    try:
        return parse(kind, raw, location=found.where(row, key))
    except InvalidInput as exc:
        found.items.extend(_unknown(raw, exc))
        return None


# 取值范围 as people write it: 男|女, 男、女, 男；女 or 男;女 (exported with |).
ENUM_SEPARATORS = re.compile(r"[|、;；]")


def _item_rows(rows: list[SheetRow]) -> list[SheetRow]:
    return [r for r in rows if r.values.get("item_code") or r.values.get("item_name")]


def _item(row: SheetRow, found: _Findings) -> dict[str, Any]:
    v = row.values
    n = row.number
    enum = [p.strip() for p in ENUM_SEPARATORS.split(v.get("enum", "")) if p.strip()]
    item: dict[str, Any] = {
        "code": _clean(v.get("item_code", "")),
        "name": v.get("item_name", ""),
        "description": v.get("item_description") or None,
        "data_type": _vocab("data_type", v.get("data_type", ""), n, found),
        "unit": v.get("unit") or None,
        "nullable": _boolean(v.get("nullable", ""), n, "nullable", found),
        "is_key": _boolean(v.get("is_key", ""), n, "is_key", found) or False,
        "enum": enum or None,
        "pattern": v.get("pattern") or None,
        "minimum": _number(v.get("minimum", ""), n, "minimum", found),
        "maximum": _number(v.get("maximum", ""), n, "maximum", found),
        "sensitivity": _vocab("item_sensitivity", v.get("item_sensitivity", ""), n, found),
        "default_protection": _vocab(
            "default_protection", v.get("default_protection", ""), n, found
        ),
        "personal_info": _vocab("personal_info", v.get("personal_info", ""), n, found),
        "aggregation": _vocab("aggregation", v.get("aggregation", ""), n, found),
    }
    if item["nullable"] is None:
        item["nullable"] = not item["is_key"]
    return item


def _items(group: list[SheetRow], fields: dict[str, Any], found: _Findings) -> list[dict[str, Any]]:
    """The items of one dataset's rows: codes given to items without, and 敏感级别 read as each
    item's level when it differs between the rows (the dataset's is then the lowest)."""
    rows = _item_rows(group)
    items = [_item(r, found) for r in rows]
    code = fields["code"]
    uncoded = [i for i, item in enumerate(items) if not item["code"]]
    if uncoded:
        width = max(2, len(str(len(items))))
        for i in uncoded:
            items[i]["code"] = f"{code}-{i + 1:0{width}d}"
        found.warn(
            rows[uncoded[0]].number,
            "item_code",
            f"{len(uncoded)} item(s) of {code} have no code: numbered {items[uncoded[0]]['code']} "
            "and on by their order; give each a 信息项编码 to keep codes when items move.",
        )
    levels = {
        r.number: _vocab("sensitivity", r.values["sensitivity"], r.number, found)
        for r in group
        if r.values.get("sensitivity")
    }
    if len(set(levels.values())) > 1 and None not in levels.values():
        lowest = min(levels.values(), key=lambda s: s.level)
        fields["sensitivity"] = lowest
        for row, item in zip(rows, items, strict=True):
            own = levels.get(row.number)
            if item["sensitivity"] is None and own is not None and own != lowest:
                item["sensitivity"] = own
        found.warn(
            group[0].number,
            "sensitivity",
            f"differs between the rows of {code}: read as each item's level (as the "
            f"信息项敏感级别 column gives it); the dataset's is its lowest, {lowest.value} "
            f"({label(lowest)}).",
        )
    return items


def _validation_errors(exc: ValidationError, rows: list[SheetRow], found: _Findings) -> None:
    item_rows = _item_rows(rows)
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        row, key = rows[0].number, None
        if loc and loc[0] == "items" and len(loc) > 1 and loc[1].isdigit():
            row = item_rows[int(loc[1])].number
            key = ITEM_FIELD_COLUMN.get(loc[2]) if len(loc) > 2 else "item_code"
        elif loc:
            name = "owner" if loc[0] == "owner_department_code" else loc[0]
            key = name if name in found.sheet.headers or _is_column(name) else None
        found.add(row, key, str(error["msg"]))


def _is_column(key: str) -> bool:
    return any(c.key == key for c in COLUMNS)


def _rule_errors(exc: InvalidInput, rows: list[SheetRow], found: _Findings) -> None:
    """Re-address rule errors (body.share_condition, body.items.2.sensitivity) to sheet cells."""
    item_rows = _item_rows(rows)
    for error in exc.errors:
        parts = error.location.split(".")[1:]
        row, key = rows[0].number, None
        if parts and parts[0] == "items" and len(parts) > 2 and parts[1].isdigit():
            row = item_rows[int(parts[1])].number
            key = ITEM_FIELD_COLUMN.get(parts[2])
        elif parts:
            key = parts[0] if _is_column(parts[0]) else None
        found.add(row, key, error.message)


def _groups(rows: list[SheetRow], found: _Findings) -> Iterator[list[SheetRow]]:
    """The rows of each dataset, by code. A row with items and no 资源代码 continues the dataset
    above it (a merged cell saved as CSV keeps its value in the first row only)."""
    grouped: dict[str, list[SheetRow]] = {}
    previous: str | None = None
    for row in rows:
        code = dataset_code(row.values.get("code", ""))[0]
        if not code and previous is not None and _item_rows([row]):
            code = previous
        if not code:
            found.add(row.number, "code", "Every row needs the dataset code.")
            continue
        grouped.setdefault(code, []).append(row)
        previous = code
    for group in grouped.values():
        first = group[0]
        for row in group[1:]:
            for column in COLUMNS:
                if not column.dataset_level or column.key in ("code", "sensitivity"):
                    continue
                value = row.values.get(column.key, "")
                if value and value != first.values.get(column.key, ""):
                    found.add(
                        row.number,
                        column.key,
                        f"'{value}' differs from row {first.number} of the same dataset; "
                        "dataset columns must agree on every row (each item's own values go "
                        "in the item columns, e.g. 信息项敏感级别).",
                    )
        yield group


def _canonical_spec(spec: DatasetCreate) -> dict[str, Any]:
    fields = spec.model_dump(
        mode="json", include=set(DatasetFields.model_fields) | {"status"}, exclude={"class_code"}
    )
    fields["owner"] = spec.owner_department_code
    fields["items"] = [i.model_dump(mode="json") for i in spec.items]
    return fields


def _canonical_dataset(dataset: Dataset) -> dict[str, Any]:
    fields = DatasetFields.model_validate(
        {name: getattr(dataset, name) for name in DatasetFields.model_fields}
    ).model_dump(mode="json", exclude={"class_code"})
    fields["status"] = dataset.status.value
    fields["owner"] = dataset.owner.code
    fields["items"] = [datasets._as_input(i).model_dump(mode="json") for i in dataset.items]
    return fields


async def owners(*, session: AsyncSession) -> Owners:
    """Every department a sheet may name as owner."""
    return Owners(
        tuple(
            Owner(d.id, d.code, d.name)
            for d in (await session.scalars(select(Department).order_by(Department.code))).all()
        )
    )


def check_sheet(
    *, data: bytes, owners: Owners, viewer: Viewer, filename: str | None = None
) -> CheckedSheet:
    """Parse a sheet and check every row against the catalog's rules, or raise naming each problem
    by the row number the sheet shows and the column as the sheet heads it.

    No database work: a large sheet keeps a CPU busy for seconds, so callers run this off the
    event loop and hold no transaction meanwhile.
    """
    sheet = read_sheet(data, filename=filename)
    found = _Findings(sheet)
    specs: list[tuple[DatasetCreate, list[SheetRow], Owner]] = []
    refused: list[FieldError] = []
    for group in list(_groups(sheet.rows, found)):
        before = len(found.items)
        fields, owner = _dataset_fields(group[0], owners, found)
        items = _items(group, fields, found)
        if len(found.items) > before or owner is None:
            continue
        try:
            spec = DatasetCreate.model_validate({**fields, "items": items})
        except ValidationError as exc:
            _validation_errors(exc, group, found)
            continue
        try:
            datasets.check_share_rules(spec.model_dump())
            datasets.check_item_rules(spec.items, spec.sensitivity)
        except InvalidInput as exc:
            _rule_errors(exc, group, found)
            continue
        if not viewer.may_edit(owner.id):
            refused.append(
                FieldError(
                    found.where(group[0].number, "owner"),
                    f"You may import only your own department's rows, not '{owner.code}'.",
                )
            )
            continue
        specs.append((spec, group, owner))
    item_rows: dict[str, int] = {}
    for spec, group, _owner_of in specs:
        for item, row in zip(spec.items, _item_rows(group), strict=True):
            if item.code in item_rows:
                found.add(
                    row.number,
                    "item_code",
                    f"'{item.code}' is also on row {item_rows[item.code]}; item codes are unique.",
                )
            item_rows[item.code] = row.number
    if refused:
        raise Forbidden("The sheet has rows of departments you may not maintain.", errors=refused)
    if found.items:
        errors = list(dict.fromkeys(found.items))
        raise InvalidInput(
            f"{len(errors)} problem(s) in the sheet; nothing was imported. Fix each one listed.",
            errors=errors,
        )
    return CheckedSheet(
        rows=len(sheet.rows),
        datasets=[
            CheckedDataset(spec.code, group[0].number, spec.model_dump_json().encode())
            for spec, group, _owner_of in specs
        ],
        warnings=found.warnings,
    )


async def apply_sheet(
    *, session: AsyncSession, viewer: Viewer, sheet: CheckedSheet, dry_run: bool
) -> ImportPlan:
    """Create or update every dataset of a checked sheet (or, on a dry run, say what would change).

    Datasets are matched by code, so importing the same sheet twice changes nothing.
    """
    plan = ImportPlan(rows=sheet.rows, warnings=list(sheet.warnings))
    for checked in sheet.datasets:
        existing = await datasets.find_by_code(session=session, code=checked.code)
        if existing is None:
            plan.created.append(checked.code)
        else:
            if not viewer.may_edit(existing.owner_department_id):
                raise Forbidden(
                    f"Dataset '{checked.code}' (row {checked.first_row}) belongs to "
                    f"'{existing.owner_code}'; you may not change it."
                )
            old, new = _canonical_dataset(existing), _canonical_spec(checked.spec())
            changed = sorted(k for k in new if new[k] != old.get(k))
            if changed:
                plan.updated[checked.code] = changed
            else:
                plan.unchanged.append(checked.code)
        if dry_run:
            continue
        try:
            await _apply(session, viewer, checked.spec(), existing, plan)
        except DomainError as exc:
            raise type(exc)(
                f"Row {checked.first_row} ({checked.code}): {exc.detail}", errors=exc.errors
            ) from exc
    return plan


async def _apply(
    session: AsyncSession,
    viewer: Viewer,
    spec: DatasetCreate,
    existing: Dataset | None,
    plan: ImportPlan,
) -> None:
    if existing is None:
        await datasets.create(session=session, viewer=viewer, data=spec)
        return
    changed = plan.updated.get(spec.code)
    if not changed:
        return
    if "items" in changed:
        await datasets.replace_items(
            session=session, dataset=existing, items=spec.items, expected_version=existing.version
        )
        await session.flush()
    update = DatasetUpdate.model_validate(
        spec.model_dump(
            include=set(DatasetFields.model_fields) | {"status"}, exclude={"class_code"}
        )
    )
    await datasets.update(
        session=session,
        viewer=viewer,
        dataset=existing,
        data=update,
        expected_version=existing.version,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "value"):
        return label(value)
    return str(value)


async def export_rows(*, session: AsyncSession, viewer: Viewer) -> list[list[str]]:
    """Every dataset the viewer may see, one row per item, in the import layout."""
    query = select(Dataset).order_by(Dataset.code)
    if not viewer.is_platform:
        query = query.where(
            (Dataset.status != DatasetStatus.draft)
            | (Dataset.owner_department_id == viewer.department_id)
        )
    rows: list[list[str]] = []
    for dataset in (await session.scalars(query)).all():
        base = {
            "code": dataset.code,
            "title": dataset.title,
            "description": dataset.description,
            "owner": dataset.owner.name,
            "owner_code": dataset.owner.code,
            "category": dataset.category,
            "base_kind": dataset.base_kind,
            "share_type": dataset.share_type,
            "share_condition": dataset.share_condition,
            "legal_basis": dataset.legal_basis,
            "share_methods": "、".join(label(ShareMethod(m)) for m in dataset.share_methods),
            "open_type": dataset.open_type,
            "update_cycle": dataset.update_cycle,
            "publication_lag_days": dataset.publication_lag_days,
            "data_grade": dataset.data_grade,
            "sensitivity": dataset.sensitivity,
            "aggregated": dataset.aggregated,
            "temporal_start": dataset.temporal_start,
            "temporal_end": dataset.temporal_end,
            "spatial_coverage": dataset.spatial_coverage,
            "status": dataset.status,
        }
        for item in dataset.items or [None]:  # type: ignore[list-item]
            values = dict(base)
            if item is not None:
                values |= {
                    "item_code": item.code,
                    "item_name": item.name,
                    "item_description": item.description,
                    "data_type": item.data_type,
                    "unit": item.unit,
                    "nullable": item.nullable,
                    "is_key": item.is_key,
                    "enum": "|".join(item.constraints.get("enum") or []),
                    "pattern": item.constraints.get("pattern"),
                    "minimum": item.constraints.get("minimum"),
                    "maximum": item.constraints.get("maximum"),
                    "item_sensitivity": item.sensitivity,
                    "default_protection": item.default_protection,
                    "personal_info": item.personal_info,
                    "aggregation": item.aggregation,
                }
            rows.append([_text(values.get(c.key)) for c in COLUMNS])
    return rows
