"""Sheet import (all or nothing, upsert by codes) and export in the same layout."""

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.access import Viewer
from catalog.datasets import service as datasets
from catalog.datasets.models import Dataset
from catalog.datasets.schemas import DatasetCreate, DatasetFields, DatasetUpdate
from catalog.departments.models import Department
from catalog.sheets.io import SheetRow, read_sheet
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
)
from core.errors import DomainError, FieldError, Forbidden, InvalidInput

HEADER = {c.key: c.header for c in COLUMNS}
ITEM_FIELD_COLUMN = {
    "code": "item_code",
    "name": "item_name",
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
    "default_protection": Protection,
    "personal_info": PersonalInfo,
    "aggregation": Aggregation,
}


@dataclass(frozen=True)
class Owner:
    """A department a sheet row may name, as far as checking the sheet needs it."""

    id: uuid.UUID
    code: str


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
    """A sheet whose every row passed the checks."""

    rows: int
    datasets: list[CheckedDataset]


@dataclass
class ImportPlan:
    rows: int
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, row: int, key: str | None, message: str) -> None:
        where = f"row {row}" + (f", {HEADER[key]}" if key else "")
        self.items.append(FieldError(where, message))


def _boolean(raw: str, row: int, key: str, errors: _Errors) -> bool | None:
    if not raw:
        return None
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    errors.add(row, key, f"'{raw}' is not 是 or 否.")
    return None


def _vocab(key: str, raw: str, row: int, errors: _Errors) -> Any:
    if not raw:
        return None
    try:
        kind = VOCABULARY.get(key) or ITEM_VOCABULARY[key]
        return parse(kind, raw, location=f"row {row}, {HEADER[key]}")
    except InvalidInput as exc:
        errors.items.extend(exc.errors)
        return None


def _number(raw: str, row: int, key: str, errors: _Errors) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        errors.add(row, key, f"'{raw}' is not a number.")
        return None


def _dataset_fields(
    first: SheetRow, owners: Mapping[str, Owner], errors: _Errors
) -> dict[str, Any]:
    v = first.values
    n = first.number
    owner_text = v.get("owner", "")
    owner = owners.get(owner_text) or owners.get(owner_text.lower())
    if owner is None:
        errors.add(n, "owner", f"'{owner_text}' is no registered department (code or name).")
    lag_raw = v.get("publication_lag_days", "")
    lag = 0
    if lag_raw:
        if lag_raw.isdigit():
            lag = int(lag_raw)
        else:
            errors.add(n, "publication_lag_days", f"'{lag_raw}' is not a whole number of days.")
    methods = []
    for part in re.split(LIST_SEPARATORS, v.get("share_methods", "")):
        if part.strip():
            try:
                methods.append(
                    parse(ShareMethod, part, location=f"row {n}, {HEADER['share_methods']}")
                )
            except InvalidInput as exc:
                errors.items.extend(exc.errors)
    fields: dict[str, Any] = {
        "code": v.get("code", ""),
        "title": v.get("title", ""),
        "description": v.get("description", ""),
        "owner_department_code": owner.code if owner else None,
        "class_code": None,
        "share_condition": v.get("share_condition") or None,
        "legal_basis": v.get("legal_basis") or None,
        "publication_lag_days": lag,
        "share_methods": methods,
        "aggregated": _boolean(v.get("aggregated", ""), n, "aggregated", errors) or False,
    }
    for key in VOCABULARY:
        value = _vocab(key, v.get(key, ""), n, errors)
        if value is not None:
            fields[key] = value
    fields.setdefault("status", DatasetStatus.published)
    if fields.get("share_type") == ShareType.none:
        fields.setdefault("open_type", OpenType.not_open)
    return fields


# 取值范围 as people write it: 男|女, 男、女, 男；女 or 男;女 (exported with |).
ENUM_SEPARATORS = re.compile(r"[|、;；]")


def _item(row: SheetRow, errors: _Errors) -> dict[str, Any] | None:
    v = row.values
    if not v.get("item_code") and not v.get("item_name"):
        return None
    n = row.number
    enum = [p.strip() for p in ENUM_SEPARATORS.split(v.get("enum", "")) if p.strip()]
    item: dict[str, Any] = {
        "code": v.get("item_code", ""),
        "name": v.get("item_name", ""),
        "data_type": _vocab("data_type", v.get("data_type", ""), n, errors),
        "unit": v.get("unit") or None,
        "nullable": _boolean(v.get("nullable", ""), n, "nullable", errors),
        "is_key": _boolean(v.get("is_key", ""), n, "is_key", errors) or False,
        "enum": enum or None,
        "pattern": v.get("pattern") or None,
        "minimum": _number(v.get("minimum", ""), n, "minimum", errors),
        "maximum": _number(v.get("maximum", ""), n, "maximum", errors),
        "sensitivity": _vocab("sensitivity", v.get("item_sensitivity", ""), n, errors),
        "default_protection": _vocab(
            "default_protection", v.get("default_protection", ""), n, errors
        ),
        "personal_info": _vocab("personal_info", v.get("personal_info", ""), n, errors),
        "aggregation": _vocab("aggregation", v.get("aggregation", ""), n, errors),
    }
    if item["nullable"] is None:
        item["nullable"] = not item["is_key"]
    return item


