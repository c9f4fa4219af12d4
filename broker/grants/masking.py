"""Masked by default, from the catalog (issue 14): which granted columns leave masked, and why.

Each data item declares how it leaves (`DataItem.default_protection`; L4 items without a
declaration are hashed). A grant masks every granted column with the stronger of that default and
the method the approval wrote, unless the approval lifts the default for that column, with a
reason; then only the approval's own masking applies. The line shows the result to the requester
before they accept, and `issue` stores the same result on the grant, so the two never disagree.
"""

from dataclasses import dataclass
from typing import Literal

from broker.grants.schemas import Conditions
from broker.grants.terms import MASK_STRENGTH
from catalog.datasets.models import DataItem, Dataset, default_protection
from catalog.vocab import Protection

Method = Literal["hash", "partial", "null"]
METHOD: dict[Protection, Method | None] = {
    Protection.hash: "hash",
    Protection.partial: "partial",
    Protection.null: "null",
    Protection.none: None,
}


@dataclass(frozen=True)
class ColumnMask:
    """How one granted column arrives, when a mask or a lifted default concerns it."""

    column: str
    method: Method | None  # None: in clear (its default was lifted)
    source: Literal["default", "conditions"]
    default: Method | None
    lift_reason: str | None


def catalog_default(item: DataItem, dataset: Dataset) -> Method | None:
    """The item's effective default protection as a masking method; None when it leaves in clear."""
    return METHOD[default_protection(item, dataset.sensitivity)]


def granted_items(dataset: Dataset, item: DataItem | None, terms: Conditions) -> list[DataItem]:
    """The items a grant on this line covers: its one item, or the columns the terms keep."""
    if item is not None:
        return [item]
    if terms.columns:
        wanted = set(terms.columns)
        return [i for i in dataset.items if i.code in wanted]
    return list(dataset.items)


def column_masks(
    *, dataset: Dataset, item: DataItem | None, conditions: Conditions | None
) -> list[ColumnMask]:
    """Every granted column that arrives masked or whose default is lifted, in catalog order."""
    terms = conditions or Conditions()
    found: list[ColumnMask] = []
    for granted in granted_items(dataset, item, terms):
        default = catalog_default(granted, dataset)
        asked = terms.masking.get(granted.code)
        reason = terms.lift_masking.get(granted.code) if default is not None else None
        if reason is not None:
            found.append(ColumnMask(granted.code, asked, "conditions", default, reason))
        elif default is not None and MASK_STRENGTH[default] > MASK_STRENGTH[asked]:
            found.append(ColumnMask(granted.code, default, "default", default, None))
        elif asked is not None:
            found.append(ColumnMask(granted.code, asked, "conditions", default, None))
    return found


def enforced(
    *, dataset: Dataset, item: DataItem | None, conditions: Conditions | None
) -> Conditions:
    """The terms a grant stores and delivery enforces: the approval's, with the defaults applied
    to its masking (masks the approval wrote for columns it does not grant are kept as written)."""
    terms = conditions or Conditions()
    masking: dict[str, str] = dict(terms.masking)
    for mask in column_masks(dataset=dataset, item=item, conditions=terms):
        if mask.method is not None:
            masking[mask.column] = mask.method
    return Conditions.model_validate({**terms.model_dump(mode="json"), "masking": masking})