def _validation_errors(exc: ValidationError, rows: list[SheetRow], errors: _Errors) -> None:
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        row, key = rows[0].number, None
        if loc and loc[0] == "items" and len(loc) > 1 and loc[1].isdigit():
            item_rows = [r for r in rows if r.values.get("item_code") or r.values.get("item_name")]
            row = item_rows[int(loc[1])].number
            key = ITEM_FIELD_COLUMN.get(loc[2]) if len(loc) > 2 else "item_code"
        elif loc:
            name = "owner" if loc[0] == "owner_department_code" else loc[0]
            key = name if name in HEADER else None
        errors.add(row, key, str(error["msg"]))


def _rule_errors(exc: InvalidInput, rows: list[SheetRow], errors: _Errors) -> None:
    """Re-address rule errors (body.share_condition, body.items.2.sensitivity) to sheet cells."""
    item_rows = [r for r in rows if r.values.get("item_code") or r.values.get("item_name")]
    for error in exc.errors:
        parts = error.location.split(".")[1:]
        row, key = rows[0].number, None
        if parts and parts[0] == "items" and len(parts) > 2 and parts[1].isdigit():
            row = item_rows[int(parts[1])].number
            key = ITEM_FIELD_COLUMN.get(parts[2])
        elif parts:
            key = parts[0] if parts[0] in HEADER else None
        errors.add(row, key, error.message)


def _groups(rows: list[SheetRow], errors: _Errors) -> Iterator[list[SheetRow]]:
    grouped: dict[str, list[SheetRow]] = {}
    for row in rows:
        code = row.values.get("code", "")
        if not code:
            errors.add(row.number, "code", "Every row needs the dataset code.")
            continue
        grouped.setdefault(code, []).append(row)
    for group in grouped.values():
        first = group[0]
        for row in group[1:]:
            for column in COLUMNS:
                if not column.dataset_level:
                    continue
                value = row.values.get(column.key, "")
                if value and value != first.values.get(column.key, ""):
                    errors.add(
                        row.number,
                        column.key,
                        f"'{value}' differs from row {first.number} of the same dataset; "
                        "dataset columns must agree on every row.",
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


async def owners(*, session: AsyncSession) -> dict[str, Owner]:
    """Every department a sheet may name as owner, by code (any case) and by name."""
    result: dict[str, Owner] = {}
    for department in (await session.scalars(select(Department))).all():
        owner = Owner(department.id, department.code)
        result[department.code] = owner
        result[department.code.lower()] = owner
        result[department.name] = owner
    return result


def check_sheet(*, data: bytes, owners: Mapping[str, Owner], viewer: Viewer) -> CheckedSheet:
    """Parse a sheet and check every row against the catalog's rules, or raise naming each problem.

    No database work: a large sheet keeps a CPU busy for seconds, so callers run this off the
    event loop and hold no transaction meanwhile.
    """
    rows = read_sheet(data)
    errors = _Errors()
    specs: list[tuple[DatasetCreate, list[SheetRow]]] = []
    refused: list[FieldError] = []
    for group in list(_groups(rows, errors)):
        before = len(errors.items)
        fields = _dataset_fields(group[0], owners, errors)
        items = [i for i in (_item(r, errors) for r in group) if i is not None]
        if len(errors.items) > before:
            continue
        try:
            spec = DatasetCreate.model_validate({**fields, "items": items})
        except ValidationError as exc:
            _validation_errors(exc, group, errors)
            continue
        try:
            datasets.check_share_rules(spec.model_dump())
            datasets.check_item_rules(spec.items, spec.sensitivity)
        except InvalidInput as exc:
            _rule_errors(exc, group, errors)
            continue
        owner = owners[spec.owner_department_code or ""]
        if not viewer.may_edit(owner.id):
            refused.append(
                FieldError(
                    f"row {group[0].number}, {HEADER['owner']}",
                    f"You may import only your own department's rows, not '{owner.code}'.",
                )
            )
            continue
        specs.append((spec, group))
    item_rows: dict[str, int] = {}
    for spec, group in specs:
        numbered = [r for r in group if r.values.get("item_code")]
        for item, row in zip(spec.items, numbered, strict=False):
            if item.code in item_rows:
                errors.add(
                    row.number,
                    "item_code",
                    f"'{item.code}' is also on row {item_rows[item.code]}; item codes are unique.",
                )
            item_rows[item.code] = row.number
    if refused:
        raise Forbidden("The sheet has rows of departments you may not maintain.", errors=refused)
    if errors.items:
        raise InvalidInput(
            f"{len(errors.items)} problem(s) in the sheet; nothing was imported. "
            "Fix each one listed.",
            errors=errors.items,
        )
    return CheckedSheet(
        rows=len(rows),
        datasets=[
            CheckedDataset(spec.code, group[0].number, spec.model_dump_json().encode())
            for spec, group in specs
        ],
    )


async def apply_sheet(
    *, session: AsyncSession, viewer: Viewer, sheet: CheckedSheet, dry_run: bool
) -> ImportPlan:
    """Create or update every dataset of a checked sheet (or, on a dry run, say what would change).

    Datasets are matched by code, so importing the same sheet twice changes nothing.
    """
    plan = ImportPlan(rows=sheet.rows)
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
            "owner": dataset.owner.code,
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
            "status": dataset.status,
        }
        for item in dataset.items or [None]:  # type: ignore[list-item]
            values = dict(base)
            if item is not None:
                values |= {
                    "item_code": item.code,
                    "item_name": item.name,
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
